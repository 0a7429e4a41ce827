"""One run at a time per installation: an exclusive `flock` on the checkout and the instance.

Every command that changes state holds the checkout's lock (`.env.lock` beside `.env`,
gitignored) before it reads `.env`, and the instance's lock (see Backend.lock_file) once it
knows where the instance lives, so a second run waits, then reads what the first one wrote
and finds the work done. The kernel drops a `flock` when its holder dies (kill -9 included):
a lock is never stale.
The holder writes its PID and command into the file, which the waiting run shows.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from installer.console import Console
from installer.errors import EnvironmentProblem

CHECKOUT_LOCK = ".env.lock"
_POLL = 0.2


class RunLocks:
    """The locks one run holds, released together when the run ends."""

    def __init__(self, console: Console, command: str):
        self.console = console
        self.command = command  # as a hint shows it: `python install.py --full`
        self._held: dict[Path, int] = {}

    def hold(self, path: Path) -> None:
        """Take the lock in `path` (created if missing), waiting for another run to finish."""
        path = path.absolute()
        if path in self._held:
            return
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot create the lock file {path}: {exc.strerror}",
                hint=f"make {path.parent} writable for this user, then run the same "
                "command again") from exc
        try:
            self._wait_for(fd, path)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {self.command}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._held[path] = fd

    def _wait_for(self, fd: int, path: Path) -> None:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if not told:
                    self.console.warn(f"another run of {_holder(path)} holds the lock {path}; "
                                      "waiting for it to finish")
                    told = True
                time.sleep(_POLL)

    def release(self) -> None:
        for fd in self._held.values():
            os.close(fd)  # closing the descriptor drops the flock
        self._held.clear()


def _holder(path: Path) -> str:
    """'`COMMAND` (pid N)' as the holder wrote it, or what can be said without it."""
    with contextlib.suppress(OSError, ValueError):
        pid, _, command = path.read_text().strip().partition(" ")
        if pid:
            return f"{command or 'the installer'} (pid {int(pid)})"
    return "the installer"


@contextlib.contextmanager
def run_locked(console: Console, project_dir: Path, command: str) -> Iterator[RunLocks]:
    """Hold the checkout's lock for the whole run; the run adds the instance's once it knows
    where the instance lives (RunContext.installation)."""
    locks = RunLocks(console, command)
    try:
        locks.hold(project_dir / CHECKOUT_LOCK)
        yield locks
    finally:
        locks.release()
