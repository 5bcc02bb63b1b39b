"""Issue 19, one embedding cache for every checkout (index/shared_cache.py): a second
worktree of a project embeds nothing the first one embedded; a changed file only its
changed chunks; processes writing at once lose nothing; damage is one line, moved aside,
rebuilt, never a wrong vector; the size cap evicts the least recently used; a setting
turns it off. Through the CLI as a user runs it (real processes) where it matters."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from semcode.chunking import ChunkerConfig, chunk_file
from semcode.config import ConfigError, Settings
from semcode.index.indexer import index_base, index_dir_for, shared_cache_for
from semcode.index.shared_cache import DB_FILE, MIB, SHARED_DIR, SharedEmbeddings, row_check
from tiny_static import write_static_model

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": f"{HERE.parent / 'server'}{os.pathsep}{HERE}",
       "HF_HUB_OFFLINE": "1"}
EMBEDDED = re.compile(r"^embedded (\d+) chunks", re.M)

FILES = {
    "config.py": textwrap.dedent('''\
        def parse_config(path):
            """Read the configuration file."""
            return open(path).read()


        def validate_setting(name, value):
            if not name:
                raise ValueError("empty name")
            return value


        class TokenCache:
            def get(self, key):
                return self.items.get(key)
        '''),
    "net/retry.py": textwrap.dedent('''\
        def retry_request(call, attempts=3):
            for _ in range(attempts):
                try:
                    return call()
                except OSError:
                    continue
            raise RuntimeError("gave up")


        def backoff_delay(attempt):
            return 0.1 * 2 ** attempt
        '''),
    "README.md": "# demo\n\nRetry requests with exponential backoff.\n",
}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_static_model(tmp_path_factory.mktemp("shared") / "m2v")


def checkout(root: Path, files: dict[str, str] = FILES) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def index(root: Path, base: Path, model: Path, *extra: str) -> tuple[int, list[str]]:
    """`semcode index` in its own process: (chunks the embedder was handed, stderr lines
    other than the closing counts)."""
    proc = subprocess.run(
        [sys.executable, "-m", "semcode", "index", str(root), "--index-dir", str(base),
         "--embedding-model", str(model), "--reranker-model", "off", *extra],
        env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    found = EMBEDDED.search(proc.stderr)
    assert found, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines()
             if not ln.startswith(("indexed ", "embedded ", "semcode: reranking is off"))]
    return int(found.group(1)), lines


def own_vectors(root: Path, base: Path) -> dict[str, bytes]:
    """hash -> vector bytes in the workspace's own index database."""
    db = index_dir_for(root.resolve(), Settings(index_dir=str(base))) / "index.sqlite"
    with sqlite3.connect(db) as c:
        return dict(c.execute("SELECT hash, vector FROM embeddings").fetchall())


def shared_file(base: Path) -> Path:
    return base / SHARED_DIR / DB_FILE


def distinct_hashes(files: dict[str, str]) -> set[str]:
    s = Settings()
    config = ChunkerConfig(max_chunk_lines=s.max_chunk_lines,
                           chunk_overlap_lines=s.chunk_overlap_lines,
                           window_lines=s.window_lines)
    return {c.content_hash() for rel, text in files.items()
            for c in chunk_file(rel, text, config).chunks}


# ---------------------------------------------------------------- sharing
def test_a_second_worktree_embeds_nothing(tmp_path: Path, model: Path) -> None:
    base = tmp_path / "indexes"
    first, second = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    n, lines = index(first, base, model)
    assert n == len(distinct_hashes(FILES)) > 5 and not lines, lines
    n, lines = index(second, base, model)
    assert n == 0 and not lines, lines
    # The second checkout holds the same vectors in its own table (copied down), so
    # eviction from the shared cache never changes what it has.
    assert own_vectors(second, base) == own_vectors(first, base)
    assert index(second, base, model)[0] == 0


