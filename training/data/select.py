"""Choose the training packages and write `training/manifest.toml`.

    python -m training select [--only python,npm,go,...]

Popular packages, from local lists where there are some: PyPI by its download rank
(`pypi.tsv`), npm by downloads a month (`npm.tsv`), Debian by how many packages depend on
them (apt's own lists). Only the chosen candidates are downloaded (into the archive cache,
so the build reuses them); each one's file and sha256 become its pin. Excluded projects
(`exclusions.py`) are never candidates. npm tarballs are sorted into TypeScript (they ship
`.ts` sources) and JavaScript; Debian source tarballs into C, C++ and Java by their files.
Each source's choice is kept in `<training cache>/selection/` so a re-run only adds.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from training.data.exclusions import Exclusions
from training.data.fetch import FetchError, archive_dir, download
from training.data.manifest import (
    MANIFEST,
    FetchMethod,
    Language,
    Manifest,
    Package,
    cache_root,
    file_sha256,
    write,
)

LISTS = Path("/work/.library/env/packages")
QUOTA = {Language.PYTHON: 220, Language.JAVASCRIPT: 160, Language.TYPESCRIPT: 160,
         Language.GO: 170, Language.RUST: 170, Language.RUBY: 130, Language.PHP: 90,
         Language.JAVA: 70, Language.C: 70, Language.CPP: 70}
MAX_CANDIDATES = {"python": 420, "npm": 2400, "debian-bin": 700, "debian-src": 1100}
MAX_ARCHIVE_BYTES = 8_000_000
PARALLEL = 6
HEADER = """\
The packages semcode's training data is built from (issue 18), written by
`python -m training select`; `python -m training data` rebuilds the pairs from exactly these
files. Every archive is pinned by file and sha256. Projects semcode is judged on are
excluded (the lists below; names matched loosely, vendored copies skipped by path)."""
Log = Callable[[str], None]


def _selection_file(source: str) -> Path:
    path = cache_root() / "selection"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{source}.json"


def _load_selection(source: str) -> dict[str, dict[str, str] | None]:
    """{candidate: the package dict, or None when it was tried and does not fit}."""
    path = _selection_file(source)
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_selection(source: str, chosen: dict[str, dict[str, str] | None]) -> None:
    path = _selection_file(source)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(chosen, indent=0, sort_keys=True))
    tmp.replace(path)


def _keep(got: Path) -> tuple[str, str]:
    """Move a downloaded file into the archive cache; (file name, sha256)."""
    target = archive_dir() / got.name
    if not target.is_file():
        got.replace(target)
    return got.name, file_sha256(target)


# ================================================================ PyPI
def pypi_candidates(exclusions: Exclusions) -> Iterator[str]:
    """PyPI names by download rank, excluded projects left out."""
    rows = []
    with open(LISTS / "pypi.tsv", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 4 and row[3].isdigit():
                rows.append((int(row[3]), row[0]))
    for _, name in sorted(rows):
        if not exclusions.excludes_package(name):
            yield name


def _wheel_files(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return z.namelist()


def try_pypi(name: str) -> dict[str, str] | None:
    """The latest pure-Python wheel of `name` with some Python source, or None."""
    with tempfile.TemporaryDirectory(dir=archive_dir(), prefix=".sel-") as tmp:
        try:
            files = download(FetchMethod.PIP_WHEEL, name, Path(tmp))
        except (FetchError, subprocess.SubprocessError):
            return None
        wheels = [f for f in files if f.suffix == ".whl"]
        if len(wheels) != 1 or wheels[0].stat().st_size > MAX_ARCHIVE_BYTES:
            return None
        if not any(n.endswith(".py") for n in _wheel_files(wheels[0])):
            return None
        file, digest = _keep(wheels[0])
    version = file.split("-")[1]
    return {"name": name, "language": "python", "fetch": "pip-wheel",
            "spec": f"{name}=={version}", "file": file, "sha256": digest}


# ================================================================ npm
def npm_candidates(exclusions: Exclusions) -> Iterator[str]:
    """npm names by downloads a month, excluded projects and `@types/` left out."""
    rows = []
    with open(LISTS / "npm.tsv", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 3 and row[2].isdigit():
                rows.append((-int(row[2]), row[0]))
    for _, name in sorted(rows):
        if not name.startswith("@types/") and not exclusions.excludes_package(name):
            yield name


_TS = re.compile(r"\.(ts|tsx|mts|cts)$")
_JS = re.compile(r"\.(js|mjs|cjs|jsx)$")


def npm_language(names: list[str]) -> Language | None:
    """TypeScript when the tarball ships `.ts` sources (not only `.d.ts` declarations),
    JavaScript when it ships only JavaScript, None when neither (or only minified)."""
    ts = sum(bool(_TS.search(n)) and not re.search(r"\.d\.[mc]?ts$", n) for n in names)
    js = sum(bool(_JS.search(n)) and ".min." not in n for n in names)
    if ts >= 3:
        return Language.TYPESCRIPT
    return Language.JAVASCRIPT if js >= 1 else None


def try_npm(name: str) -> dict[str, str] | None:
    """The latest tarball of an npm package, sorted by language, or None."""
    with tempfile.TemporaryDirectory(dir=archive_dir(), prefix=".sel-") as tmp:
        try:
            files = download(FetchMethod.NPM, name, Path(tmp))
        except (FetchError, subprocess.SubprocessError):
            return None
        tgz = [f for f in files if f.suffix == ".tgz"]
        if len(tgz) != 1 or tgz[0].stat().st_size > MAX_ARCHIVE_BYTES:
            return None
        try:
            with tarfile.open(tgz[0]) as tar:
                names = tar.getnames()
                version = json.load(tar.extractfile("package/package.json"))["version"]  # type: ignore[arg-type]
        except (tarfile.TarError, KeyError, ValueError, TypeError):
            return None
        language = npm_language(names)
        if language is None:
            return None
        file, digest = _keep(tgz[0])
    base = name.rsplit("/", 1)[-1]
    url = f"https://registry.npmjs.org/{name}/-/{base}-{version}.tgz"
    return {"name": name, "language": language.value, "fetch": "npm",
            "spec": f"{name}@{version}", "url": url, "file": file, "sha256": digest}


# ================================================================ Debian
def _records(text: str) -> Iterator[dict[str, str]]:
    for block in text.split("\n\n"):
        record: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                record[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                record[key] = value.strip()
        if record:
            yield record


def _dep_names(field: str) -> set[str]:
    return {re.split(r"[\s(:\[<]", alt.strip(), maxsplit=1)[0]
            for part in field.split(",") for alt in part.split("|") if alt.strip()}


def debian_binaries() -> tuple[dict[str, dict[str, str]], Counter[str]]:
    """({package: its newest record}, {package: how many packages depend on it})."""
    text = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True,
                          check=True).stdout
    newest: dict[str, dict[str, str]] = {}
    rdeps: Counter[str] = Counter()
    for r in _records(text):
        name = r.get("Package", "")
        newest[name] = r  # dumpavail lists each package once per version; last is fine
        for dep in _dep_names(",".join(r.get(k, "") for k in ("Depends", "Pre-Depends",
                                                                "Recommends"))):
            rdeps[dep] += 1
    return newest, rdeps


def _bin_language(name: str) -> Language | None:
    if name.startswith("golang-") and name.endswith("-dev"):
        return Language.GO
    if name.startswith("librust-") and name.endswith("-dev"):
        return Language.RUST
    if name.startswith("ruby-") and not name.endswith(("-doc", "-dbg")):
        return Language.RUBY
    if name.startswith("php-") and not name.endswith(("-doc", "-dbg")):
        return Language.PHP
    return None


_SHIPS = {Language.GO: (".go",), Language.RUST: (".rs",), Language.RUBY: (".rb",),
          Language.PHP: (".php",)}


def try_debian_binary(record: dict[str, str]) -> dict[str, str] | None:
    """A Debian binary package that ships at least two source files of its language."""
    name, version = record["Package"], record["Version"]
    language = _bin_language(name)
    if language is None or int(record.get("Size", "0")) > MAX_ARCHIVE_BYTES:
        return None
    with tempfile.TemporaryDirectory(dir=archive_dir(), prefix=".sel-") as tmp:
        try:
            files = download(FetchMethod.APT, f"{name}={version}", Path(tmp))
        except (FetchError, subprocess.SubprocessError):
            return None
        debs = [f for f in files if f.suffix == ".deb"]
        if len(debs) != 1:
            return None
        listing = subprocess.run(["dpkg-deb", "-c", str(debs[0])], capture_output=True,
                                 text=True).stdout
        if sum(line.endswith(_SHIPS[language]) for line in listing.splitlines()) < 2:
            return None
        file, digest = _keep(debs[0])
    return {"name": name, "language": language.value, "fetch": "apt",
            "spec": f"{name}={version}", "file": file, "sha256": digest}


def debian_sources() -> list[dict[str, str]]:
    """Every source package record of apt's lists."""
    targets = subprocess.run(["apt-get", "indextargets", "--format", "$(FILENAME)",
                              "Created-By: Sources"], capture_output=True, text=True,
                             check=True).stdout.split()
    records: list[dict[str, str]] = []
    for target in targets:
        text = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", target],
                              capture_output=True, text=True, check=True).stdout
        records.extend(_records(text))
    return records


