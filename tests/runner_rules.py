"""The test runner's rules, as pytest hooks (registered by tests/conftest.py):

* `@pytest.mark.bench`: measurements that print numbers and assert nothing. Off by
  default (deselected); `pytest -m bench` runs them.
* No silent skips: a test that skips on a machine where it should run is reported as a
  failure, and so is a test module that skips itself at import. Required dependencies
  are imported, never `importorskip`ped. The few skips that are right on some machines
  are listed in `EXPECTED_SKIPS`, each with its reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# ----------------------------------------------------------------- bench marker

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "bench: a measurement that prints numbers and asserts nothing; "
        "deselected unless -m selects it (pytest -m bench)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect `bench` tests unless the -m expression names them."""
    if "bench" in (config.option.markexpr or ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("bench") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# ----------------------------------------------------------------- no silent skips

def _not_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() != 0


@dataclass(frozen=True)
class ExpectedSkip:
    """A skip that is right on some machines: tests under `where` (a node id prefix)
    whose skip reason matches `reason` (a regex), because `why`; only on machines where
    `when()` holds (CI runs as root on Linux x86_64, where none of these applies)."""

    where: str
    reason: str
    why: str
    when: Callable[[], bool] = lambda: True


EXPECTED_SKIPS: tuple[ExpectedSkip, ...] = (
    ExpectedSkip("tests/test_mlx_backend.py", r"MLX has no build for this platform",
                 "mlx ships only for macOS arm64 and, as mlx[cpu], Linux x86_64 "
                 "(the dev extra installs it exactly there)"),
    ExpectedSkip("tests/test_index_processes.py", r"cannot mount a tmpfs here",
                 "the full-disk check mounts a small tmpfs, which needs root",
                 when=_not_root),
)


def _skip_reason(longrepr: object) -> str:
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _expected(nodeid: str, reason: str) -> bool:
    return any(nodeid.startswith(e.where) and re.search(e.reason, reason) and e.when()
               for e in EXPECTED_SKIPS)


def _unexpected_message(reason: str) -> str:
    return (f"unexpected skip: {reason}\n"
            "A test that should run on this machine did not. Install what it needs, or, if it "
            "truly cannot run here, add it to EXPECTED_SKIPS in tests/conftest.py with a reason.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """An unexpected skip (setup or call) is reported as a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report.longrepr)
        if not _expected(report.nodeid, reason):
            report.outcome = "failed"
            report.longrepr = _unexpected_message(reason)


class _SkippedModule(pytest.Item):
    """Stands for a test module that skipped itself at import: fails with the reason."""

    def __init__(self, *, reason: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.reason = reason

    def runtest(self) -> None:
        pytest.fail(_unexpected_message(self.reason), pytrace=False)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.name}: skipped at import"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module that skips itself at import (importorskip, allow_module_level) unexpectedly
    becomes one failing test instead of vanishing from the count."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and isinstance(collector, pytest.Module):
        reason = _skip_reason(report.longrepr)
        if not _expected(report.nodeid, reason):
            item = _SkippedModule.from_parent(collector, name="<module skipped>", reason=reason)
            outcome.force_result(pytest.CollectReport(  # type: ignore[attr-defined]
                report.nodeid, "passed", None, [item]))
