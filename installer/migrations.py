"""The migration engine: ordered SQL files, a ledger, checksums, a lock.

Files live in `sql/<module>/NNN_name.sql`. Each file runs in its own transaction together with
the ledger row that records it, so a file is either applied and recorded or neither. A file
that contains the line `-- installer:no-transaction` runs statement by statement without a
transaction (for CREATE INDEX CONCURRENTLY and the like). A line `-- migrate:down` ends the
file's up part: what follows undoes the file and is neither run nor hashed here.

The ledger (`installer.schema_migrations`) stores module, version, name, the SHA-256 of the
file's normalised text (strict UTF-8, no BOM, LF line endings — the same text that is executed),
the checksum's algorithm, when, by whom and how long. A session advisory lock serialises
concurrent runs; the ledger is read again after the lock is held.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import sqlparse

from installer.errors import MigrationError
from installer.modules import Module

CHECKSUM_ALGORITHM = "sha256-utf8-lf"
NO_TRANSACTION_MARKER = "-- installer:no-transaction"
DOWN_MARKER = "-- migrate:down"  # the file's up part ends at this line
LOCK_KEY = 0x6C6561726E  # "learn": one key for every installer run against this database
_FILE_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_DOWN_SECTION = re.compile(rf"^{re.escape(DOWN_MARKER)}$", re.MULTILINE)
_TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "END", "START", "ABORT"}

LEDGER_DDL = """
CREATE SCHEMA IF NOT EXISTS installer;
CREATE TABLE IF NOT EXISTS installer.schema_migrations (
    module             text        NOT NULL,
    version            integer     NOT NULL,
    name               text        NOT NULL,
    checksum           text        NOT NULL,
    checksum_algorithm text        NOT NULL,
    applied_at         timestamptz NOT NULL DEFAULT now(),
    applied_by         text        NOT NULL DEFAULT current_user,
    duration_ms        integer     NOT NULL,
    PRIMARY KEY (module, version)
);
"""


@dataclass(frozen=True)
class Migration:
    module: str
    version: int
    name: str
    path: Path
    sql: str  # normalised text: what is hashed is what runs
    checksum: str
    transactional: bool

    @property
    def id(self) -> str:
        return f"{self.module}/{self.version:03d}_{self.name}"


@dataclass
class Plan:
    """What the ledger says against what the files say."""

    applied: list[str] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)
    changed: list[Migration] = field(default_factory=list)
    out_of_order: list[Migration] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.pending or self.changed or self.out_of_order)


def normalise(raw: bytes, path: Path) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MigrationError(f"{path}: line {line} is not valid UTF-8",
                             hint="save the file as UTF-8") from exc
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return _DOWN_SECTION.split(text, maxsplit=1)[0]


def load_module_migrations(module: Module) -> list[Migration]:
    migrations = []
    seen: dict[int, Path] = {}
    for path in sorted(module.path.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: name does not follow NNN_name.sql",
                                 hint="rename it, e.g. 004_add_index.sql (lower case, digits, _)")
        version = int(match.group(1))
        if version in seen:
            raise MigrationError(f"{path} and {seen[version]} share version {version}",
                                 hint="renumber the newer file above the highest version")
        seen[version] = path
        sql = normalise(path.read_bytes(), path)
        migrations.append(Migration(
            module=module.name, version=version, name=match.group(2), path=path, sql=sql,
            checksum=hashlib.sha256(sql.encode("utf-8")).hexdigest(),
            transactional=not any(line.strip() == NO_TRANSACTION_MARKER
                                  for line in sql.splitlines())))
    return sorted(migrations, key=lambda m: m.version)


def _read_ledger(conn: psycopg.Connection) -> dict[tuple[str, int], tuple[str, str]]:
    exists = conn.execute("SELECT to_regclass('installer.schema_migrations')").fetchone()
    if not exists or exists[0] is None:
        return {}
    rows = conn.execute("SELECT module, version, name, checksum FROM installer.schema_migrations")
    return {(module, version): (name, checksum) for module, version, name, checksum in rows}


def plan(conn: psycopg.Connection, modules: list[Module]) -> Plan:
    ledger = _read_ledger(conn)
    result = Plan()
    for module in modules:
        migrations = load_module_migrations(module)
        applied_versions = [v for (m, v) in ledger if m == module.name]
        highest = max(applied_versions, default=0)
        for migration in migrations:
            recorded = ledger.get((module.name, migration.version))
            if recorded is None:
                target = result.out_of_order if migration.version < highest else result.pending
                target.append(migration)
            elif recorded[1] != migration.checksum:
                result.changed.append(migration)
            else:
                result.applied.append(migration.id)
        on_disk = {m.version for m in migrations}
        result.missing_files += [f"{module.name}/{v:03d}_{ledger[(module.name, v)][0]}"
                                 for v in sorted(applied_versions) if v not in on_disk]
    return result


def refuse_unsafe(current: Plan, *, allow_out_of_order: bool) -> None:
    if current.changed:
        first = current.changed[0]
        raise MigrationError(
            f"{first.path} was edited after it was applied (checksum differs from the ledger); "
            "it is never re-applied",
            hint=f"restore it with `git checkout -- {first.path.name}` and put the change in a new "
            f"migration; if the edit is only cosmetic, accept it with "
            f"`python install.py migrate --accept-checksum {first.id}`")
    if current.out_of_order and not allow_out_of_order:
        first = current.out_of_order[0]
        raise MigrationError(
            f"{first.path} is numbered below a migration already applied in module "
            f"{first.module!r} (out of order)",
            hint="renumber it above the highest applied version, or apply it anyway with "
            "`python install.py migrate --allow-out-of-order`")


class Migrator:
    """Applies pending migrations as the database's owner role."""

    def __init__(self, conninfo: dict[str, object], modules: list[Module]):
        self.conninfo = conninfo
        self.modules = modules

    def plan(self) -> Plan:
        with psycopg.connect(**self.conninfo) as conn:
            return plan(conn, self.modules)

    def migrate(self, *, allow_out_of_order: bool = False) -> list[Migration]:
        with psycopg.connect(**self.conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            try:
                conn.execute(LEDGER_DDL)
                current = plan(conn, self.modules)  # re-read under the lock
                refuse_unsafe(current, allow_out_of_order=allow_out_of_order)
                todo = sorted(current.pending + current.out_of_order,
                              key=lambda m: ([x.name for x in self.modules].index(m.module),
                                             m.version))
                for migration in todo:
                    self._apply_one(conn, migration)
                return todo
            finally:
                if not conn.closed:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    def accept_checksum(self, migration_id: str) -> None:
        with psycopg.connect(**self.conninfo, autocommit=True) as conn:
            for migration in plan(conn, self.modules).changed:
                if migration.id == migration_id:
                    conn.execute("UPDATE installer.schema_migrations SET checksum = %s, "
                                 "checksum_algorithm = %s WHERE module = %s AND version = %s",
                                 (migration.checksum, CHECKSUM_ALGORITHM, migration.module,
                                  migration.version))
                    return
        raise MigrationError(f"no edited, applied migration named {migration_id!r}",
                             hint="`python install.py migrate --status` lists the migrations")

    def _apply_one(self, conn: psycopg.Connection, migration: Migration) -> None:
        started = time.monotonic()
        if migration.transactional:
            with conn.transaction():
                _execute_file(conn, migration)
                _record(conn, migration, started)
        else:
            _execute_file(conn, migration)
            with conn.transaction():
                _record(conn, migration, started)


def _record(conn: psycopg.Connection, migration: Migration, started: float) -> None:
    conn.execute(
        "INSERT INTO installer.schema_migrations (module, version, name, checksum, "
        "checksum_algorithm, duration_ms) VALUES (%s, %s, %s, %s, %s, %s)",
        (migration.module, migration.version, migration.name, migration.checksum,
         CHECKSUM_ALGORITHM, int((time.monotonic() - started) * 1000)))


def _first_word(statement: str) -> str | None:
    """The statement's first word, upper-cased; None when it holds only comments."""
    for ttype, value in sqlparse.lexer.tokenize(statement):
        if ttype in sqlparse.tokens.Whitespace or ttype in sqlparse.tokens.Comment or value == ";":
            continue
        return value.upper()
    return None


def _statements(sql: str) -> list[tuple[int, str, str]]:
    """(offset, text, first word) of each statement; comment-only pieces are dropped.
    (sqlparse's lexer, not its formatter: the formatter costs seconds on a whole schema.)"""
    pieces, position = [], 0
    for statement in sqlparse.split(sql):
        offset = sql.find(statement, position)
        position = offset + len(statement)
        word = _first_word(statement)
        if word is not None:
            pieces.append((offset, statement, word))
    return pieces


def _execute_file(conn: psycopg.Connection, migration: Migration) -> None:
    sql = migration.sql
    for offset, statement, keyword in _statements(sql):
        if keyword in _TRANSACTION_CONTROL:
            raise MigrationError(
                f"{migration.path}, line {sql.count(chr(10), 0, offset) + 1}: {keyword} inside a "
                "migration; the installer runs each file in its own transaction",
                hint=f"remove it, or add the line `{NO_TRANSACTION_MARKER}` to the file")
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            diag = exc.diag
            at = offset + len(statement) - len(statement.lstrip())
            if diag.statement_position:
                at = offset + int(diag.statement_position) - 1
            line = sql.count("\n", 0, at) + 1
            column = at - (sql.rfind("\n", 0, at) + 1) + 1
            note = "" if migration.transactional else (
                " This file runs without a transaction: the statements before this line stay "
                "applied; make them re-runnable (IF NOT EXISTS) before you re-run.")
            raise MigrationError(
                f"{migration.path}, line {line}, column {column}: "
                f"{diag.message_primary or exc}",
                hint=("nothing from this file was applied; the files before it stay applied. "
                      "Fix the file and run `python install.py --full` again." + note),
                details=diag.message_detail or diag.message_hint) from exc
