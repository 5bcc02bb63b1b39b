"""`semcode index --dry-run` (issue 19): what would be indexed and what it will cost,
measured on a sample of the folder's own files, without touching the folder's index."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from semcode.config import Settings
from semcode.search.estimate import estimate_index
from semcode.workspace.checks import SkipReason

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": f"{HERE.parent / 'server'}{os.pathsep}{HERE}",
       "HF_HUB_OFFLINE": "1"}
OFF = ["--embedding-model", "off", "--reranker-model", "off"]


def _workspace(root: Path, modules: int = 12) -> Path:
    for i in range(modules):
        (root / "pkg").mkdir(parents=True, exist_ok=True)
        (root / "pkg" / f"mod{i}.py").write_text("".join(
            f"def handler_{i}_{j}(request):\n    return request.value + {j}\n\n\n"
            for j in range(i + 1)))
    (root / "web.js").write_text("function renderPage(state) {\n  return state.title;\n}\n")
    (root / "blob.py").write_bytes(b"\x00\x01binary" * 100)
    (root / ".gitignore").write_text("build/\n")
    (root / "build").mkdir()
    (root / "build" / "out.py").write_text("def generated():\n    pass\n")
    return root


def _semcode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "semcode", *args, *OFF], env=ENV,
                          capture_output=True, text=True, timeout=120)


def test_dry_run_reports_the_folder_and_writes_no_index(tmp_path: Path) -> None:
    ws, index = _workspace(tmp_path / "ws"), tmp_path / "index"
    proc = _semcode("index", "--dry-run", str(ws), "--index-dir", str(index))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    out = proc.stdout
    assert "would index 13 files" in out  # 12 modules and web.js; not build/, blob.py, dotfiles
    assert re.search(r"^\s+python\s+12 files", out, re.M), out
    assert re.search(r"^\s+javascript\s+1 files", out, re.M), out
    assert "skipped: 1 binary" in out
    assert "estimated cold index" in out and "on disk" in out
    assert not index.exists() or not any(index.rglob("index.sqlite"))  # nothing written

    # A folder small enough to be its own sample: the estimate is the real chunk count.
    estimated = int(re.search(r"about ([\d,]+) chunks", out).group(1).replace(",", ""))
    real = _semcode("index", str(ws), "--index-dir", str(index))
    assert real.returncode == 0, real.stderr
    chunks = int(re.search(r"([\d,]+) chunks in", real.stderr).group(1).replace(",", ""))
    assert estimated == chunks


def test_sample_rates_scale_to_the_unsampled_files(tmp_path: Path) -> None:
    """With a sample smaller than the folder, every file is still counted and the chunks
    are scaled from the sample's chunks per byte, per language."""
    ws = _workspace(tmp_path / "ws", modules=40)
    settings = Settings.from_mapping({"embedding_model": "off", "reranker_model": "off",
                                      "index_dir": str(tmp_path / "index")})
    est = estimate_index(ws, settings, sample_bytes=1)  # the per-language minimum only
    python = next(lang for lang in est.languages if lang.language == "python")
    assert python.files == 40 and est.sample_files < est.files
    real_chunks = sum(i + 1 for i in range(40))  # one chunk per handler
    assert 0.3 * real_chunks <= python.chunks <= 3 * real_chunks
    assert est.skipped == {SkipReason.BINARY: 1}
    assert est.embed_seconds is None and est.embedding_model is None
    assert not (tmp_path / "index").exists()
