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


def resolve(tmp_path: Path, source: Path = VENDOR_SH, **env: str
            ) -> subprocess.CompletedProcess[str]:
    clone = tmp_path / "clone"
    script = clone / "clients/neovim/tests/vendor.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, script)
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


def test_a_plain_clone_fetches_the_pinned_commits(tmp_path: Path) -> None:
    """With no ../shared, each plugin is fetched at its pinned commit from the plugin
    host (here a local one standing in for GitHub, whose commits the copied script pins)
    into the cache, which a later run then uses as it is."""
    host = tmp_path / "host"
    script_text = VENDOR_SH.read_text()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    for line in script_text.split("PINS=(")[1].split(")")[0].replace('"', "").split("\n"):
        if not line.strip():
            continue
        name, repo, pinned = line.split()
        src = host / repo
        (src / "lua" / name.split(".")[0]).mkdir(parents=True)
        (src / "lua" / name.split(".")[0] / "init.lua").write_text(f"return '{name}'\n")
        subprocess.run([*git, "init", "-q", str(src)], check=True)
        subprocess.run([*git, "-C", str(src), "add", "-A"], check=True)
        subprocess.run([*git, "-C", str(src), "commit", "-qm", "pin"], check=True)
        subprocess.run([*git, "-C", str(src), "commit", "-qm", "newer", "--allow-empty"],
                       check=True)  # the pin is not the tip: fetched by commit, not branch
        commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD~1"], check=True,
                                capture_output=True, text=True).stdout.strip()
        subprocess.run(["git", "-C", str(src), "config", "uploadpack.allowAnySHA1InWant",
                        "true"], check=True)  # as GitHub serves any commit
        script_text = script_text.replace(pinned, commit)
    patched = tmp_path / "vendor.sh"
    patched.write_text(script_text)
    proc = resolve(tmp_path, patched, SEMCODE_NVIM_PLUGIN_BASE=f"file://{host}")
    assert proc.returncode == 0, proc.stderr
    cache = Path(proc.stdout.strip())
    assert cache == tmp_path / "cache"
    for name in PLUGINS:
        assert (cache / name / "lua").is_dir()
        pin = (cache / name / ".semcode-pin").read_text().strip()
        head = subprocess.run(["git", "-C", str(cache / name), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert pin == head and pin in script_text
    shutil.rmtree(host)  # the next run needs no host: the cache holds the pins
    again = resolve(tmp_path, patched, SEMCODE_NVIM_PLUGIN_BASE=f"file://{host}")
    assert again.returncode == 0 and again.stdout.strip() == str(cache), again.stderr
