"""Each test session's temp directory names its owner, so a later session can clean up after
one that died (kill -9 of pytest leaves its clusters running and its directory behind).

Several sessions run at once on one machine (other checkouts, xdist workers): a directory is
swept only when its marker names a process that is gone. One without a marker (being made,
or made by an older suite) is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from installer.processes import alive

PREFIX = "learning-tests-"
MARKER = ".owner"


def _started(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), which tells a reused pid
    from the one recorded; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name before ")" may hold spaces


def claim(directory: Path) -> None:
    """Mark `directory` as this process's."""
    pid = os.getpid()
    (directory / MARKER).write_text(f"{pid} {_started(pid)}\n")


def owner_alive(directory: Path) -> bool | None:
    """Whether the process that claimed `directory` still runs; None when it has no marker."""
    try:
        pid, started = (directory / MARKER).read_text().split()
    except (OSError, ValueError):
        return None
    return alive(int(pid)) and _started(int(pid)) == started


def sweep(root: Path | None = None) -> list[Path]:
    """Stop every cluster in the session directories under `root` (the temp directory) whose
    owner is gone, and remove those directories; returns them."""
    swept = []
    for directory in sorted((root or Path(tempfile.gettempdir())).glob(f"{PREFIX}*")):
        if owner_alive(directory) is not False:
            continue
        stopped = [stop_postmaster(pidfile) for pidfile in _postmaster_pids(directory)]
        try:
            for pid in filter(None, stopped):
                wait_gone(pid)
        except AssertionError:
            continue  # a server that does not go: its files stay, the next session tries again
        shutil.rmtree(directory, ignore_errors=True)
        swept.append(directory)
    return swept


def _postmaster_pids(directory: Path) -> list[Path]:
    found = []
    for parent, dirs, files in os.walk(directory):  # symbolic links are not followed
        if "postmaster.pid" in files:
            found.append(Path(parent) / "postmaster.pid")
            dirs.clear()  # nothing of interest inside a data directory
    return found


def stop_postmaster(pidfile: Path) -> int | None:
    """Immediate shutdown (SIGQUIT, as `pg_ctl stop -m immediate`) of the server of
    `pidfile`'s data directory; its pid, or None when none runs there (a pid now used by
    another process is left alone)."""
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
        if Path(f"/proc/{pid}/cwd").resolve() != pidfile.parent.resolve():  # a postmaster
            return None  # lives in its data directory
        os.kill(pid, signal.SIGQUIT)
    except (OSError, ValueError):
        return None
    return pid


def wait_gone(pid: int, timeout: float = 10) -> None:
    """Wait until process `pid` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive after {timeout} s")