_JAVA_BUILD = re.compile(r"\b(javahelper|maven-debian-helper|default-jdk|ant)\b")
_NOT_C = re.compile(r"\b(dh-python|python3-all-dev|cargo|golang-go|dh-golang|gem2deb|"
                    r"pkg-php-tools|dh-r|ghc|ocaml|dh-nodejs|javahelper|default-jdk|"
                    r"perl-xs-dev|dh-lua|fpc|gnat)\b")


def _upstream_tarball(record: dict[str, str]) -> tuple[str, int] | None:
    """(file, size) of a source package's upstream tarball (orig, or native)."""
    for line in record.get("Checksums-Sha256", "").splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        _, size, file = parts
        if re.search(r"\.orig\.tar\.(gz|xz|bz2)$", file) or (
                re.search(r"\.tar\.(gz|xz|bz2)$", file) and ".debian." not in file
                and ".orig-" not in file):
            return file, int(size)
    return None


def source_language(names: list[str]) -> Language | None:
    """C, C++ or Java, when that language's files are most of the tarball's source."""
    counts: Counter[Language] = Counter()
    for n in names:
        if "/test" in n.lower() or "/example" in n.lower():
            continue
        if n.endswith(".java"):
            counts[Language.JAVA] += 1
        elif n.endswith((".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx")):
            counts[Language.CPP] += 1
        elif n.endswith(".c"):
            counts[Language.C] += 1
        elif n.endswith((".py", ".rs", ".go", ".js", ".ts", ".rb", ".php", ".pl", ".cs")):
            counts[Language.PYTHON] += 1  # stands for "another language"
    if not counts:
        return None
    language, top = counts.most_common(1)[0]
    if language is Language.PYTHON or top < 5 or top < 0.6 * sum(counts.values()):
        return None
    return language


