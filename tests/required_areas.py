"""Required areas: tests that must run in CI, never skip there.

A test marked `@pytest.mark.required_area("docker-mode")` (or "mcp", "pgvector", "pgbouncer")
that skips is turned into a failure when `CI` is set (`CI=true`, as GitHub Actions and most CI
systems set it): a green CI run then means the area really ran. Locally such a skip stays a
skip, and the end of the run lists each one with its reason, so a developer sees what did not
run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

AREAS = ("docker-mode", "mcp", "pgvector", "pgbouncer")
_SKIP_KEY = "required_area_skip"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"required_area(name): one of {', '.join(AREAS)}; a skip fails in CI")
    config.pluginmanager.register(_SkipList(), "required-area-skips")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    marker = item.get_closest_marker("required_area")
    if marker is None or not report.skipped or hasattr(report, "wasxfail"):
        return
    area = marker.args[0]
    if area not in AREAS:
        raise pytest.UsageError(f"{item.nodeid}: unknown required area {area!r} ({AREAS})")
    reason = _skip_reason(report)
    if in_ci():
        report.outcome = "failed"
        report.longrepr = (f"required area {area!r} skipped in CI (CI={os.environ['CI']}): "
                           f"{reason}\nThe test set-up (scripts/test.sh) must provide it.")
    else:
        report.user_properties.append((_SKIP_KEY, f"{area}\t{reason}"))


class _SkipList:
    """Collects required-area skips (in the controller too under xdist) and lists them."""

    def __init__(self) -> None:
        self.skips: set[tuple[str, str, str]] = set()  # (area, test, reason)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == _SKIP_KEY and report.skipped:
                area, reason = value.split("\t", 1)
                self.skips.add((area, report.nodeid, reason))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.skips:
            return
        terminalreporter.section("required areas skipped (these fail in CI)", yellow=True)
        for area, nodeid, reason in sorted(self.skips):
            terminalreporter.line(f"[{area}] {nodeid}: {reason}")
