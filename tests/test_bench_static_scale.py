"""bench/speed/static_scale.py reads `semcode index`'s own output: that it still can (a
changed line would silently empty the table), and that its run helper measures a real
index run. A tiny workspace and a tiny static model; no timing is asserted."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.speed import static_scale  # noqa: E402

from tiny_static import write_static_model  # noqa: E402


def test_index_output_is_read_from_real_cold_and_no_change_runs(workspace, tmp_path):
    model = write_static_model(tmp_path / "m2v")
    cmd = [sys.executable, "-m", "semcode", "index", str(workspace), "--embedding-model",
           str(model), "--reranker-model", "off"]
    env = static_scale.semcode_env(tmp_path / "cache")
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    cold = static_scale.run_measured(cmd, env)
    got = static_scale.parse_index_output(cold["stderr"])
    assert got["chunks"] > 0 and got["changed"] == got["files"] > 0
    assert got["embedded"] > 0 and got["pending"] == 0
    assert cold["cpu_s"] > 0 and cold["peak_rss_mb"] > 0
    again = static_scale.parse_index_output(static_scale.run_measured(cmd, env)["stderr"])
    assert again["changed"] == 0 and again["embedded"] == 0 and again["chunks"] == got["chunks"]
