"""Install steps and the one runner that executes them.

Each step can `check` the current state without changing anything and `apply` what is off.
`--dry-run` and `status` only check; an install applies the steps whose check is not ok, in
order, so a re-run on a healthy installation changes nothing and a re-run on a broken one
repairs exactly what is broken.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Literal

import psycopg

from installer import db
from installer.console import Console
from installer.credentials import ConnInfo
from installer.errors import InstallerError, ServerError

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

    def prepare(self) -> None:  # noqa: B027 (optional: most steps have nothing to prepare)
        """Work that `check` or `apply` needs and that only reads the checkout (e.g. parsing
        SQL files), done ahead into a cache: once a run has a change to make, `run_steps`
        calls it for the later steps in a background thread while the earlier ones apply
        (initdb, a server start: waits on other processes). It changes nothing; what it
        raises is ignored, as the step's own check and apply meet it again."""


class DatabaseStep(Step):
    """A step that checks a database through one connection as `conn`'s role. While that
    database does not answer (server down, not created yet, role missing) its check reports
    "blocked" with the reason instead of raising: in a plan or `status` the steps before it
    (the server, the roles) are what will make it answerable."""

    waits_for = "after the learning database exists"
    autocommit: ClassVar[bool] = False  # of the check's connection

    def __init__(self, conn: ConnInfo):
        self.conn = conn

    def check(self) -> Check:
        try:
            connection = db.connect(self.conn, autocommit=self.autocommit)
        except ServerError as exc:
            return Check("blocked", f"{self.waits_for} (now: {db.reason(exc.__cause__ or exc)})")
        with connection:
            return self.check_in(connection)

    @abstractmethod
    def check_in(self, conn: psycopg.Connection) -> Check:
        """The check, on an open connection; must not change anything."""


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
    ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare")
    prepared: dict[int, Future[None]] = {}  # by id(step), once a change is due
    try:
        for index, step in enumerate(steps):
            if (preparing := prepared.get(id(step))) is not None:
                preparing.exception()  # wait for it, rather than do the same work twice
            check = checked(step)
            if check.ok:
                result = StepResult(step.title, "ok", check.detail, check)
            elif dry_run:
                verb = {"create": "will create", "change": "will change",
                        "repair": "will repair", "blocked": "will follow"}[check.state]
                result = StepResult(step.title, "planned",
                                    f"{verb}: {check.detail}".rstrip(": "), check, step.diff())
            else:
                if not prepared:
                    prepared = {id(later): ahead.submit(later.prepare)
                                for later in steps[index + 1:]}
                with console.working(step.title), server_errors(step):
                    done = step.apply(check)
                result = StepResult(step.title, "changed", done, check)
            console.step(result.title, result.state, result.detail, diff=result.diff,
                         action=check.state)
            results.append(result)
    finally:
        ahead.shutdown(wait=False, cancel_futures=True)
    return results
