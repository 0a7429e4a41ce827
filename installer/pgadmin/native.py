"""pgAdmin 4 from PyPI as a background process, in a virtual environment of its own.

`.pgadmin/venv` holds pgAdmin (its dependencies are heavy and pinned: never the installer's
environment); `.pgadmin/data` its configuration database, sessions and the user's storage,
where the pgpass file goes. Server mode with the generated login, bound to 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from installer.credentials import ConnInfo
from installer.errors import EnvironmentProblem, ServerError
from installer.fileutil import write_atomic
from installer.pgadmin.registration import Login, choose_port, wait_until_up, write_files
from installer.steps import Check, ok

REQUIREMENT = "pgadmin4>=9,<10"
SCRIPT = "pgAdmin4.py"
INSTALL_TIMEOUT = 900


class NativePgadmin:
    def __init__(self, login: Login, conn: ConnInfo, folder: Path, wanted_port: int | None):
        self.login = login
        self.conn = conn
        self.folder = folder
        self.venv = folder / "venv"
        self.data = folder / "data"
        self.logfile = folder / "pgadmin.log"
        self.pidfile = folder / "pgadmin.pid"
        self.port = choose_port(wanted_port, self._running_port())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def python(self) -> Path:
        return self.venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    # -- state ------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of our pgAdmin when it runs (a reused pid of another program is not it)."""
        try:
            pid = int(self.pidfile.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        cmdline = Path(f"/proc/{pid}/cmdline")  # where there is /proc, make sure it is pgAdmin
        return pid if not cmdline.exists() or SCRIPT.encode() in cmdline.read_bytes() else None

    def _running_port(self) -> int | None:
        try:
            return int(self.pidfile.read_text().split()[1]) if self.pid() else None
        except (OSError, ValueError, IndexError):
            return None

    def is_running(self) -> bool:
        return self.pid() is not None

    def check(self) -> Check:
        if not self.python.exists():
            return Check("create", f"pgAdmin 4 from PyPI in {self.venv}, then start on {self.url}")
        if not self.is_running():
            return Check("repair", f"not running; start it on {self.url}")
        if self._running_port() != self.port:
            return Check("change", f"port {self._running_port()} → {self.port}")
        return ok(self.url)

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "running": self.is_running(), "pid": self.pid(),
                "log": str(self.logfile), "email": self.login.email}

    def log_tail(self, lines: int = 30) -> str:
        if not self.logfile.exists():
            return f"(no log at {self.logfile})"
        text = self.logfile.read_text(errors="replace").splitlines()[-lines:]
        return f"last lines of {self.logfile}:\n" + "\n".join(text)

    # -- actions ----------------------------------------------------------------------------
    def start(self) -> str:
        if self.is_running():
            if self._running_port() == self.port:
                return f"pgAdmin already running on {self.url}"
            self.stop()
        package = self._install()
        self._configure(package)
        self.logfile.touch(mode=0o600)
        with self.logfile.open("ab") as log:
            process = subprocess.Popen([str(self.python), SCRIPT], cwd=package,
                                       stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        write_atomic(self.pidfile, f"{process.pid} {self.port}\n".encode(), mode=0o600)
        try:
            waited = wait_until_up(self.url, lambda: process.poll() is None, self.log_tail)
        except ServerError:
            self.stop()  # never leave a half-started pgAdmin behind
            raise
        return f"pgAdmin on {self.url} (pid {process.pid}, ready after {waited:.1f} s)"

    def _install(self) -> Path:
        """The pgadmin4 package folder, installed into the venv when missing."""
        if not self.python.exists():
            self._run([sys.executable, "-m", "venv", str(self.venv)], "create its venv")
            self._run([str(self.python), "-m", "pip", "install", "--quiet",
                       "--disable-pip-version-check", REQUIREMENT], "install pgadmin4 from PyPI")
        found = self._run([str(self.python), "-c",  # a namespace package: no __file__
                           "import pgadmin4; print(list(pgadmin4.__path__)[0])"],
                          "find the pgadmin4 package")
        return Path(found.strip())

    def _run(self, args: list[str], doing: str, env: dict[str, str] | None = None) -> str:
        try:
            done = subprocess.run(args, capture_output=True, text=True, env=env,
                                  timeout=INSTALL_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EnvironmentProblem(f"pgAdmin: could not {doing} ({exc})") from exc
        if done.returncode != 0:
            raise EnvironmentProblem(f"pgAdmin: could not {doing}",
                                     hint="check the network to PyPI, then re-run",
                                     details=(done.stdout + done.stderr)[-2000:])
        return done.stdout

    def _configure(self, package: Path) -> None:
        """config_local.py beside the package, the configuration database with the login on
        the first start, the server registration, the pgpass and TLS files every time."""
        write_atomic(package / "config_local.py", "\n".join([
            "# Written by the learning installer; rewritten on every start.",
            "SERVER_MODE = True",
            f"DATA_DIR = {str(self.data)!r}",
            "DEFAULT_SERVER = '127.0.0.1'",
            f"DEFAULT_SERVER_PORT = {self.port}",
            "UPGRADE_CHECK_ENABLED = False",
            "SHOW_GRAVATAR_IMAGE = False", ""]).encode())
        servers, _ = write_files(self.folder, self.conn.host, self.conn.port, self.conn,
                                 storage=self.data / "storage" / self.login.storage_dir)
        setup = str(package / "setup.py")
        if not (self.data / "pgadmin4.db").exists():
            # the password reaches setup-db through its environment, never a command line
            self._run([str(self.python), setup, "setup-db"], "create its configuration database",
                      env={**os.environ, "PGADMIN_SETUP_EMAIL": self.login.email,
                           "PGADMIN_SETUP_PASSWORD": self.login.password})
        self._run([str(self.python), setup, "load-servers", str(servers), "--user",
                   self.login.email, "--replace"], "register the learning server")

    def stop(self) -> str:
        pid = self.pid()
        if pid is None:
            return "pgAdmin is not running"
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            if self.pid() is None:
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        return f"stopped pgAdmin (pid {pid})"

    def remove(self, purge: bool) -> str:
        message = self.stop()
        if purge and self.data.exists():
            shutil.rmtree(self.data)
            message += f"; deleted {self.data}"
        return message
