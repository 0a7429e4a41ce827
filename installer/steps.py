"""Install steps and the one runner that executes them.

Each step can `check` the current state without changing anything and `apply` what is off.
`--dry-run` and `status` only check; an install applies the steps whose check is not ok, in
order, so a re-run on a healthy installation changes nothing and a re-run on a broken one
repairs exactly what is broken.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import psycopg

from installer import db
from installer.console import Console
from installer.errors import InstallerError

State = Literal["ok", "create", "change", "repair", "blocked"]


@dataclass(frozen=True)
class Check:
    state: State
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def ok(detail: str = "") -> Check:
    return Check("ok", detail)


class Step(ABC):
    """One provisioning action with a title shown to the user."""

    title: str
    # A problem found by apply() that must fail the run without stopping the steps after it
    # (e.g. a bad export file): the install goes on and exits non-zero at the end.
    deferred_error: InstallerError | None = None

    @abstractmethod
    def check(self) -> Check:
        """The current state; must not change anything."""

    @abstractmethod
    def apply(self, check: Check) -> str:
        """Bring the state in line; returns a short description of what was done."""

    def diff(self) -> str:
        """For --dry-run: the file change `apply` would make, as a unified diff with secrets
        masked; empty when the step writes no file."""
        return ""


@dataclass(frozen=True)
class StepResult:
    title: str
    state: str  # ok | changed | planned
    detail: str
    check: Check
    diff: str = ""


@contextmanager
def server_errors(step: Step) -> Iterator[None]:
    """A `psycopg.Error` escaping a step becomes a ServerError naming the step (exit 5)."""
    try:
        yield
    except psycopg.Error as exc:
        raise db.refused(exc, step.title) from exc


def checked(step: Step) -> Check:
    """`step.check()`, with the server's errors translated."""
    with server_errors(step):
        return step.check()


def run_steps(steps: list[Step], console: Console, *, dry_run: bool = False) -> list[StepResult]:
    results = []
    for step in steps:
        check = checked(step)
        if check.ok:
            result = StepResult(step.title, "ok", check.detail, check)
        elif dry_run:
            verb = {"create": "will create", "change": "will change", "repair": "will repair",
                    "blocked": "will follow"}[check.state]
            result = StepResult(step.title, "planned", f"{verb}: {check.detail}".rstrip(": "),
                                check, step.diff())
        else:
            with console.working(step.title), server_errors(step):
                done = step.apply(check)
            result = StepResult(step.title, "changed", done, check)
        console.step(result.title, result.state, result.detail, diff=result.diff,
                     action=check.state)
        results.append(result)
    return results
