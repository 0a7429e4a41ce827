"""The agent role's password in `~/.pgpass`, so committed MCP configs need none.

libpq and node-postgres (inside the MCP server) both read `~/.pgpass` when the connection URL
has no password. Our line is matched by host:port:database:user and replaced; every other line
stays. The file is written atomically with mode 0600 (libpq ignores it otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path

from installer.errors import EnvironmentProblem
from installer.fileutil import write_atomic


def pgpass_path() -> Path:
    return Path(os.environ.get("PGPASSFILE") or Path.home() / ".pgpass")


def read_pgpass(path: Path) -> str:
    """The file's text, empty when there is none; anything but a file there is refused."""
    if not path.exists():
        return ""
    if not path.is_file():
        raise EnvironmentProblem(
            f"{path} is not a file (a directory?), so libpq cannot read the agent's password "
            "from it", hint=f"move it away (`mv {path} {path}.bak`), then run the same "
            "command again")
    return path.read_text()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def pgpass_line(host: str, port: int, database: str, user: str, password: str) -> str:
    return ":".join(_escape(str(v)) for v in (host, port, database, user, password))


def _key(host: str, port: int, database: str, user: str) -> str:
    """The start of a line for this host, port, database and user (up to the password)."""
    return pgpass_line(host, port, database, user, "")


def merge_pgpass(existing: str, host: str, port: int, database: str, user: str,
                 password: str) -> str:
    key = _key(host, port, database, user)
    kept = [old for old in existing.splitlines() if not old.startswith(key)]
    return "\n".join([*kept, key + _escape(password)]) + "\n"


def remove_from_pgpass(existing: str, host: str, port: int, database: str, user: str) -> str:
    key = _key(host, port, database, user)
    kept = [old for old in existing.splitlines() if not old.startswith(key)]
    return "\n".join(kept) + "\n" if kept else ""


def write_pgpass(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"), mode=0o600)
