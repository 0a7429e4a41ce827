"""The capture spool: events waiting for the database, one JSON object a line (mode 0600).

Writers and the deliverer hold an exclusive lock on the file while they touch it, so two hooks
firing at once never interleave, and an event appended during a delivery is never lost. Only
one delivery runs at a time (a second lock file), so the delivered prefix is always the one the
deliverer read. The hook imports this on every event: it loads nothing but `os` (and a lock).
"""

from __future__ import annotations

import os
import sys

DIRECTORY = ".learning"  # in the project, gitignored
SPOOL = "spool.jsonl"
LOG = "capture.log"
LOG_LIMIT = 1 << 20  # bytes; then the log moves to capture.log.1 and starts again
RUNNING = "running"  # one file per sub-agent run in progress: its start time
_DELIVERY_LOCK = "deliver.lock"

if sys.platform == "win32":  # lock the first byte of the file
    import msvcrt

    def _lock(fd: int, wait: bool = True) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
else:
    import fcntl

    def _lock(fd: int, wait: bool = True) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def directory(project_dir: str | os.PathLike[str]) -> str:
    return os.path.join(project_dir, DIRECTORY)


def spool_path(project_dir: str | os.PathLike[str]) -> str:
    return os.path.join(project_dir, DIRECTORY, SPOOL)


def _make_directory(path: str) -> None:
    """`.learning/` in the project; never the project itself (a deleted one stays deleted)."""
    try:  # noqa: SIM105 - contextlib would load functools and collections into the hook
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass


def _open_locked(path: str, flags: int) -> int:
    _make_directory(os.path.dirname(path))
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    _lock(fd)
    return fd  # closing it releases the lock


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 1 << 20):
        data += chunk
    return data


def append(path: str, line: bytes) -> None:
    """Append one line (ending in a newline) as one write, under the lock."""
    fd = _open_locked(path, os.O_WRONLY | os.O_APPEND)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        os.write(fd, line)
    finally:
        os.close(fd)


def read(path: str) -> list[bytes]:
    """Every complete line, newline included."""
    if not os.path.exists(path):
        return []
    fd = _open_locked(path, os.O_RDONLY)
    try:
        data = _read_all(fd)
    finally:
        os.close(fd)
    return [line for line in data.splitlines(keepends=True) if line.endswith(b"\n")]


def drop_prefix(path: str, size: int) -> None:
    """Remove the first `size` bytes (the delivered lines); keep what was appended since."""
    if size <= 0:
        return
    fd = _open_locked(path, os.O_RDWR)
    try:
        rest = _read_all(fd)[size:]
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, rest)
        os.ftruncate(fd, len(rest))
    finally:
        os.close(fd)


class Delivery:
    """`with Delivery(project_dir) as mine:` mine is False while another delivery runs."""

    def __init__(self, project_dir: str | os.PathLike[str]):
        self.path = os.path.join(directory(project_dir), _DELIVERY_LOCK)
        self.fd = -1

    def __enter__(self) -> bool:
        _make_directory(os.path.dirname(self.path))
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return _lock(self.fd, wait=False)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def delivering(project_dir: str | os.PathLike[str]) -> bool:
    """Whether a delivery runs now. It checks the spool again after it ends, so an event
    appended before this call is taken by it: no second delivery is needed."""
    with Delivery(project_dir) as mine:
        return not mine


def log(project_dir: str | os.PathLike[str], message: str) -> None:
    """One line in .learning/capture.log; never raises (the hook must not fail)."""
    try:
        import time

        path = os.path.join(directory(project_dir), LOG)
        _make_directory(os.path.dirname(path))
        if os.path.exists(path) and os.path.getsize(path) > LOG_LIMIT:
            os.replace(path, path + ".1")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            os.write(fd, f"{stamp} {message}\n".encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass
