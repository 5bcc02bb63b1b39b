"""Which files count: ignore rules, content filters, symlink safety."""

from __future__ import annotations

import builtins
import os
import time
from pathlib import Path

import pytest

from semcode.config import Settings
from semcode.workspace import FileSkipped, SkipReason, Workspace


def write(root: Path, rel: str, text: str | bytes = "x = 1\n") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def scan(root: Path, **settings: object) -> tuple[list[str], dict[str, SkipReason]]:
    ws = Workspace(root, Settings.from_mapping(dict(settings)))
    files = [e.rel_path for e in ws.scan()]
    return files, dict(ws.skipped)


def test_empty_repo(tmp_path: Path) -> None:
    files, skipped = scan(tmp_path)
    assert files == [] and skipped == {}
    (tmp_path / ".git").mkdir()
    files, skipped = scan(tmp_path)
    assert files == [] and skipped == {".git/": SkipReason.IGNORED}


def test_nested_gitignore_with_negation(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.log\nbuild/\n/top_only.py\n")
    write(tmp_path, "a.py")
    write(tmp_path, "debug.log")
    write(tmp_path, "build/out.py")
    write(tmp_path, "top_only.py")
    write(tmp_path, "sub/top_only.py")  # anchored pattern: only the root one is ignored
    write(tmp_path, "sub/.gitignore", "!keep.log\ngen_*.py\n")
    write(tmp_path, "sub/keep.log", "log")
    write(tmp_path, "sub/other.log", "log")
    write(tmp_path, "sub/gen_x.py")
    write(tmp_path, "gen_y.py")  # sub/.gitignore does not apply above sub/
    files, skipped = scan(tmp_path)
    assert files == ["a.py", "gen_y.py", "sub/keep.log", "sub/top_only.py"]
    assert skipped["debug.log"] == SkipReason.IGNORED
    assert skipped["build/"] == SkipReason.IGNORED
    assert skipped["sub/other.log"] == SkipReason.IGNORED
    assert skipped["sub/gen_x.py"] == SkipReason.IGNORED
    assert skipped[".gitignore"] == SkipReason.HIDDEN


def test_info_exclude_and_parent_gitignore(tmp_path: Path) -> None:
    write(tmp_path, ".git/info/exclude", "secret.py\n")
    write(tmp_path, ".gitignore", "pkg/skipme.py\n")
    write(tmp_path, "secret.py")
    write(tmp_path, "pkg/skipme.py")
    write(tmp_path, "pkg/secret.py")  # unanchored: ignored everywhere
    write(tmp_path, "pkg/ok.py")
    files, _ = scan(tmp_path)
    assert files == ["pkg/ok.py"]
    # Opening only the sub-directory still honours the repository's rules above it.
    files, _ = scan(tmp_path / "pkg")
    assert files == ["ok.py"]
    # ...unless they ignore the opened directory itself: opening it is an explicit choice.
    write(tmp_path, ".gitignore", "versions/\n*.tmp\n")
    write(tmp_path, "versions/v1/lib.py")
    write(tmp_path, "versions/v1/x.tmp", "t")
    files, _ = scan(tmp_path / "versions" / "v1")
    assert files == ["lib.py", "x.tmp"]


def test_semcodeignore_reincludes_and_excludes(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "generated/\n*.sql\n")
    write(tmp_path, ".semcodeignore", "!generated/\n!schema.sql\nnotes.md\n!node_modules/\n")
    write(tmp_path, "generated/api.py")
    write(tmp_path, "schema.sql", "create table t (id int);\n")
    write(tmp_path, "other.sql", "select 1;\n")
    write(tmp_path, "notes.md", "# notes\n")
    write(tmp_path, "node_modules/lib/index.js", "module.exports = 1;\n")
    files, skipped = scan(tmp_path)
    assert files == ["generated/api.py", "node_modules/lib/index.js", "schema.sql"]
    assert skipped["other.sql"] == SkipReason.IGNORED
    assert skipped["notes.md"] == SkipReason.IGNORED


def test_settings_exclude(tmp_path: Path) -> None:
    write(tmp_path, "src/a.py")
    write(tmp_path, "src/a_test.py")
    write(tmp_path, "docs/x.md", "# x\n")
    files, _ = scan(tmp_path, exclude=["*_test.py", "docs/"])
    assert files == ["src/a.py"]


def test_default_junk_and_hidden(tmp_path: Path) -> None:
    write(tmp_path, "node_modules/x/index.js")
    write(tmp_path, "pkg/__pycache__/m.cpython-311.pyc", b"\x00\x01")
    write(tmp_path, "myenv/pyvenv.cfg", "home = /usr\n")
    write(tmp_path, "myenv/lib/site.py")
    write(tmp_path, "target/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n")
    write(tmp_path, "target/debug/x.rs", "fn main() {}\n")
    write(tmp_path, "build/keep.py")  # not skipped by name
    write(tmp_path, ".env", "SECRET=1\n")
    write(tmp_path, ".config/tool.py")
    write(tmp_path, ".github/workflows/ci.yml", "on: push\n")
    write(tmp_path, "pkg/mod.py")
    files, skipped = scan(tmp_path)
    assert files == [".github/workflows/ci.yml", "build/keep.py", "pkg/mod.py"]
    assert skipped["node_modules/"] == SkipReason.IGNORED
    assert skipped["pkg/__pycache__/"] == SkipReason.IGNORED
    assert skipped["myenv/"] == SkipReason.IGNORED
    assert skipped["target/"] == SkipReason.IGNORED
    assert skipped[".env"] == SkipReason.HIDDEN
    assert skipped[".config/"] == SkipReason.HIDDEN
    files, _ = scan(tmp_path, include_hidden=True)
    assert ".env" in files and ".config/tool.py" in files
    assert not any(f.startswith("node_modules") for f in files)


def test_is_included_and_rel_path(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "dist/\n*.log\n")
    write(tmp_path, "pkg/.gitignore", "local.py\n")
    write(tmp_path, ".semcodeignore", "!special.log\n")
    write(tmp_path, "venv/pyvenv.cfg", "")
    ws = Workspace(tmp_path, Settings())
    assert ws.is_included("src/a.py")
    assert not ws.is_included("dist/a.py")
    assert not ws.is_included("x.log")
    assert ws.is_included("special.log")
    assert not ws.is_included("pkg/local.py")
    assert ws.is_included("other/local.py")
    assert not ws.is_included(".git/config")
    assert not ws.is_included("node_modules/a/b.js")
    assert not ws.is_included(".hidden/a.py")
    assert not ws.is_included("venv/lib/a.py")
    assert not ws.is_included("../outside.py")
    # rules are re-read when a .gitignore changes
    time.sleep(0.01)
    write(tmp_path, "pkg/.gitignore", "other.py\n")
    assert ws.is_included("pkg/local.py") and not ws.is_included("pkg/other.py")
    assert ws.rel_path(tmp_path / "src" / "a.py") == "src/a.py"
    assert ws.rel_path(str(tmp_path / "src" / ".." / "b.py")) == "b.py"
    assert ws.rel_path(tmp_path.parent / "elsewhere.py") is None


def test_binary_files(tmp_path: Path) -> None:
    write(tmp_path, "image.png", b"\x89PNG\r\n")
    write(tmp_path, "blob.dat", b"abc\x00def")
    write(tmp_path, "ok.py")
    files, skipped = scan(tmp_path)
    assert skipped["image.png"] == SkipReason.BINARY
    assert files == ["blob.dat", "ok.py"]  # scan reads nothing: content checks at read
    ws = Workspace(tmp_path, Settings())
    with pytest.raises(FileSkipped) as exc:
        ws.read_text("blob.dat")
    assert exc.value.reason == SkipReason.BINARY and "blob.dat" in str(exc.value)
    assert ws.check_text("x.py", "a\x00b") == SkipReason.BINARY


def test_binary_without_a_nul_byte_named_py_is_binary(tmp_path: Path) -> None:
    """Issue 22 item 11: random bytes with no NUL in the first 8 KB, named `.py`."""
    import random

    rng = random.Random(22)
    write(tmp_path, "blob.py", bytes(rng.randrange(1, 256) for _ in range(20_000)))
    write(tmp_path, "latin1.py", "# Größe: ça va très bien\nx = 'é'\n".encode("latin-1") * 50)
    write(tmp_path, "ansi.py", b"print('\x1b[31mred\x1b[0m')  # \x0c form feed\n" * 50)
    ws = Workspace(tmp_path, Settings())
    with pytest.raises(FileSkipped) as exc:
        ws.read_text("blob.py")
    assert exc.value.reason == SkipReason.BINARY
    assert "Gr\ufffd\ufffde" in ws.read_text("latin1.py")  # legacy text stays text
    assert ws.read_text("ansi.py").startswith("print(")
    buffer = "".join(chr(rng.randrange(1, 32)) for _ in range(3000))
    assert ws.check_text("x.py", buffer) == SkipReason.BINARY


def test_utf16_with_bom_is_text(tmp_path: Path) -> None:
    write(tmp_path, "w.txt", "hello wörld\n".encode("utf-16"))
    assert Workspace(tmp_path, Settings()).read_text("w.txt") == "hello wörld\n"


def test_huge_file_skipped_without_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    big = tmp_path / "big.py"
    with open(big, "wb") as f:  # sparse: 50 MB of size, nothing on disk
        f.truncate(50 * 1024 * 1024)
    files, skipped = scan(tmp_path)
    assert files == [] and skipped["big.py"] == SkipReason.TOO_LARGE
    ws = Workspace(tmp_path, Settings())
    real_open = builtins.open

    def no_open(path: object, *args: object, **kwargs: object) -> object:
        if str(path) == str(big):
            raise AssertionError("a too-large file was opened")
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", no_open)
    with pytest.raises(FileSkipped) as exc:
        ws.read_text("big.py")
    assert exc.value.reason == SkipReason.TOO_LARGE
    assert ws.check_text("big.py", "x" * 2_000_000) == SkipReason.TOO_LARGE
    assert ws.check_text("big.py", "é\n" * 400_000) == SkipReason.TOO_LARGE  # bytes, not chars


def test_minified_and_generated(tmp_path: Path) -> None:
    write(tmp_path, "app.min.js", "var a=1;")
    write(tmp_path, "bundle.js", "var a=1;" * 2000)  # one 16 KB line
    write(tmp_path, "package-lock.json", "{}")
    write(tmp_path, "Cargo.lock", "")
    write(tmp_path, "yarn.lock", "")
    write(tmp_path, "app.js.map", "{}")
    write(tmp_path, "api_pb2.py", "x = 1\n")
    write(tmp_path, "gen.go", "// Code generated by protoc-gen-go. DO NOT EDIT.\npackage x\n")
    write(tmp_path, "fb.js", "/**\n * @generated\n */\nvar x;\n")
    write(tmp_path, "late.py", "\n" * 10 + "# DO NOT EDIT below\n")  # marker too late
    write(tmp_path, "normal.py", "def f():\n    return 'generated ids are random'\n")
    files, skipped = scan(tmp_path)
    assert skipped["app.min.js"] == SkipReason.MINIFIED
    for name in ("package-lock.json", "Cargo.lock", "yarn.lock", "app.js.map", "api_pb2.py"):
        assert skipped[name] == SkipReason.GENERATED, name
    assert files == ["bundle.js", "fb.js", "gen.go", "late.py", "normal.py"]
    ws = Workspace(tmp_path, Settings())
    reasons = {}
    for f in files:
        try:
            ws.read_text(f)
        except FileSkipped as exc:
            reasons[f] = exc.reason
    assert reasons == {"bundle.js": SkipReason.MINIFIED, "fb.js": SkipReason.GENERATED,
                       "gen.go": SkipReason.GENERATED}
    assert ws.check_text("x.py", "# @generated\nx = 1\n") == SkipReason.GENERATED
    assert ws.check_text("x.py", "x = 1\n") is None
    assert ws.check_text("x.min.js", "x = 1\n") == SkipReason.MINIFIED


def test_invalid_utf8_is_kept_with_replacement(tmp_path: Path) -> None:
    write(tmp_path, "latin.py", b"name = 'caf\xe9'\n\xef\xbb\xbfmore = 1\n")
    write(tmp_path, "bom.py", b"\xef\xbb\xbfx = 1\n")
    ws = Workspace(tmp_path, Settings())
    assert [e.rel_path for e in ws.scan()] == ["bom.py", "latin.py"]
    text = ws.read_text("latin.py")
    assert text.startswith("name = 'caf\ufffd'\n") and "more = 1" in text
    assert ws.read_text("bom.py") == "x = 1\n"


def test_unreadable_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root here, so chmod 000 stops nothing: simulate instead.
    write(tmp_path, "locked.py")
    write(tmp_path, "ok.py")
    os.mkfifo(tmp_path / "pipe.py")  # opening a FIFO would block: must never be opened
    locked = str(tmp_path / "locked.py")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == locked
                        else real_access(p, mode, **kw))
    files, skipped = scan(tmp_path)
    assert files == ["ok.py"]
    assert skipped["locked.py"] == SkipReason.UNREADABLE
    assert skipped["pipe.py"] == SkipReason.UNREADABLE

    real_open = builtins.open

    def deny(path: object, *args: object, **kwargs: object) -> object:
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", deny)
    ws = Workspace(tmp_path, Settings())
    with pytest.raises(FileSkipped) as exc:
        ws.read_text("locked.py")
    assert exc.value.reason == SkipReason.UNREADABLE and "permission denied" in str(exc.value)
    assert str(exc.value) == "locked.py: skipped (unreadable: permission denied)"
    with pytest.raises(FileSkipped) as exc:
        ws.read_text("pipe.py")
    assert exc.value.reason == SkipReason.UNREADABLE
    with pytest.raises(FileSkipped, match="no such file") as exc:  # deleted meanwhile
        ws.read_text("gone.py")
    assert exc.value.reason == SkipReason.UNREADABLE