def test_a_changed_file_embeds_only_its_changed_chunks(tmp_path: Path, model: Path) -> None:
    base = tmp_path / "indexes"
    index(checkout(tmp_path / "a"), base, model)
    changed = {**FILES, "net/retry.py": FILES["net/retry.py"].replace(
        "0.1 * 2 ** attempt", "min(30.0, 0.1 * 2 ** attempt)")}
    new = distinct_hashes(changed) - distinct_hashes(FILES)
    assert len(new) == 1  # the changed function's chunk; the file's other one is the same
    n, _ = index(checkout(tmp_path / "b", changed), base, model)
    assert n == len(new)


def test_the_embedder_is_handed_nothing_the_cache_has(tmp_path: Path, model: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted at the embedder itself, in-process."""
    from semcode.models.static import StaticEmbedder
    from semcode.search.engine import Engine

    handed: list[int] = []
    real = StaticEmbedder.embed_documents

    def counting(self: StaticEmbedder, texts: list[str], *args: object,
                 **kwargs: object) -> object:
        handed.append(len(texts))
        return real(self, texts, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(StaticEmbedder, "embed_documents", counting)
    settings = Settings.from_mapping({"embedding_model": str(model), "reranker_model": "off",
                                      "index_dir": str(tmp_path / "indexes")})
    for name, expected in (("a", len(distinct_hashes(FILES))), ("b", 0)):
        engine = Engine.open(checkout(tmp_path / name), settings)
        try:
            engine.sync()
            handed.clear()
            report = engine.embed_pending()
            assert sum(handed) == report.embedded == expected
            assert report.pending == 0
        finally:
            engine.close()


def test_vectors_of_an_index_from_before_are_shared_once(tmp_path: Path, model: Path) -> None:
    """Migration: an index whose vectors are only in its own table (made with the shared
    cache off, as before it existed) copies them up the first time it attaches the model."""
    base = tmp_path / "indexes"
    first = checkout(tmp_path / "a")
    index(first, base, model, "--set", "shared_embedding_cache=false")
    assert not (base / SHARED_DIR).exists()
    # A search loads the model too, but never pays for the copy (only the embed path does).
    proc = subprocess.run(
        [sys.executable, "-m", "semcode", "search", "retry the request", "-w", str(first),
         "--index-dir", str(base), "--no-update", "--embedding-model", str(model),
         "--reranker-model", "off", "--json"], env=ENV, capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 0 and "retry_request" in proc.stdout, proc.stderr
    assert not (base / SHARED_DIR).exists()
    assert index(first, base, model)[0] == 0  # the embed path: copies them up
    db = index_dir_for(first.resolve(), Settings(index_dir=str(base))) / "index.sqlite"
    with sqlite3.connect(db) as c:  # recorded: the next attach does not copy again
        assert c.execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'shared_cache:%'"
                         ).fetchone() == (1,)
    assert index(checkout(tmp_path / "b"), base, model)[0] == 0


# ---------------------------------------------------------------- the setting
def test_the_setting_turns_it_off(tmp_path: Path, model: Path) -> None:
    base = tmp_path / "indexes"
    off = ("--set", "shared_embedding_cache=false")
    n = index(checkout(tmp_path / "a"), base, model, *off)[0]
    assert index(checkout(tmp_path / "b"), base, model, *off)[0] == n > 0
    assert not (base / SHARED_DIR).exists()


def test_the_settings_values() -> None:
    assert Settings().shared_embedding_cache is True
    cache = shared_cache_for(Settings.from_mapping({"sharedEmbeddingCacheMb": 64,
                                                    "index_dir": "/x"}))
    assert cache is not None and cache.cap_bytes == 64 * MIB
    assert cache.directory == index_base(Settings(index_dir="/x")) / SHARED_DIR
    assert shared_cache_for(Settings(shared_embedding_cache=False)) is None
    with pytest.raises(ConfigError, match="shared_embedding_cache_mb"):
        Settings.from_mapping({"shared_embedding_cache_mb": 0})


# ---------------------------------------------------------------- processes at once
WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from semcode.index.shared_cache import SharedEmbeddings
directory, name, start_at = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
cache = SharedEmbeddings(directory, 1 << 30)
while time.time() < start_at:
    time.sleep(0.005)
for batch in range(40):
    hashes = [f"{name}-{batch}-{i}" for i in range(25)] + [f"both-{batch}-{i}" for i in range(25)]
    items = [(h, np.full(16, sum(map(ord, h)), dtype=np.float32).tobytes()) for h in hashes]
    assert cache.put("model-a", items) == len(items)
assert not cache.notices, cache.notices
"""


def expected_vector(content_hash: str) -> np.ndarray:
    return np.full(16, sum(map(ord, content_hash)), dtype=np.float32)


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    import time

    directory = tmp_path / "shared"
    start_at = str(time.time() + 2.0)  # both past their imports: they really overlap
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(directory), name, start_at],
                              env=ENV, stderr=subprocess.PIPE, text=True)
             for name in ("one", "two")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    hashes = [f"{name}-{b}-{i}" for name in ("one", "two", "both")
              for b in range(40) for i in range(25)]
    cache = SharedEmbeddings(directory, 1 << 30)
    found = cache.vectors("model-a", hashes)
    assert len(found) == len(hashes) == 3000
    assert all(np.array_equal(found[h], expected_vector(h)) for h in hashes)


