"""`Installation.steps()` and `run_steps` in-process, with a fake backend and no server.

The fake backend registers under its own mode for the test; its "server" is a dict, and its
admin connection points at a closed port, so every step that needs the database sees a server
that is down. The real-server tests (tests/integration) stay the reference for what the steps do
to a database; these check the order, the runner and the exit codes, in well under a second.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest

from installer import backends, cli
from installer.agent_guard import AgentGuardStep
from installer.backends import base
from installer.backends.base import Backend
from installer.capture.steps import CaptureSpoolStep, ClaudeHooksStep
from installer.config import Settings
from installer.console import Console
from installer.context import RunContext
from installer.credentials import ConnInfo, Passwords
from installer.detect import Detection
from installer.errors import (
    ConfigError,
    DataError,
    EnvironmentProblem,
    ExitCode,
    InstallerError,
    MigrationError,
    ServerError,
)
from installer.exchange.steps import ImportExportsStep, PrePushHookStep
from installer.exchange.triggers import ExchangeTriggersStep
from installer.installation import Installation
from installer.migrations import load_module_migrations, statements
from installer.other_databases import OtherDatabasesStep
from installer.project_steps import EnvFileStep, McpConfigStep, MigrationsStep, PgpassStep
from installer.provision import AgentGrantsStep, RolesAndDatabaseStep, VectorExtensionStep
from installer.schema_maintenance import (
    EmbeddingColumnsStep,
    MaterializedViewsStep,
    PartitionsStep,
)
from installer.steps import Check, DatabaseStep, Step, ok, run_steps

REPO = Path(__file__).resolve().parent.parent.parent
FAKE = "fake-for-tests"


@dataclass
class FakeServer:
    """What the fake backend manages: two facts, what was applied, and faults to inject."""

    installed: bool = False
    running: bool = False
    applied: list[str] = field(default_factory=list)
    fail_check: InstallerError | None = None
    fail_apply: InstallerError | None = None


class FakeServerStep(Step):
    def __init__(self, server: FakeServer, fact: str):
        self.server = server
        self.fact = fact
        self.title = f"Fake server {fact}"

    def check(self) -> Check:
        if self.server.fail_check:
            raise self.server.fail_check
        return ok() if getattr(self.server, self.fact) else Check("create", f"make it {self.fact}")

    def apply(self, check: Check) -> str:
        if self.server.fail_apply:
            raise self.server.fail_apply
        setattr(self.server, self.fact, True)
        self.server.applied.append(self.fact)
        return f"now {self.fact}"


class FakeBackend(Backend):
    mode = FAKE
    summary = "a dict standing in for a server (tests only)"
    default_port = None
    owns_admin_password = False
    may_lock_other_databases = False
    server: ClassVar[FakeServer]  # set per test, shared by every build

    def __init__(self, port: int):
        self.port = port

    @classmethod
    def build(cls, settings: Settings, recorded: Mapping[str, str], passwords: Passwords,
              notes: list[str]) -> Self:
        return cls(settings.port or 5432)

    def server_steps(self) -> list[Step]:
        return [FakeServerStep(self.server, "installed"), FakeServerStep(self.server, "running")]

    def admin_conn(self, dbname: str = "postgres") -> ConnInfo:
        return ConnInfo("127.0.0.1", self.port, dbname, "fake_admin", "fake-admin-password")

    def recorded(self) -> dict[str, str]:
        return {"LEARNING_FAKE_KEY": "kept"}

    def describe(self) -> dict[str, Any]:
        return {"port": self.port, "running": self.server.running}

    def is_running(self) -> bool:
        return self.server.running

    def start(self) -> str:
        self.server.running = True
        return "started"

    def stop(self) -> str:
        self.server.running = False
        return "stopped"

    def remove(self, purge: bool) -> str:
        return "removed"

    def log_tail(self, lines: int = 30) -> str:
        return ""


# Steps that talk to the database; with the fake backend they all meet a closed port.
NEEDS_SERVER = (RolesAndDatabaseStep, OtherDatabasesStep, VectorExtensionStep, MigrationsStep,
                EmbeddingColumnsStep, PartitionsStep, MaterializedViewsStep, AgentGrantsStep,
                AgentGuardStep, ExchangeTriggersStep, CaptureSpoolStep)


class LocalOnly(Installation):
    """The installation without the steps that need a server: what a healthy fake can pass."""

    def steps(self, console: Console | None = None) -> list[Step]:
        return [s for s in super().steps(console) if not isinstance(s, NEEDS_SERVER)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeServer:
    monkeypatch.setitem(base._REGISTRY, FAKE, FakeBackend)
    monkeypatch.setattr(FakeBackend, "server", FakeServer(), raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "pgpass"))
    monkeypatch.delenv("LEARNING_PROFILE", raising=False)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "sql").symlink_to(REPO / "sql")
    return FakeBackend.server


def _installation(project_dir: Path, kind: type[Installation] = Installation,
                  **overrides: Any) -> Installation:
    values: dict[str, Any] = {"mode": FAKE, "port": _closed_port(), "mcp_clients": ["claude-code"],
                              "import_exports": False, "install_hooks": False,
                              "capture_agent_work": False, **overrides}
    settings = Settings(project_dir=project_dir, **values)
    passwords = Passwords.from_env({})
    backend = backends.backend_class(FAKE).build(settings, {}, passwords, [])
    detection = Detection(os="test", in_container=False, docker_daemon=None,
                          docker_problem="not probed", system_pg=None, embedded_pg=None,
                          free_ports={})
    return kind(settings, {}, passwords, backend, detection)


Main = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Main:
    """cli.main in-process on an installation, with --json: (exit code, the JSON document)."""
    def run(installation: Installation, *argv: str) -> tuple[int, dict[str, Any]]:
        monkeypatch.setattr(RunContext, "installation", lambda self, **_: installation)
        code = cli.main([*argv, "--json", "--yes", "--project-dir",
                         str(installation.settings.project_dir)])
        return code, json.loads(capsys.readouterr().out)
    return run


def _kinds(steps: list[Step]) -> list[type[Step]]:
    return [type(step) for step in steps]


# -- Installation.steps() -------------------------------------------------------------------

def test_steps_come_in_install_order_with_the_backends_steps_after_env(
        server: FakeServer, tmp_path: Path) -> None:
    steps = _installation(tmp_path / "project").steps()
    assert _kinds(steps) == [
        EnvFileStep, FakeServerStep, FakeServerStep, RolesAndDatabaseStep, OtherDatabasesStep,
        VectorExtensionStep, MigrationsStep, EmbeddingColumnsStep, PartitionsStep,
        MaterializedViewsStep, AgentGrantsStep, AgentGuardStep, ExchangeTriggersStep,
        CaptureSpoolStep, PgpassStep, McpConfigStep, ClaudeHooksStep]
    assert [s.title for s in steps[1:3]] == ["Fake server installed", "Fake server running"]


def test_optional_steps_follow_the_settings(server: FakeServer, tmp_path: Path) -> None:
    everything = _kinds(_installation(
        tmp_path / "project", import_exports=True, install_hooks=True,
        mcp_clients=["claude-code", "cursor"]).steps())
    assert everything.index(ImportExportsStep) == everything.index(CaptureSpoolStep) + 1
    assert everything.count(McpConfigStep) == 2
    assert everything[-2:] == [PrePushHookStep, ClaudeHooksStep]
    bare = _kinds(_installation(tmp_path / "project", mcp_clients=[]).steps())
    assert McpConfigStep not in bare and ImportExportsStep not in bare


def test_env_values_carry_the_backends_keys_and_not_a_password_it_does_not_own(
        server: FakeServer, tmp_path: Path) -> None:
    values = _installation(tmp_path / "project").env_values()
    assert values["LEARNING_MODE"] == FAKE
    assert values["LEARNING_FAKE_KEY"] == "kept"
    assert "LEARNING_ADMIN_PASSWORD" not in values


# -- run_steps ------------------------------------------------------------------------------

def test_a_rerun_on_a_healthy_installation_applies_nothing(
        server: FakeServer, tmp_path: Path) -> None:
    installation = _installation(tmp_path / "project", LocalOnly)
    first = run_steps(installation.steps(), Console(quiet=True))
    # .env, the fake's two steps, ~/.pgpass, .mcp.json; no capture hooks to remove
    assert [r.state for r in first] == ["changed"] * 5 + ["ok"]
    assert server.applied == ["installed", "running"]
    env = installation.settings.env_path.read_bytes()

    again = run_steps(installation.steps(), Console(quiet=True))
    assert [r.state for r in again] == ["ok"] * len(again)
    assert server.applied == ["installed", "running"]
    assert installation.settings.env_path.read_bytes() == env


def test_a_rerun_repairs_exactly_what_is_broken(server: FakeServer, tmp_path: Path) -> None:
    installation = _installation(tmp_path / "project", LocalOnly)
    run_steps(installation.steps(), Console(quiet=True))
    server.running = False
    (tmp_path / "project" / ".mcp.json").unlink()

    results = run_steps(installation.steps(), Console(quiet=True))
    changed = [(type(step), r.check.state) for step, r in zip(installation.steps(), results,
                                                              strict=True) if r.state != "ok"]
    assert changed == [(FakeServerStep, "create"), (McpConfigStep, "create")]
    assert server.applied == ["installed", "running", "running"]


FAULTS = [(ConfigError, ExitCode.CONFIG), (EnvironmentProblem, ExitCode.ENVIRONMENT),
          (ServerError, ExitCode.SERVER), (MigrationError, ExitCode.MIGRATION),
          (DataError, ExitCode.DATA), (InstallerError, ExitCode.FAILED)]


@pytest.mark.parametrize("during", ["check", "apply"])
@pytest.mark.parametrize(("error", "code"), FAULTS)
def test_a_failing_step_ends_the_run_with_its_exit_code_and_stops_there(
        main: Main, server: FakeServer, tmp_path: Path, during: str,
        error: type[InstallerError], code: ExitCode) -> None:
    setattr(server, f"fail_{during}", error("the fake server says no", hint="fix the fake"))
    installation = _installation(tmp_path / "project", LocalOnly)

    exit_code, document = main(installation)

    assert exit_code == code
    assert document["ok"] is False and document["exit_code"] == code
    assert document["error"] == "the fake server says no" and document["hint"] == "fix the fake"
    assert server.applied == []
    assert [s["step"] for s in document["steps"]] == (
        [installation.settings.env_path.name + " with connection settings (mode 0600)"])
    assert not (tmp_path / "project" / ".mcp.json").exists()  # the steps after it did not run


class Ahead(Step):
    """A step that logs where and when its `prepare` ran; `wait_for` makes its apply last until
    another step has been prepared (or 5 s)."""

    def __init__(self, name: str, log: list[str], *, done: bool = False,
                 prepare_fails: bool = False, wait_for: threading.Event | None = None):
        self.title = name
        self.log = log
        self.done = done
        self.prepare_fails = prepare_fails
        self.wait_for = wait_for
        self.prepared = threading.Event()

    def prepare(self) -> None:
        self.log.append(f"prepare {self.title} in {threading.current_thread().name[:7]}")
        self.prepared.set()
        if self.prepare_fails:
            raise MigrationError("a bad file; check and apply report it themselves")

    def check(self) -> Check:
        self.log.append(f"check {self.title}")
        return ok() if self.done else Check("create", "make it")

    def apply(self, check: Check) -> str:
        if self.wait_for is not None:
            self.log.append(f"{self.title} saw it prepared: {self.wait_for.wait(5)}")
        self.done = True
        return "made"


def test_later_steps_prepare_in_the_background_while_an_earlier_one_applies() -> None:
    log: list[str] = []
    later = Ahead("later", log, prepare_fails=True)
    steps = [Ahead("first", log, done=True), Ahead("slow", log, wait_for=later.prepared), later]

    results = run_steps(steps, Console(quiet=True))

    assert [r.state for r in results] == ["ok", "changed", "changed"]
    # prepared by another thread during the slow apply; its error is left to its own check
    assert log == ["check first", "check slow", "prepare later in prepare",
                   "slow saw it prepared: True", "check later"]


def test_a_run_without_changes_and_a_plan_prepare_nothing() -> None:
    log: list[str] = []
    run_steps([Ahead("a", log, done=True), Ahead("b", log, done=True)], Console(quiet=True))
    run_steps([Ahead("c", log), Ahead("d", log)], Console(quiet=True), dry_run=True)
    assert log == ["check a", "check b", "check c", "check d"]


def test_the_migrations_step_prepares_every_file_split_into_statements() -> None:
    step = MigrationsStep(ConnInfo("127.0.0.1", _closed_port(), "db", "owner"), REPO / "sql")
    texts = [m.sql for module in step.modules for m in load_module_migrations(module)]
    statements.cache_clear()

    step.prepare()

    before = statements.cache_info()
    assert before.misses >= len(texts) > 10
    for text in texts:
        statements(text)
    assert statements.cache_info().misses == before.misses  # all of them were ready


# -- --dry-run ------------------------------------------------------------------------------

def test_a_plan_with_changes_is_exit_2_and_changes_nothing(
        main: Main, server: FakeServer, tmp_path: Path) -> None:
    installation = _installation(tmp_path / "project")

    code, document = main(installation, "--dry-run")

    assert code == ExitCode.CHANGES_PENDING
    assert document["dry_run"] is True
    states = [s["state"] for s in document["steps"]]
    assert set(states) == {"planned", "ok"}  # ok: no spool waiting, no capture hooks to remove
    assert document["changes"] == states.count("planned") == len(installation.steps()) - 2
    assert document["pending_migrations"]  # every migration, listed while the server is down
    assert server.applied == [] and not installation.settings.env_path.exists()
    assert not (tmp_path / "project" / ".mcp.json").exists()


def test_a_plan_on_a_healthy_installation_is_exit_0(
        main: Main, server: FakeServer, tmp_path: Path) -> None:
    installation = _installation(tmp_path / "project", LocalOnly)
    run_steps(installation.steps(), Console(quiet=True))

    code, document = main(installation, "--dry-run")

    assert code == ExitCode.OK
    assert document["changes"] == 0 and {s["state"] for s in document["steps"]} == {"ok"}


@pytest.mark.parametrize(("error", "_code"), FAULTS)
def test_a_plan_that_cannot_be_made_is_exit_1_whatever_the_error(
        main: Main, server: FakeServer, tmp_path: Path,
        error: type[InstallerError], _code: ExitCode) -> None:
    server.fail_check = error("cannot tell")
    code, document = main(_installation(tmp_path / "project"), "--dry-run")
    assert code == ExitCode.FAILED
    assert document["error"] == "cannot tell"


# -- blocked steps ---------------------------------------------------------------------------

def test_steps_that_need_the_server_are_blocked_while_it_is_down(
        server: FakeServer, tmp_path: Path) -> None:
    (tmp_path / "project" / "exports").symlink_to(REPO / "exports")
    installation = _installation(tmp_path / "project", import_exports=True)
    results = run_steps(installation.steps(), Console(quiet=True), dry_run=True)
    blocked = [type(step) for step, r in zip(installation.steps(), results, strict=True)
               if r.check.state == "blocked"]
    assert blocked == [RolesAndDatabaseStep, OtherDatabasesStep, VectorExtensionStep,
                       MigrationsStep, EmbeddingColumnsStep, PartitionsStep, MaterializedViewsStep,
                       AgentGrantsStep, AgentGuardStep, ExchangeTriggersStep, ImportExportsStep]
    for step, result in zip(installation.steps(), results, strict=True):
        if result.check.state == "blocked":
            assert result.detail.startswith("will follow: after the")
            # every step past the roles waits the one way, saying why (libpq's reason)
            assert isinstance(step, DatabaseStep) or type(step) in (RolesAndDatabaseStep,
                                                                    VectorExtensionStep), step
        if isinstance(step, DatabaseStep):
            assert "Connection refused" in result.check.detail


def test_a_blocked_step_whose_server_never_came_up_is_a_server_error(
        main: Main, server: FakeServer, tmp_path: Path) -> None:
    """The fake's server steps "succeed" but nothing listens: the first database step's apply
    fails with exit 5 and a reason, after the steps before it were applied."""
    installation = _installation(tmp_path / "project")

    code, document = main(installation)

    assert code == ExitCode.SERVER
    assert server.applied == ["installed", "running"]
    assert installation.settings.env_path.exists()
    assert "Connection refused" in document["error"], document["error"]


def test_an_external_server_that_does_not_answer_is_to_repair_with_libpqs_reason(
        tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, mode="external",
                        admin_url=f"postgresql://admin@127.0.0.1:{_closed_port()}/postgres")
    backend = backends.backend_class("external").build(settings, {}, Passwords.from_env({}), [])
    [reachable] = backend.server_steps()
    found = reachable.check()
    assert found.state == "repair"
    assert found.detail.startswith("does not answer: ") and "Connection refused" in found.detail