def test_unreadable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "secret/a.py")
    write(tmp_path, "ok.py")
    real_scandir = os.scandir
    target = str(tmp_path / "secret")

    def deny(path: object) -> object:
        if str(path) == target:
            raise PermissionError(13, "Permission denied", target)
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", deny)
    files, skipped = scan(tmp_path)
    assert files == ["ok.py"] and skipped["secret/"] == SkipReason.UNREADABLE


def test_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    write(outside, "evil.py")
    write(root, "src/real.py")
    write(root, ".gitignore", "vendored/\n")
    write(root, "vendored/lib.py")
    (root / "out_file.py").symlink_to(outside / "evil.py")
    (root / "out_dir").symlink_to(outside, target_is_directory=True)
    (root / "src/loop").symlink_to(root, target_is_directory=True)  # ancestor: a loop
    (root / "src/self").symlink_to(root / "src", target_is_directory=True)
    (root / "alias.py").symlink_to(root / "src/real.py")  # duplicate of an included file
    (root / "src_alias").symlink_to(root / "src", target_is_directory=True)
    (root / "lib_link").symlink_to(root / "vendored", target_is_directory=True)  # only way in
    (root / "broken.py").symlink_to(root / "missing.py")
    files, skipped = scan(root)
    assert files == ["lib_link/lib.py", "src/real.py"]
    assert skipped["out_file.py"] == SkipReason.SYMLINK_OUTSIDE
    assert skipped["out_dir"] == SkipReason.SYMLINK_OUTSIDE
    assert skipped["src/loop/"] == SkipReason.SYMLINK_LOOP
    assert skipped["src/self/"] == SkipReason.SYMLINK_LOOP
    assert skipped["alias.py"] == SkipReason.SYMLINK_DUPLICATE
    assert skipped["src_alias/"] == SkipReason.SYMLINK_DUPLICATE
    assert skipped["broken.py"] == SkipReason.UNREADABLE
    ws = Workspace(root, Settings())
    with pytest.raises(FileSkipped) as exc:
        ws.read_text("out_file.py")
    assert exc.value.reason == SkipReason.SYMLINK_OUTSIDE
    assert ws.rel_path(root / "alias.py") == "src/real.py"
    assert ws.rel_path(root / "out_file.py") is None