def test_two_checkouts_indexed_at_once_share_everything(tmp_path: Path, model: Path) -> None:
    """Two `semcode index` processes on two checkouts at once (one base): both finish
    cleanly, and a third checkout finds every vector either of them embedded."""
    base = tmp_path / "indexes"
    files = {**FILES, **{f"gen/m{i}.py": f"def generated_{i}(x):\n    return x + {i}\n"
                         for i in range(60)}}
    roots = [checkout(tmp_path / name, files) for name in ("a", "b")]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "semcode", "index", str(root), "--index-dir", str(base),
         "--embedding-model", str(model), "--reranker-model", "off"],
        env=ENV, stderr=subprocess.PIPE, text=True) for root in roots]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "WARNING" not in err, err
    assert index(checkout(tmp_path / "c", files), base, model) == (0, [])


# ---------------------------------------------------------------- damage
def settle(path: Path) -> None:
    """Everything in the main file (as after every process closed it)."""
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_a_damaged_file_is_moved_aside_and_rebuilt(tmp_path: Path, model: Path) -> None:
    base = tmp_path / "indexes"
    first = checkout(tmp_path / "a")
    n = index(first, base, model)[0]
    path = shared_file(base)
    settle(path)
    with open(path, "r+b") as f:  # every page after the schema's: garbage
        f.seek(4096)
        f.write(b"\x55" * (path.stat().st_size - 4096))
    second = checkout(tmp_path / "b")
    embedded, lines = index(second, base, model)
    assert embedded == n  # nothing readable was kept: embedded again, correctly
    assert len(lines) == 1 and "shared embedding cache" in lines[0] and \
        "damaged" in lines[0] and len(lines[0]) < 400, lines
    assert list(path.parent.glob(f"{DB_FILE}.damaged-*"))
    assert own_vectors(second, base) == own_vectors(first, base)
    assert index(checkout(tmp_path / "c"), base, model) == (0, [])  # the new one works


def test_a_file_that_is_no_database_is_replaced(tmp_path: Path, model: Path) -> None:
    base = tmp_path / "indexes"
    shared_file(base).parent.mkdir(parents=True)
    shared_file(base).write_bytes(b"not a database, just bytes " * 400)
    first = checkout(tmp_path / "a")
    n, lines = index(first, base, model)
    assert n > 0 and len(lines) == 1 and "damaged" in lines[0], lines
    assert index(checkout(tmp_path / "b"), base, model) == (0, [])


def test_a_damaged_vector_is_never_used(tmp_path: Path, model: Path) -> None:
    """A flipped bit inside one stored vector (the page stays valid, so SQLite cannot tell):
    its check fails, the chunk is embedded again, the right vector heals the row."""
    base = tmp_path / "indexes"
    first = checkout(tmp_path / "a")
    index(first, base, model)
    path = shared_file(base)
    with sqlite3.connect(path) as c:
        hash_, blob = c.execute("SELECT hash, vector FROM vectors ORDER BY hash").fetchone()
        flipped = bytes([blob[0] ^ 0x10]) + blob[1:]
        c.execute("UPDATE vectors SET vector=? WHERE hash=?", (flipped, hash_))
    second = checkout(tmp_path / "b")
    n, lines = index(second, base, model)
    assert n == 1 and len(lines) == 1 and "1 damaged vectors" in lines[0], lines
    assert own_vectors(second, base) == own_vectors(first, base)
    assert index(checkout(tmp_path / "c"), base, model) == (0, [])  # healed


