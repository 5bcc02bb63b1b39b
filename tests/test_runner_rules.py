"""The runner's own rules (tests/runner_rules.py), on a throwaway test tree: an
unexpected skip fails, an expected one stays a skip, `bench` tests run only on -m bench."""

from __future__ import annotations

import pytest

import runner_rules

CONFTEST = "from runner_rules import *  # noqa: F403\n"

SKIPPING = '''
import pytest

def test_runs():
    pass

def test_skips_in_call():
    pytest.skip("no reason at all")

@pytest.fixture
def missing():
    pytest.skip("fixture skipped")

def test_skips_in_setup(missing):
    pass

@pytest.mark.skipif(True, reason="marker skip")
def test_skip_marker():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False

@pytest.mark.bench
def test_measure():
    print("measured")
'''


def test_unexpected_skips_fail_and_bench_is_deselected(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_a=SKIPPING)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1, deselected=1)
    result.stdout.fnmatch_lines(["*unexpected skip: no reason at all*",
                                 "*unexpected skip: fixture skipped*",
                                 "*unexpected skip: marker skip*"])
    bench = pytester.runpytest("-q", "-p", "no:cacheprovider", "-m", "bench")
    bench.assert_outcomes(passed=1, deselected=5)


def test_module_skipped_at_import_is_one_failure(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_b='''
import pytest
pytest.importorskip("no_such_module_for_semcode_tests")

def test_never_collected():
    pass
''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*unexpected skip: could not import 'no_such_module_for_semcode_tests'*"])


def test_expected_skip_stays_a_skip(pytester: pytest.Pytester,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_rules, "EXPECTED_SKIPS", (
        runner_rules.ExpectedSkip("test_c.py", r"needs a Mac", "only macOS has it"),
        runner_rules.ExpectedSkip("test_d.py", r"needs a Mac", "only macOS has it"),
        # right elsewhere, not on this machine: still a failure here
        runner_rules.ExpectedSkip("test_c.py", r"needs root", "root only", when=lambda: False),
    ))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_c='''
import pytest

def test_mac_only():
    pytest.skip("needs a Mac")

def test_other_reason():
    pytest.skip("something else")

def test_not_expected_on_this_machine():
    pytest.skip("needs root")
''', test_d='''
import pytest
pytest.skip("needs a Mac (module)", allow_module_level=True)
''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2, failed=2)