def try_debian_source(record: dict[str, str]) -> dict[str, str] | None:
    """A Debian source package whose upstream tarball is mostly C, C++ or Java."""
    name, version = record["Package"], record["Version"]
    tarball = _upstream_tarball(record)
    if tarball is None or tarball[1] > MAX_ARCHIVE_BYTES:
        return None
    with tempfile.TemporaryDirectory(dir=archive_dir(), prefix=".sel-") as tmp:
        try:
            download(FetchMethod.APT_SRC, f"{name}={version}", Path(tmp))
        except (FetchError, subprocess.SubprocessError):
            return None
        got = Path(tmp) / tarball[0]
        if not got.is_file():
            return None
        try:
            with tarfile.open(got) as tar:
                language = source_language(tar.getnames())
        except (tarfile.TarError, OSError, EOFError):
            return None
        if language is None:
            return None
        file, digest = _keep(got)
    return {"name": name, "language": language.value, "fetch": "apt-src",
            "spec": f"{name}={version}", "file": file, "sha256": digest}


# ================================================================ driver
def _choose(source: str, candidates: Sequence[tuple[str, object]],
            attempt: Callable[[object], dict[str, str] | None], log: Log) -> None:
    """Try candidates in order (`PARALLEL` at a time) until every language the source
    serves has its quota; remembers each try."""
    chosen = _load_selection(source)

    def have() -> Counter[str]:
        return Counter(p["language"] for p in chosen.values() if p)

    todo = [(key, arg) for key, arg in candidates if key not in chosen]
    served = {Language(p["language"]) for p in chosen.values() if p}
    for start in range(0, len(todo), PARALLEL * 4):
        counts = have()
        open_languages = [lang for lang in QUOTA if counts[lang.value] < QUOTA[lang]]
        if served and not any(lang in served for lang in open_languages):
            break
        batch = todo[start:start + PARALLEL * 4]
        with ThreadPoolExecutor(PARALLEL) as pool:
            for (key, _), got in zip(batch, pool.map(lambda c: attempt(c[1]), batch), strict=True):
                if got and have()[got["language"]] >= QUOTA[Language(got["language"])]:
                    got = None  # that language is full
                chosen[key] = got
                if got:
                    served.add(Language(got["language"]))
        _save_selection(source, chosen)
        log(f"select {source}: {dict(sorted(have().items()))} after {start + len(batch)} tries")


