"""Issue 22 item 12: the Neovim specs find the real picker plugins in a plain clone.
`clients/neovim/tests/vendor.sh` (what run.sh asks) in a copy of the repository with
and without a `../shared/vendor/nvim` beside it; with no plugin host reachable it says
in one line what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

VENDOR_SH = Path(__file__).resolve().parents[1] / "clients/neovim/tests/vendor.sh"
PLUGINS = ("telescope.nvim", "plenary.nvim", "fzf-lua")


def resolve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clone = tmp_path / "clone"
    script = clone / "clients/neovim/tests/vendor.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(VENDOR_SH, script)
    full = {k: v for k, v in os.environ.items() if k != "SEMCODE_NVIM_VENDOR"}
    full.update(SEMCODE_NVIM_VENDOR_CACHE=str(tmp_path / "cache"), **env)
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, env=full,
                          timeout=300)


def test_shared_vendor_beside_the_clone_is_used(tmp_path: Path) -> None:
    vendor = tmp_path / "shared/vendor/nvim"
    for name in PLUGINS:
        (vendor / name / "lua").mkdir(parents=True)
    proc = resolve(tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == str(vendor), proc.stderr


def test_no_shared_and_no_plugin_host_is_one_line(tmp_path: Path) -> None:
    # A plugin host that cannot answer (GitHub is unreachable here anyway).
    proc = resolve(tmp_path, SEMCODE_NVIM_PLUGIN_BASE=f"file://{tmp_path}/no-such-host")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and proc.stdout == "" and len(lines) == 1, proc.stderr
    assert lines[0].startswith("!! Neovim picker plugins missing: telescope.nvim "
                               "plenary.nvim fzf-lua (no ")
    assert "set SEMCODE_NVIM_VENDOR" in lines[0]
    assert not any((tmp_path / "cache").glob("*/lua"))  # nothing half-fetched is kept


def test_a_complete_cache_is_used_without_fetching(tmp_path: Path) -> None:
    pins = dict(line.split()[:3:2] for line in VENDOR_SH.read_text().split("PINS=(")[1]
                .split(")")[0].replace('"', "").strip().splitlines())
    for name, commit in pins.items():
        (tmp_path / "cache" / name / "lua").mkdir(parents=True)
        (tmp_path / "cache" / name / ".semcode-pin").write_text(commit + "\n")
    proc = resolve(tmp_path, SEMCODE_NVIM_PLUGIN_BASE=f"file://{tmp_path}/no-such-host")
    assert proc.returncode == 0 and proc.stdout.strip() == str(tmp_path / "cache"), proc.stderr
