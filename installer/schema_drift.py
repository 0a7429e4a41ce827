"""Drift: tables, views and functions that a recorded migration created and that are gone.

The ledger keeps what each file created (see `migrations`). `find()` compares that with the
catalog. `repair()` re-creates what is missing by replaying, in the order they were applied,
the statements of the recorded files that create or change a missing object (its CREATE, its
indexes, triggers, comments, later ALTERs and DROPs — a later file that drops and re-creates it
with another shape — and seed rows), all in one transaction: either every
missing object comes back, or nothing changes and the error names what to run instead. Objects
that still exist are never touched, so no row is lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from installer import program
from installer.errors import MigrationError
from installer.migrations import (
    Migration,
    Migrator,
    Statement,
    ledger,
    load_module_migrations,
    objects,
    statements,
)

# The object a statement creates or changes: the name after the words that introduce it.
_TARGET = re.compile(r"""(?:
      CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?(?:TABLE|VIEW|MATERIALIZED\s+VIEW|FUNCTION)
        \s+(?:IF\s+NOT\s+EXISTS\s+)?
    | CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?:\w+\s+)?
        ON\s+(?:ONLY\s+)?
    | CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s+\w+\s.*?\bON\s+
    | CREATE\s+POLICY\s+\w+\s+ON\s+
    | ALTER\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW)\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?
    | DROP\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW|FUNCTION)\s+(?:IF\s+EXISTS\s+)?
    | DROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?\w+\s+ON\s+
    | COMMENT\s+ON\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW|COLUMN|FUNCTION)\s+
    | INSERT\s+INTO\s+
    | SELECT\s+\w+\s*\(\s*'
    )(?:public\.)?"?(\w+)""", re.IGNORECASE | re.VERBOSE | re.DOTALL)
_LEADING_COMMENTS = re.compile(r"^(?:\s*--[^\n]*\n|\s*/\*.*?\*/)*\s*", re.DOTALL)


@dataclass(frozen=True)
class Missing:
    migration: str  # MODULE/NNN_name of the file that created them
    objects: tuple[str, ...]  # "table learning_queue", "function f(integer)"

    def describe(self) -> str:
        return f"{', '.join(self.objects)} (from {self.migration})"


def find(conn: psycopg.Connection) -> list[Missing]:
    """The recorded migrations whose objects are not all there any more."""
    present = objects(conn)
    found = []
    for row in ledger(conn):
        gone = tuple(o for o in row.objects or () if o not in present)
        if gone:
            found.append(Missing(row.id, gone))
    return found


def _name(obj: str) -> str:
    return obj.rpartition(" ")[2].split("(", 1)[0].strip('"').lower()


def _target(statement: Statement) -> str | None:
    match = _TARGET.match(_LEADING_COMMENTS.sub("", statement.text, count=1))
    return match.group(1).lower() if match else None


def repair(migrator: Migrator) -> list[str]:
    """Re-create every missing object; returns what came back. Raises MigrationError (and
    changes nothing) when that cannot be done from the recorded files."""
    conn = migrator.conn
    with migrator.locked():
        missing = find(conn)
        if not missing:
            return []
        names = {_name(o) for m in missing for o in m.objects}
        files = {m.id: m for module in migrator.modules for m in load_module_migrations(module)}
        replay: list[tuple[Migration, Statement]] = []
        for row in ledger(conn):
            migration = files.get(row.id)
            if migration is None or migration.checksum != row.checksum:
                continue  # a file that is gone or edited is not replayed
            replay += [(migration, s) for s in statements(migration.sql) if _target(s) in names]
        lost = ", ".join(m.describe() for m in missing)
        source = ""
        try:
            with conn.transaction():
                for migration, statement in replay:
                    source = migration.shown_path
                    conn.execute(statement.text)
                if still := find(conn):
                    raise _NotRestored(", ".join(m.describe() for m in still))
        except (psycopg.Error, _NotRestored) as exc:
            reason = f"{source}: {exc.diag.message_primary}" if isinstance(
                exc, psycopg.Error) else f"still missing: {exc}"
            raise MigrationError(
                f"objects of applied migrations are missing: {lost}; they cannot be re-created "
                f"from the migration files ({reason}). Nothing was changed.",
                hint="restore the last backup with "
                f"{program.command('restore backups/FILE.dump')}, or re-create them by hand; "
                f"{program.command('doctor')} lists what is missing") from exc
        return [o for m in missing for o in m.objects]


class _NotRestored(Exception):
    pass