def test_mutual_symlink_loop_in_followed_dirs(tmp_path: Path) -> None:
    # Two ignored directories linking to each other, reached only through links.
    write(tmp_path, ".gitignore", "hidden_a/\nhidden_b/\n")
    write(tmp_path, "hidden_a/a.py")
    write(tmp_path, "hidden_b/b.py")
    (tmp_path / "hidden_a/to_b").symlink_to(tmp_path / "hidden_b", target_is_directory=True)
    (tmp_path / "hidden_b/to_a").symlink_to(tmp_path / "hidden_a", target_is_directory=True)
    (tmp_path / "entry").symlink_to(tmp_path / "hidden_a", target_is_directory=True)
    files, skipped = scan(tmp_path)
    assert files == ["entry/a.py", "entry/to_b/b.py"]
    assert skipped["entry/to_b/to_a/"] == SkipReason.SYMLINK_LOOP


def test_scan_is_deterministic(tmp_path: Path) -> None:
    for name in ("b.py", "a/z.py", "a/b.py", "c/a.py", "a.py"):
        write(tmp_path, name)
    first, _ = scan(tmp_path)
    assert first == scan(tmp_path)[0]
    assert sorted(first) == sorted(["a.py", "a/b.py", "a/z.py", "b.py", "c/a.py"])
    entries = list(Workspace(tmp_path, Settings()).scan())
    assert all(e.abs_path == tmp_path / e.rel_path and e.size == 6 and e.mtime_ns > 0
               for e in entries)


def test_huge_ignored_directory_is_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    for i in range(50):
        write(tmp_path, f"node_modules/pkg{i}/index.js")
    write(tmp_path, "main.js", "main();\n")
    listed: list[str] = []
    real_scandir = os.scandir

    def spy(path: object) -> object:
        listed.append(str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", spy)
    files, _ = scan(tmp_path)
    assert files == ["main.js"]
    assert listed == [str(tmp_path)]


@pytest.mark.bench
def test_scan_speed_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints files/s over the Python stdlib (a measurement, not an assertion)."""
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    ws = Workspace(stdlib, Settings())
    t0 = time.perf_counter()
    n = sum(1 for _ in ws.scan())
    dt = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n[measure] scan {stdlib}: {n} files, {len(ws.skipped)} skipped, "
              f"{dt:.3f}s, {n / dt:,.0f} files/s")
