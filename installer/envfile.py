"""Reading and merging `.env` without disturbing what the user keeps there.

Only the installer's own keys change; the user's keys, comments, blank lines and order stay.
Keys the file does not have yet are appended under one marker comment. Writes are atomic and
the file is mode 0600 because it holds passwords.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from installer.errors import ConfigError
from installer.fileutil import write_atomic

MARKER = "# --- learning installer (python install.py): keys below are managed, edit with care ---"
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_@%+=:,./~-]*$")
_INSTALLER_KEY = re.compile(r"^(?:LEARNING_[A-Z0-9_]+|PG[A-Z]+|DATABASE_URL)$")


def read_env(path: Path) -> dict[str, str]:
    """The file's keys and values (quotes and escapes resolved); empty when there is no file.
    An installer key set twice is refused: which one was meant, nobody can tell."""
    if not path.exists():
        return {}
    refuse_duplicates(path, path.read_text(encoding="utf-8"))
    return {key: value or "" for key, value in dotenv_values(path).items()}


def refuse_duplicates(path: Path, text: str) -> None:
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _ASSIGNMENT.match(line)
        if not match or not _INSTALLER_KEY.match(key := match.group(1)):
            continue
        if key in seen:
            raise ConfigError(
                f"{key} is set twice in {path}: line {seen[key]} and line {number} "
                f"({path}:{seen[key]}, {path}:{number})",
                hint="delete the line you did not mean; nothing was changed")
        seen[key] = number


def format_value(value: str) -> str:
    if _SAFE_VALUE.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def merge_env_text(existing: str, updates: Mapping[str, str]) -> str:
    """Return `existing` with `updates` applied in place; new keys go under the marker."""
    lines = existing.splitlines()
    pending = dict(updates)
    merged: list[str] = []
    for line in lines:
        match = _ASSIGNMENT.match(line)
        key = match.group(1) if match else None
        if key is not None and key in updates:
            if key in pending:
                merged.append(f"{key}={format_value(pending.pop(key))}")
            # a duplicate assignment of a managed key would shadow ours: drop it
            continue
        merged.append(line)
    if pending:
        if MARKER not in merged:
            if merged and merged[-1].strip():
                merged.append("")
            merged.append(MARKER)
        merged.extend(f"{key}={format_value(value)}" for key, value in pending.items())
    return "\n".join(merged) + "\n"


def write_env(path: Path, updates: Mapping[str, str]) -> bool:
    """Merge `updates` into the file at `path`. Returns True when the file changed."""
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    merged = merge_env_text(existing, updates)
    if merged == existing:
        if path.exists() and (path.stat().st_mode & 0o777) != 0o600:
            path.chmod(0o600)
            return True
        return False
    write_atomic(path, merged.encode("utf-8"), mode=0o600)
    return True


def remove_env_keys(path: Path, keys: Mapping[str, str]) -> int:
    """Drop the installer's keys (and its marker) from the file; returns how many keys remain."""
    if not path.exists():
        return 0
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line != MARKER and not ((m := _ASSIGNMENT.match(line)) and m.group(1) in keys)]
    write_atomic(path, ("\n".join(kept).rstrip("\n") + "\n").encode("utf-8") if kept else b"",
                 mode=0o600)
    return sum(1 for line in kept if _ASSIGNMENT.match(line))
