"""Running PostgreSQL as an unprivileged user when the installer itself runs as root.

PostgreSQL refuses to run as root, and it should not: on CI and in containers the installer
creates (once) a system user and runs initdb and the server as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installer.errors import EnvironmentProblem


@dataclass(frozen=True)
class ServiceUser:
    """Who runs the server: `None` name means the current (non-root) user."""

    name: str | None
    uid: int
    gid: int

    def run(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run `command` as this user, from a directory it can enter, never through a shell."""
        if self.name is not None:
            kwargs.setdefault("user", self.uid)
            kwargs.setdefault("group", self.gid)
            kwargs.setdefault("extra_groups", [])
            kwargs.setdefault("cwd", "/")
        kwargs.setdefault("text", True)
        kwargs.setdefault("check", False)
        return subprocess.run(command, **kwargs)

    def can_reach(self, path: Path, access: str = "-x") -> bool:
        """Whether this user may traverse to `path` (and read/execute/write it, per `access`)."""
        if self.name is None:
            return True
        return self.run(["test", access, str(path)], capture_output=True).returncode == 0

    def own(self, path: Path) -> None:
        if self.name is not None:
            os.chown(path, self.uid, self.gid)


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def ensure_service_user(name: str) -> ServiceUser:
    """The current user when not root; otherwise the system user `name`, created if missing."""
    if not running_as_root():
        return ServiceUser(None, os.getuid(), os.getgid())
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create_system_user(name)
    if entry.pw_uid == 0:
        raise EnvironmentProblem(f"service user {name!r} is root; PostgreSQL must not run as root",
                                 hint="choose another user with LEARNING_SERVICE_USER")
    return ServiceUser(name, entry.pw_uid, entry.pw_gid)


def _create_system_user(name: str) -> pwd.struct_passwd:
    nologin = shutil.which("nologin") or "/bin/false"
    if shutil.which("useradd"):
        command = ["useradd", "--system", "--user-group", "--no-create-home",
                   "--home-dir", "/nonexistent", "--shell", nologin, name]
    elif shutil.which("adduser"):  # busybox / Alpine
        command = ["adduser", "-S", "-D", "-H", "-h", "/nonexistent", "-s", nologin, name]
    else:
        raise EnvironmentProblem(f"cannot create the service user {name!r}: no useradd or adduser",
                                 hint=f"create a non-root user named {name} yourself and re-run")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise EnvironmentProblem(f"could not create the service user {name!r}: "
                                 f"{result.stderr.strip()}",
                                 hint=f"create a non-root user named {name} yourself and re-run")
    return pwd.getpwnam(name)
