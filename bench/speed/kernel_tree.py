"""The Linux kernel tree that issue 19's scale goals are measured on, prepared from the
Debian package `linux-source-6.1` (a Debian registry is reachable where GitHub is not):

    apt-get download linux-source-6.1     (the .deb: /usr/src/linux-source-6.1.tar.xz)
    dpkg-deb -x  +  tar -xaf              (into <cache>/kernel/linux-source-6.1)

then the two Debian-only lines of its top-level `.gitignore` (`/*` and `!/debian/`,
which ignore everything but debian/) are removed, so semcode sees what it sees in an
upstream checkout. Done once: a stamp file records the package file it came from.
`open_scale.py --kernel` measures on it (index, whole searches, stage by stage).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

PACKAGE = "linux-source-6.1"
DEBIAN_ONLY_LINES = ("/*", "!/debian/")


def prepare(cache: Path) -> Path:
    """The prepared tree under `cache/kernel` (downloaded and unpacked once)."""
    base = cache / "kernel"
    tree = base / PACKAGE
    stamp = base / "stamp.json"
    if stamp.is_file() and tree.is_dir():
        return tree
    base.mkdir(parents=True, exist_ok=True)
    debs = sorted(base.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", PACKAGE], cwd=base, check=True)
        debs = sorted(base.glob(f"{PACKAGE}_*.deb"))
    deb = debs[-1]
    unpacked = base / "deb"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    tarball = unpacked / "usr" / "src" / f"{PACKAGE}.tar.xz"
    with tarfile.open(tarball) as tar:
        tar.extractall(base, filter="data")
    ignore = tree / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines(keepends=True)
    ignore.write_text("".join(line for line in lines
                              if line.strip() not in DEBIAN_ONLY_LINES), encoding="utf-8")
    stamp.write_text(json.dumps({"deb": deb.name}), encoding="utf-8")
    return tree