def test_a_cache_it_cannot_use_is_one_line_and_indexing_goes_on(tmp_path: Path,
                                                                model: Path) -> None:
    base = tmp_path / "indexes"
    base.mkdir()
    (base / SHARED_DIR).write_text("a file where the cache's folder belongs")
    n, lines = index(checkout(tmp_path / "a"), base, model)
    assert n > 0 and lines and all("shared embedding cache skipped" in ln for ln in lines)
    assert len(lines) == 1, lines


def test_a_newer_cache_is_left_alone(tmp_path: Path, model: Path) -> None:
    base = tmp_path / "indexes"
    index(checkout(tmp_path / "a"), base, model)
    with sqlite3.connect(shared_file(base)) as c:
        c.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    n, lines = index(checkout(tmp_path / "b"), base, model)
    assert n > 0 and len(lines) == 1 and "newer semcode" in lines[0], lines
    assert not list(shared_file(base).parent.glob("*.damaged-*"))


# ---------------------------------------------------------------- size
def test_the_cap_evicts_the_least_recently_used(tmp_path: Path) -> None:
    now = [1000]
    cap = 256 * 1024
    cache = SharedEmbeddings(tmp_path / "shared", cap, clock=lambda: now[0])

    def batch(name: str) -> list[tuple[str, bytes]]:
        return [(f"{name}-{i}", expected_vector(f"{name}-{i}").tobytes() * 4)
                for i in range(100)]  # 64 floats: 256 bytes each

    for name in ("old", "kept", *(f"fill{k}" for k in range(4))):
        now[0] += 1
        assert cache.put("m", batch(name)) == 100
    now[0] += 1
    cache.put("m", batch("kept"))  # used again: now more recent than fill0..fill3
    for k in range(4, 7):
        now[0] += 1
        cache.put("m", batch(f"fill{k}"))
        assert cache.usage().live_bytes <= cap
    hashes = [h for h, _ in batch("old") + batch("kept") + batch("fill0")]
    found = cache.vectors("m", hashes)
    assert not any(h.startswith(("old-", "fill0-")) for h in found)  # the oldest went
    assert sum(h.startswith("kept-") for h in found) == 100
    assert len(cache.vectors("m", [h for h, _ in batch("fill6")])) == 100
    # What is left verifies (eviction never leaves half a row).
    with sqlite3.connect(cache.path) as c:
        for content, crc, blob in c.execute("SELECT hash, crc, vector FROM vectors"):
            assert crc == row_check("m", content, blob)


def test_cap_setting_reaches_the_cache_through_the_cli(tmp_path: Path) -> None:
    """A 1 MiB cap: a corpus whose vectors need more leaves a cache no larger than it."""
    base = tmp_path / "indexes"
    wide = write_static_model(tmp_path / "m2v-256", dims=256)  # 1 KiB a vector
    big = {f"pkg/mod_{i:03}.py": "".join(
        f"def handler_{i}_{j}(request):\n    return request * {i * 100 + j}\n\n\n"
        for j in range(40)) for i in range(40)}
    n, _ = index(checkout(tmp_path / "a", big), base, wide, "--set",
                 "shared_embedding_cache_mb=1")
    assert n * 1024 > 1.5 * MIB
    cache = SharedEmbeddings(base / SHARED_DIR, MIB)
    usage = cache.usage()
    assert 0 < usage.live_bytes <= MIB and usage.vectors < len(distinct_hashes(big))


def test_the_shared_cache_sits_beside_the_indexes(tmp_path: Path) -> None:
    settings = Settings(index_dir=str(tmp_path / "indexes"))
    ws = index_dir_for(tmp_path / SHARED_DIR, settings)  # a workspace folder named like it
    assert ws.parent == index_base(settings) and ws.name != SHARED_DIR
