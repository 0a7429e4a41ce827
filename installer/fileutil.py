"""Atomic file writes: a reader (or a git commit) never sees a half-written file."""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Atomically write `data` unless the file already holds exactly it. True when written."""
    if path.exists() and path.read_bytes() == data:
        return False
    write_atomic(path, data, mode)
    return True


def text_diff(path: Path, old: str, new: str,
              mask_line: Callable[[str], str] = lambda line: line) -> str:
    """A unified diff from `old` to `new` for showing a planned change; `mask_line` hides
    secrets in each line."""
    lines = difflib.unified_diff(
        [mask_line(line) for line in old.splitlines()],
        [mask_line(line) for line in new.splitlines()],
        fromfile=str(path) if old else "/dev/null", tofile=str(path), lineterm="")
    return "\n".join(lines)
