"""The pinned real-code corpora of `corpora.toml`: download once (cached), verify sha256,
read the included source files into memory as {"<corpus>/<path>": text}."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).with_name("corpora.toml")
SOURCE_EXTS = (".py", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".go", ".rs")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "semcode-build" / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_manifest(path: Path = MANIFEST) -> list[dict[str, Any]]:
    corpora: list[dict[str, Any]] = tomllib.loads(path.read_text())["corpus"]
    return corpora


def sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(corpus: dict[str, Any]) -> Path:
    """The verified archive of one corpus, downloaded into the cache if missing."""
    target = cache_dir() / corpus["file"]
    if not target.is_file():
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            if corpus["fetch"] == "pip":
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                                "--no-binary", ":all:", "--no-build-isolation", "-d", tmp,
                                corpus["spec"]], check=True)
            elif corpus["fetch"] == "npm":
                urllib.request.urlretrieve(corpus["url"], Path(tmp) / corpus["file"])
            elif corpus["fetch"] == "apt":
                subprocess.run(["apt-get", "download", corpus["spec"]], cwd=tmp, check=True,
                               capture_output=True)
            else:
                raise ValueError(f"unknown fetch method {corpus['fetch']!r}")
            (Path(tmp) / corpus["file"]).rename(target)
    digest = sha256(target)
    if digest != corpus["sha256"]:
        target.unlink()
        raise RuntimeError(f"{corpus['file']}: sha256 {digest} != pinned {corpus['sha256']}")
    return target


def _included(name: str, include: list[str]) -> bool:
    name = name.removeprefix("./")
    return name.endswith(SOURCE_EXTS) and any(
        name == p or name.startswith(p.rstrip("/") + "/") for p in include)


def read_corpus(corpus: dict[str, Any]) -> dict[str, str]:
    archive = fetch(corpus)
    files: dict[str, str] = {}
    prefix = corpus["name"]
    if archive.suffix == ".deb":
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(archive), tmp], check=True)
            root = Path(tmp)
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(root).as_posix()
                if path.is_file() and not path.is_symlink() and _included(rel, corpus["include"]):
                    files[f"{prefix}/{rel}"] = path.read_text("utf-8", "replace")
        return files
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and _included(member.name, corpus["include"]):
                data = tar.extractfile(member)
                if data is not None:
                    text = io.TextIOWrapper(data, "utf-8", "replace").read()
                    files[f"{prefix}/{member.name.removeprefix('./')}"] = text
    return files


def describe(corpus: dict[str, Any]) -> dict[str, str]:
    keys = ("name", "language", "file", "sha256")
    return {k: corpus[k] for k in keys}
