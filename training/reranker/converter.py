"""llama.cpp's own `convert_hf_to_gguf.py`, from the llama-cpp-python sdist on PyPI.

The converter is not in the llama-cpp-python wheel; its sdist carries the whole vendored
llama.cpp tree, whose `convert_hf_to_gguf.py`, `conversion/` and `gguf-py/` are all the
conversion needs (with torch, transformers and numpy from the `train` extra). `fetch`
downloads the sdist of the installed llama-cpp-python version once with pip (PyPI, no
other network) and extracts only those parts into the build cache; `python -m
training.reranker.converter` does just that (CI can cache the folder). The converter's
identity (version, the sdist's sha256, the scripts' sha256) goes into the model card.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ENV = "SEMCODE_LLAMA_CPP_SRC"  # a llama.cpp folder with convert_hf_to_gguf.py, to use instead
SOURCE_INFO = "SOURCE.json"
_MEMBERS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")


def llama_cpp_version() -> str:
    """The installed llama-cpp-python's version (the converter must match its runtime)."""
    from importlib.metadata import version

    return version("llama-cpp-python")


def converter_dir(version: str | None = None) -> Path:
    """Where the converter is: `$SEMCODE_LLAMA_CPP_SRC`, else the build cache's copy."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "semcode-build" / f"llama-cpp-convert-{version or llama_cpp_version()}"


def available(folder: Path | None = None) -> bool:
    """Whether the converter is on disk (nothing is downloaded)."""
    return ((folder or converter_dir()) / "convert_hf_to_gguf.py").is_file()


def fetch(version: str | None = None) -> Path:
    """Download llama-cpp-python's sdist (PyPI) and extract the converter; its folder."""
    version = version or llama_cpp_version()
    folder = converter_dir(version)
    if available(folder):
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:",
                        "--no-deps", "-q", f"llama-cpp-python=={version}", "-d", tmp],
                       check=True, stdin=subprocess.DEVNULL)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        extract(sdist, folder)
    return folder


def extract(sdist: Path, folder: Path) -> Path:
    """Extract the converter's parts of a llama-cpp-python sdist into `folder`."""
    prefix = f"{sdist.name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
    tmp = folder.with_name(folder.name + ".part")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)
                   and m.name[len(prefix):].startswith(_MEMBERS) and (m.isfile() or m.isdir())]
        for m in members:
            m.name = m.name[len(prefix):]
        tar.extractall(tmp, members=members, filter="data")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    (tmp / SOURCE_INFO).write_text(json.dumps({"sdist": sdist.name, "sha256": digest}) + "\n")
    tmp.replace(folder)
    return folder


def identity(folder: Path | None = None) -> dict[str, str]:
    """What converted a model: the sdist and the sha256 of the scripts that ran."""
    folder = folder or converter_dir()
    info: dict[str, str] = {}
    if (folder / SOURCE_INFO).is_file():
        info = json.loads((folder / SOURCE_INFO).read_text())
    for name in ("convert_hf_to_gguf.py", "conversion/bert.py"):
        info[f"sha256:{name}"] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return info


def convert(model_dir: Path, out_file: Path, outtype: str, folder: Path | None = None) -> Path:
    """Run the converter on a Hugging Face folder (`outtype`: f16, q8_0, f32, ...)."""
    folder = folder or converter_dir()
    if not available(folder):
        raise SystemExit(f"no llama.cpp converter in {folder}: python -m "
                         f"training.reranker.converter (downloads the sdist from PyPI)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder / "gguf-py"), str(folder)]),
               HF_HUB_OFFLINE="1")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, str(folder / "convert_hf_to_gguf.py"), str(model_dir),
                           "--outfile", str(out_file), "--outtype", outtype],
                          cwd=folder, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"convert_hf_to_gguf.py failed ({outtype}):\n{done.stderr[-3000:]}")
    return out_file


def main(argv: list[str] | None = None) -> int:
    """Fetch the converter matching the installed llama-cpp-python; print its folder."""
    print(fetch())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
