"""`training/manifest.toml`: every package the training data is built from, pinned by exact
version, download file and sha256, and the exclusion lists it was selected under."""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

MANIFEST = Path(__file__).resolve().parents[1] / "manifest.toml"


class FetchMethod(StrEnum):
    """How an archive is downloaded (each with its registry's ordinary client)."""

    PIP_WHEEL = "pip-wheel"  # a pure-Python wheel, `pip download --only-binary :all:`
    NPM = "npm"  # the registry tarball (`npm pack` names it)
    APT = "apt"  # a Debian binary package that ships sources, `apt-get download`
    APT_SRC = "apt-src"  # a Debian source package's upstream tarball, `apt-get source`


class Language(StrEnum):
    """The languages the data covers (the bench's ten)."""

    PYTHON = "python"
    JAVASCRIPT = "javascript"
    TYPESCRIPT = "typescript"
    GO = "go"
    RUST = "rust"
    JAVA = "java"
    C = "c"
    CPP = "cpp"
    RUBY = "ruby"
    PHP = "php"


@dataclass(frozen=True)
class Package:
    """One pinned archive. `spec` is what the client is asked for (`name==1.2`,
    `name=1.2-1`); `url` only for npm."""

    name: str
    language: Language
    fetch: FetchMethod
    spec: str
    file: str
    sha256: str
    url: str = ""


@dataclass(frozen=True)
class Manifest:
    """The packages and the exclusion lists they were chosen under."""

    packages: tuple[Package, ...]
    held_out: tuple[str, ...]
    bench: tuple[str, ...]


def cache_root() -> Path:
    """${XDG_CACHE_HOME:-~/.cache}/semcode-build/training (created)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "semcode-build" / "training"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load(path: Path = MANIFEST) -> Manifest:
    """Read a manifest file."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    packages = tuple(
        Package(name=p["name"], language=Language(p["language"]), fetch=FetchMethod(p["fetch"]),
                spec=p["spec"], file=p["file"], sha256=p["sha256"], url=p.get("url", ""))
        for p in data.get("package", []))
    excluded = data.get("exclusions", {})
    return Manifest(packages, tuple(excluded.get("held_out", ())),
                    tuple(excluded.get("bench", ())))


def _value(value: object) -> str:
    # A JSON string or list of strings is a valid TOML basic string / array.
    return json.dumps(value, ensure_ascii=False)


def dump(manifest: Manifest, header: str = "") -> str:
    """The manifest as TOML text (packages sorted by language, then name)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += ["", "[exclusions]", f"held_out = {_value(list(manifest.held_out))}",
              f"bench = {_value(list(manifest.bench))}"]
    order = sorted(manifest.packages, key=lambda p: (p.language.value, p.name))
    for p in order:
        lines += ["", "[[package]]"]
        for key, value in asdict(p).items():
            if value != "" or key != "url":
                lines.append(f"{key} = {_value(str(value))}")
    return "\n".join(lines) + "\n"


def write(manifest: Manifest, path: Path = MANIFEST, header: str = "") -> None:
    """Write the manifest atomically."""
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(dump(manifest, header), encoding="utf-8")
    tmp.replace(path)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
