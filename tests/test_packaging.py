"""The package as users get it: `python -m build` gives a wheel and an sdist with correct
metadata, and the wheel installed into a fresh virtual environment (no checkout on
sys.path, no system site-packages) indexes, searches and serves.

The install takes its dependencies from PyPI and llama-cpp-python from the local wheel
cache (scripts/setup.sh builds it there once); it takes a minute or two, once per session.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

from sample_workspace import FILES, write_files

sys.path.insert(0, str(Path(__file__).parent / "lsp"))
from client import LspClient  # noqa: E402

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[1]
LLAMA_CPP_VERSION = "0.3.36"  # keep in step with pyproject.toml and scripts/setup.sh
OFF = ["--embedding-model", "off", "--reranker-model", "off"]


def wheel_cache() -> Path:
    env = os.environ.get("SEMCODE_WHEEL_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "semcode-build" / "wheels"


def _run(cmd: list[str | Path], timeout: float = 600,
         **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=timeout, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist, then the wheel built from that sdist (what `python -m build` does), from a
    copy of the sources so that the checkout is not written to."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "ARCHITECTURE.md"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    for name in ("server", "tests", "docs"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend of this environment, nothing downloaded to build.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, src])
    return out


def _metadata(text: str) -> Message:
    return email.parser.Parser().parsestr(text)


def test_wheel_and_sdist_metadata(dist: Path) -> None:
    [wheel] = dist.glob("semcode-*.whl")
    [sdist] = dist.glob("semcode-*.tar.gz")
    assert wheel.name.endswith("-py3-none-any.whl")
    assert wheel.stat().st_size <= 40 << 20  # the built-in model included
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = _metadata(zf.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
                         .decode())
        entry_points = zf.read(next(n for n in names
                                    if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert meta["Metadata-Version"] in ("2.2", "2.3", "2.4")
    assert (meta["Name"], meta["Version"]) == ("semcode", "0.2.0")
    assert meta["License-Expression"] == "MIT" and meta["License-File"] == "LICENSE"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().startswith("# semcode")  # the README is the long description
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Intended Audience :: Developers" in classifiers
    requires = meta.get_all("Requires-Dist") or []
    for dep in ("mcp", "pygls", "llama-cpp-python", "tree-sitter-language-pack"):
        assert any(r.startswith(dep) for r in requires), dep
    assert "mlx" in (meta.get_all("Provides-Extra") or [])
    assert any(r.startswith("mlx-lm") and 'extra == "mlx"' in r for r in requires)
    assert "semcode = semcode.cli:main" in entry_points
    for name in ("config.json", "model.safetensors", "tokenizer.json", "semcode.json"):
        assert f"semcode/models/builtin/semcode-code-static/{name}" in names, name
    for module in ("semcode/cli.py", "semcode/mcp/server.py", "semcode/lsp/server.py",
                   "semcode/py.typed"):
        assert module in names, module
    assert not any(n.startswith(("tests/", "bench/")) for n in names)

    with tarfile.open(sdist) as tf:
        members = tf.getnames()
        pkg_info = _metadata(tf.extractfile("semcode-0.2.0/PKG-INFO").read().decode())  # type: ignore[union-attr]
    for key in ("Name", "Version", "License-Expression", "Requires-Python"):
        assert pkg_info[key] == meta[key], key
    for needed in ("LICENSE", "README.md", "pyproject.toml", "server/semcode/mcp/server.py",
                   "tests/test_mcp.py", "tests/lsp/client.py", "docs/protocol.md"):
        assert f"semcode-0.2.0/{needed}" in members, needed


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel (and its dependencies) installed; returns its bin/."""
    llama = sorted(wheel_cache().glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
    if not llama:
        pytest.skip(f"no llama-cpp-python {LLAMA_CPP_VERSION} wheel in {wheel_cache()} "
                    "(scripts/setup.sh builds it once)")
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    env = _clean_env(venv.parent)  # a PYTHONPATH to the checkout would satisfy `semcode`
    _run([sys.executable, "-m", "venv", venv], env=env)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    [wheel] = dist.glob("semcode-*.whl")
    _run([bin_dir / "python", "-m", "pip", "install", "--disable-pip-version-check", "--no-compile",
          "--only-binary", "llama-cpp-python", "--find-links", wheel_cache(), wheel],
         timeout=900, env=env)
    return bin_dir


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "SEMCODE_CACHE_DIR": str(tmp / "cache"), "HF_HUB_OFFLINE": "1",
            "SEMCODE_CONFIG": str(tmp / "no-config.toml"), "HF_HOME": str(tmp / "hf")}


def test_installed_wheel_indexes_searches_and_serves(installed: Path, tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    ws = tmp_path / "ws"
    write_files(ws, FILES)
    # The package comes from the venv, not from this checkout.
    where = _run([installed / "python", "-c", "import semcode, sys; print(semcode.__file__); "
                  f"print(any(p.startswith({str(REPO)!r}) for p in sys.path))"],
                 env=env, cwd=tmp_path).stdout.split()
    assert where[0].startswith(str(installed.parent)) and where[1] == "False", where
    semcode = installed / "semcode"

    proc = _run([semcode, "--version"], env=env, cwd=tmp_path)
    assert proc.stdout.strip() == "semcode 0.2.0"
    proc = _run([semcode, "index", ws, *OFF], env=env, cwd=tmp_path)
    assert "4 files" in proc.stderr
    proc = _run([semcode, "search", "-w", ws, "--json", "-k", "3", *OFF,
                 "sleep with exponential backoff between attempts"], env=env, cwd=tmp_path)
    top = json.loads(proc.stdout)[0]
    assert (top["path"], top["name"]) == ("src/http_client.py", "get_with_retry")

    with LspClient(cmd=[str(semcode), "serve"], env=env, cwd=tmp_path,
                   stderr_path=tmp_path / "serve.stderr") as lsp:
        init = lsp.initialize([ws], {"indexDir": str(tmp_path / "lsp-index"),
                                     "embeddingModel": "off", "rerankerModel": "off"})
        assert init["serverInfo"]["name"] == "semcode"
        assert lsp.close() == 0

    proc = _run([semcode, "mcp", "--print-config", "claude"], env=env, cwd=tmp_path)
    assert f"claude mcp add semcode -- {semcode} mcp" in proc.stdout
