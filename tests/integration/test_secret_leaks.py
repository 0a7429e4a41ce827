"""No password from `.env` ever leaks: not in any command's output (text or `--json`, success
or error), not on any process's command line while the installer works, not in any file
outside `.env` and `~/.pgpass`.

One real native installation serves every check: the module installs it with a sampler of
`/proc/*/cmdline` running, then runs every command against it, with and without `--json`,
healthy and with the server stopped, with the sampler still running.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import Project, make_project, stop_instance

SECRET_KEYS = ("PGPASSWORD", "LEARNING_ADMIN_PASSWORD", "LEARNING_AGENT_PASSWORD")
# plus ~/.pgpass, which holds the agent's password by design; pgAdmin's pgpass (mode 0600,
# gitignored) is what its server registration reads instead of a password in servers.json
ALLOWED_FILES = (".env", ".pgadmin/pgpass")
SKIPPED_DIRS = {".venv", "__pycache__", ".git", ".npm"}


class CmdlineSampler(threading.Thread):
    """Reads every process's command line over and over until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        own = str(os.getpid())
        while not self._stop_event.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == own:
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        raw = f.read()
                except OSError:
                    continue
                if raw:
                    self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            time.sleep(0.001)

    def stop(self) -> set[str]:
        self._stop_event.set()
        self.join()
        return self.seen


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    output: str


@dataclass
class Installed:
    project: Project
    secrets: dict[str, str]
    runs: list[Run] = field(default_factory=list)
    cmdlines: set[str] = field(default_factory=set)
    started: float = 0.0

    def run(self, *args: str) -> Run:
        result = self.project.run(*args)
        done = Run(args, result.returncode, result.stdout + result.stderr)
        self.runs.append(done)
        return done


def fragments(secret: str, size: int = 8) -> set[str]:
    """Every `size`-character piece of `secret`: a truncated password is a leak too."""
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def leaked(text: str, secrets: dict[str, str]) -> list[str]:
    return [key for key, secret in secrets.items()
            if any(piece in text for piece in fragments(secret))]


COMMANDS = [("status",), ("doctor",), ("logs",), ("--print-config",), ("detect",),
            ("migrate", "--status"), ("export",), ("backup",), ("--dry-run",), ("--full",),
            ("refresh",), ("compose",)]
STOPPED = [("status",), ("doctor",), ("export",), ("migrate", "--status"), ("backup",),
           ("logs",), ("status", "--verbose")]
ERRORS = [("restore", "/nonexistent/none.dump", "--yes"),
          ("migrate", "--accept-checksum", "nope/001_none"), ("--profile", "no-such-profile"),
          ("--port", "not-a-number")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, shared_tmp: Path) -> Iterator[Installed]:
    project = make_project(tmp_path_factory.mktemp("leaks"), shared_tmp)
    state = Installed(project, {}, started=time.time())
    sampler = CmdlineSampler()
    sampler.start()
    try:
        result = project.install("--mcp-clients", "claude-code,cursor,vscode,claude-desktop,"
                                 "gemini,codex")
        assert result.returncode == 0, result.stdout + result.stderr
        env = project.read_env()
        state.secrets = {key: env[key] for key in SECRET_KEYS}
        state.runs.append(Run(("--full", "(first install)"), 0, result.stdout + result.stderr))
        for args in COMMANDS + ERRORS:
            state.run(*args)
            state.run(*args, "--json")
        dumps = sorted((project.path / "backups").glob("*.dump"))
        assert dumps, "backup wrote no dump"
        state.run("restore", str(dumps[-1]), "--yes")
        state.run("stop")
        for args in STOPPED:
            state.run(*args)
            state.run(*args, "--json")
        state.run("start", "--json")
        state.run("restore", str(dumps[-1]), "--yes", "--json")
    finally:
        state.cmdlines = sampler.stop()
    yield state
    stop_instance(project.data_dir)


def test_the_commands_really_ran_and_failed_where_they_should(installed: Installed) -> None:
    codes: dict[tuple[str, ...], int] = {}
    for run in installed.runs:  # the first run of each: before the server was stopped
        codes.setdefault(run.args, run.code)
    assert codes[("status",)] == 0 and codes[("backup",)] == 0
    restores = [run for run in installed.runs
                if run.args[0] == "restore" and not run.args[1].startswith("/nonexistent")]
    assert restores and all(run.code == 0 for run in restores), restores
    assert codes[("status", "--verbose")] != 0  # the server was stopped
    assert all(codes[args] != 0 for args in ERRORS)


@pytest.mark.parametrize("json_flag", [False, True], ids=["text", "json"])
def test_no_password_in_any_output(installed: Installed, json_flag: bool) -> None:
    runs = [run for run in installed.runs if ("--json" in run.args) == json_flag]
    assert len(runs) > 10
    leaks = [(run.args, keys) for run in runs if (keys := leaked(run.output, installed.secrets))]
    assert not leaks, f"passwords printed: {leaks}"


def test_no_password_on_any_command_line(installed: Installed) -> None:
    lines = installed.cmdlines
    # the sampler saw the installer's child processes, so the check can fail
    for program in ("initdb", "pg_ctl", "pg_dump", "pg_restore"):
        assert any(program in line for line in lines), f"never saw {program} run"
    leaks = [line for line in lines if leaked(line, installed.secrets)]
    assert not leaks, f"passwords on command lines: {leaks}"


def files_under(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def test_no_password_in_files_outside_env_and_pgpass(installed: Installed) -> None:
    project = installed.project
    allowed = {project.path / name for name in ALLOWED_FILES} | {project.home / ".pgpass"}
    roots = [project.path, project.home, project.data_dir]  # checkout, client configs, instance
    scanned = [path for root in roots for path in files_under(root) if path not in allowed]
    tmp = Path(tempfile.gettempdir())  # anything the run left behind there (password files)
    scanned += [path for path in tmp.glob("*") if path.is_file()
                and path.stat().st_mtime >= installed.started and path.stat().st_size < 1 << 20]
    names = {path.name for path in scanned}
    assert {"manifest.json", "server.log", "settings.json", "config.toml",
            "claude_desktop_config.json", "mcp.json", ".mcp.json"} <= names
    secrets = [secret.encode() for secret in installed.secrets.values()]
    leaks = []
    for path in scanned:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        leaks += [str(path) for secret in secrets if secret in data]
    assert not leaks, f"passwords written to: {leaks}"
    for name in ALLOWED_FILES:
        if (project.path / name).exists():
            assert (project.path / name).stat().st_mode & 0o777 == 0o600, name
    pgpass = (project.home / ".pgpass").read_text()
    assert installed.secrets["LEARNING_AGENT_PASSWORD"] in pgpass
    assert installed.secrets["LEARNING_ADMIN_PASSWORD"] not in pgpass


def test_backups_are_private_files(installed: Installed) -> None:
    dumps = list((installed.project.path / "backups").glob("*.dump"))
    assert dumps and all(stat.S_IMODE(d.stat().st_mode) == 0o600 for d in dumps)
