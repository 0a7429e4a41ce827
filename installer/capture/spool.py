"""The capture spool: events waiting for the database, one JSON object a line (mode 0600).

Writers and the deliverer hold an exclusive lock on the file while they touch it, so two hooks
firing at once never interleave, and an event appended during a delivery is never lost. Only
one delivery runs at a time (a second lock file), so the delivered prefix is always the one the
deliverer read. Standard library only: the hook imports this on every event.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DIRECTORY = ".learning"  # in the project, gitignored
SPOOL = "spool.jsonl"
LOG = "capture.log"
RUNNING = "running"  # one file per sub-agent run in progress: its start time
_DELIVERY_LOCK = "deliver.lock"

try:
    import fcntl

    def _lock(fd: int, wait: bool = True) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
except ImportError:  # Windows: lock the first byte of the file
    import msvcrt

    def _lock(fd: int, wait: bool = True) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True


def directory(project_dir: Path) -> Path:
    return project_dir / DIRECTORY


def spool_path(project_dir: Path) -> Path:
    return directory(project_dir) / SPOOL


@contextmanager
def _locked(path: Path, flags: int) -> Iterator[int]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    try:
        _lock(fd)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def append(path: Path, entry: dict[str, Any]) -> None:
    line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
    with _locked(path, os.O_WRONLY | os.O_APPEND) as fd:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        os.write(fd, line.encode("utf-8"))


def read(path: Path) -> tuple[list[tuple[dict[str, Any] | None, int]], int]:
    """Every complete line as (entry or None when unreadable, its length in bytes)."""
    if not path.exists():
        return [], 0
    with _locked(path, os.O_RDONLY) as fd:
        data = b""
        while chunk := os.read(fd, 1 << 20):
            data += chunk
    entries: list[tuple[dict[str, Any] | None, int]] = []
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # a line still being written cannot exist under the lock; be safe anyway
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        entries.append((entry if isinstance(entry, dict) else None, len(line)))
    return entries, len(data)


def drop_prefix(path: Path, size: int) -> None:
    """Remove the first `size` bytes (the delivered lines); keep what was appended since."""
    if size <= 0:
        return
    with _locked(path, os.O_RDWR) as fd:
        data = b""
        while chunk := os.read(fd, 1 << 20):
            data += chunk
        rest = data[size:]
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, rest)
        os.ftruncate(fd, len(rest))


@contextmanager
def delivery(project_dir: Path) -> Iterator[bool]:
    """Yields True when this process may deliver, False when another delivery is running."""
    path = directory(project_dir) / _DELIVERY_LOCK
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield _lock(fd, wait=False)
    finally:
        os.close(fd)


def log(project_dir: Path, message: str) -> None:
    """One line in .learning/capture.log; never raises (the hook must not fail)."""
    try:
        import time

        path = directory(project_dir) / LOG
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            os.write(fd, f"{stamp} {message}\n".encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass
