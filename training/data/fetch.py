"""Download the manifest's archives into `<training cache>/archives`, a few at a time,
each verified against its pinned sha256 on every run (a mismatch deletes the file and is
an error). Resumable: an archive is moved into place only once complete, so an interrupted
run leaves nothing half-written, and the next run downloads only what is missing."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from training.data.manifest import FetchMethod, Package, cache_root, file_sha256

PARALLEL = 4
# pip with no user or machine configuration (no local indexes or constraints), so the
# manifest resolves the same everywhere: pure-Python wheels only.
PIP_WHEEL = ("--isolated", "--cert", "/etc/ssl/certs/ca-certificates.crt", "-q", "--no-deps",
             "--only-binary", ":all:", "--platform", "any", "--python-version", "3.12",
             "--implementation", "py", "--abi", "none", "--index-url", "https://pypi.org/simple")
TIMEOUT_S = 300


class FetchError(Exception):
    """An archive could not be downloaded, or its bytes are not the pinned ones."""


def archive_dir() -> Path:
    """Where verified archives live (created)."""
    path = cache_root() / "archives"
    path.mkdir(parents=True, exist_ok=True)
    return path


def download(method: FetchMethod, spec: str, into: Path, url: str = "",
             file: str = "") -> list[Path]:
    """Ask the registry's client for `spec` into the directory `into`; the files it wrote.
    An npm `url` is saved as `file` when given: the registry names a scoped package's
    tarball without its scope (`css-tools-4.4.0.tgz`), `npm pack` with it
    (`adobe-css-tools-4.4.0.tgz`), and the manifest pins the latter."""
    if method is FetchMethod.PIP_WHEEL:
        cmd = [sys.executable, "-m", "pip", "download", *PIP_WHEEL, "-d", str(into), spec]
    elif method is FetchMethod.NPM:
        if url:
            name = file or url.rsplit("/", 1)[-1]
            urllib.request.urlretrieve(url, into / name)  # noqa: S310 (the registry's https URL)
            return [into / name]
        cmd = ["npm", "pack", "--silent", "--pack-destination", str(into), spec]
    elif method is FetchMethod.APT:
        cmd = ["apt-get", "download", "-q", spec]
    else:
        cmd = ["apt-get", "source", "-q", "--download-only", spec]
    done = subprocess.run(cmd, cwd=into, capture_output=True, text=True, timeout=TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise FetchError(f"{spec}: {' '.join(cmd[:3])} failed: {last}")
    return sorted(p for p in into.iterdir() if p.is_file())


def fetch(package: Package, directory: Path | None = None) -> Path:
    """The verified archive of one package, downloaded if it is not in the cache."""
    directory = directory or archive_dir()
    target = directory / package.file
    if not target.is_file():
        with tempfile.TemporaryDirectory(dir=directory, prefix=".part-") as tmp:
            download(package.fetch, package.spec, Path(tmp), package.url, package.file)
            got = Path(tmp) / package.file
            if not got.is_file():
                raise FetchError(f"{package.name}: the client did not write {package.file}")
            got.replace(target)
    digest = file_sha256(target)
    if digest != package.sha256:
        target.unlink()
        raise FetchError(f"{package.file}: sha256 {digest} is not the pinned {package.sha256}")
    return target


def fetch_all(packages: Iterable[Package], directory: Path | None = None,
              progress: Callable[[str], None] | None = None,
              parallel: int = PARALLEL) -> tuple[dict[str, Path], dict[str, str]]:
    """Fetch every package, `parallel` at a time: ({name: archive}, {name: error})."""
    packages = list(packages)
    archives: dict[str, Path] = {}
    errors: dict[str, str] = {}

    def one(package: Package) -> None:
        try:
            archives[package.name] = fetch(package, directory)
        except (FetchError, OSError, subprocess.SubprocessError) as exc:
            errors[package.name] = str(exc)

    with ThreadPoolExecutor(parallel) as pool:
        for n, _ in enumerate(pool.map(one, packages), start=1):
            if progress and (n % 50 == 0 or n == len(packages)):
                progress(f"fetch: {n}/{len(packages)} archives ({len(errors)} failed)")
    return archives, errors
