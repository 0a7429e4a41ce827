"""A skipped test of a required area fails the run in CI and is listed locally."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

@pytest.mark.required_area("mcp")
def test_needs_npx():
    pytest.skip("npx is not installed")

def test_ordinary_skip():
    pytest.skip("not relevant here")
"""


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(SKIPPING)
    return pytester.runpytest("-p", "tests.required_areas", "-p", "no:cacheprovider")


def test_in_ci_a_required_area_skip_fails_with_its_reason(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, "true")
    result.assert_outcomes(failed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*required area 'mcp' skipped in CI*npx is not installed*"])


def test_locally_it_stays_a_skip_and_the_reason_is_listed(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, None)
    result.assert_outcomes(skipped=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*required areas skipped*",
                                 "[[]mcp[]] *test_needs_npx: npx is not installed"])


def test_ci_false_counts_as_local(pytester: pytest.Pytester,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(pytester, monkeypatch, "false").ret == pytest.ExitCode.OK