def _all_chosen() -> list[Package]:
    packages: list[Package] = []
    for source in ("python", "npm", "debian-bin", "debian-src"):
        for p in _load_selection(source).values():
            if p:
                packages.append(Package(name=p["name"], language=Language(p["language"]),
                                        fetch=FetchMethod(p["fetch"]), spec=p["spec"],
                                        file=p["file"], sha256=p["sha256"], url=p.get("url", "")))
    return packages


def write_manifest(exclusions: Exclusions, path: Path = MANIFEST) -> Manifest:
    """Write the manifest from every source's choice so far."""
    manifest = Manifest(tuple(_all_chosen()), exclusions.held_out, exclusions.bench)
    write(manifest, path, HEADER)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Choose packages (the named sources, default all) and write the manifest."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m training select", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="python,npm,debian-bin,debian-src")
    args = ap.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    exclusions = Exclusions.default()
    for source in args.only.split(","):
        if source == "python":
            names = list(pypi_candidates(exclusions))[:MAX_CANDIDATES[source]]
            _choose(source, [(n, n) for n in names], lambda n: try_pypi(str(n)), log)
        elif source == "npm":
            names = list(npm_candidates(exclusions))[:MAX_CANDIDATES[source]]
            _choose(source, [(n, n) for n in names], lambda n: try_npm(str(n)), log)
        elif source == "debian-bin":
            newest, rdeps = debian_binaries()
            by_language: dict[Language, list[str]] = {}
            for name in newest:
                language = _bin_language(name)
                if language and not exclusions.excludes_package(name):
                    by_language.setdefault(language, []).append(name)
            ranked: list[str] = []
            for names in by_language.values():  # the most depended-on first, per language
                ranked += sorted(names, key=lambda n: (-rdeps[n], n))[:MAX_CANDIDATES[source] // 2]
            ranked.sort(key=lambda n: (-rdeps[n], n))
            _choose(source, [(n, newest[n]) for n in ranked],
                    lambda r: try_debian_binary(r), log)  # type: ignore[arg-type]
        elif source == "debian-src":
            newest, rdeps = debian_binaries()
            scored = []
            for r in debian_sources():
                name = r.get("Package", "")
                binaries = [b.strip() for b in r.get("Binary", "").split(",")]
                build = r.get("Build-Depends", "") + r.get("Build-Depends-Indep", "")
                java = _JAVA_BUILD.search(build) and any(b.endswith("-java") for b in binaries)
                c_like = not _NOT_C.search(build) and any(
                    b.startswith("lib") and b.endswith("-dev") for b in binaries)
                if not (java or c_like) or exclusions.excludes_package(name) or any(
                        exclusions.excludes_package(b) for b in binaries):
                    continue
                scored.append((-max(rdeps[b] for b in binaries), name, r))
            scored.sort(key=lambda s: (s[0], s[1]))
            seen: set[str] = set()
            candidates = []
            for _, name, r in scored:
                if name not in seen:
                    seen.add(name)
                    candidates.append((name, r))
            _choose(source, candidates[:MAX_CANDIDATES[source]],
                    lambda r: try_debian_source(r), log)  # type: ignore[arg-type]
        manifest = write_manifest(exclusions)
        log(f"manifest: {len(manifest.packages)} packages "
            f"{dict(sorted(Counter(p.language.value for p in manifest.packages).items()))}")
    return 0


