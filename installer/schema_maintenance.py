"""Schema upkeep after the migrations, as the owner role, with no scheduler inside the database.

Three install steps, each a no-op on a healthy schema and each skipped when its module is not
installed:
- embedding columns still stored as `real[]` are converted to pgvector's `vector` (with an HNSW
  index) once the extension is installed, in place and keeping their data;
- `learning_events` gets partitions for this month and the coming ones;
- materialised views that were never filled are filled.
The `refresh` command creates the coming partitions and refreshes every materialised view.
"""

from __future__ import annotations

from abc import abstractmethod

import psycopg
from psycopg import sql

from installer import db, program
from installer.console import Console
from installer.credentials import ConnInfo
from installer.steps import Check, DatabaseStep, Step, ok

_DRIFT = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction,
          psycopg.errors.UndefinedColumn)
MONTHS_AHEAD = 3  # partitions exist from this month to three months on


def _exists(conn: psycopg.Connection, function: str) -> bool:
    row = conn.execute("SELECT to_regprocedure(%s)", (function,)).fetchone()
    return bool(row and row[0])


class _OwnerStep(DatabaseStep):
    """A step that works in the learning database as its owner; blocked until it answers."""

    def check(self) -> Check:
        try:
            return super().check()
        except _DRIFT as exc:  # an object dropped by hand: the migrations step re-creates it
            return Check("blocked", f"after the schema is repaired ({exc.diag.message_primary})")

    def apply(self, check: Check) -> str:
        with db.connect(self.conn) as conn:  # commits on leaving the block
            return self.apply_in(conn)

    @abstractmethod
    def apply_in(self, conn: psycopg.Connection) -> str: ...


class EmbeddingColumnsStep(_OwnerStep):
    title = "Embedding columns"

    def check_in(self, conn: psycopg.Connection) -> Check:
        if not _exists(conn, "unconverted_embedding_columns()"):
            return ok("none yet")
        pending = [f"{table}.{column}" for table, column, _ in conn.execute(
            "SELECT * FROM unconverted_embedding_columns()")]
        if pending:
            return Check("change", "convert to pgvector: " + ", ".join(pending))
        total, vector = db.one(
            conn, "SELECT count(*), count(*) FILTER (WHERE embedding_is_vector("
            "table_name::regclass, column_name)) FROM installer.embedding_columns")
        if total and vector == total:
            return ok(f"{total} column(s) use pgvector with HNSW indexes")
        return ok(f"{total} column(s) use the real[] fallback (no pgvector on this server)")

    def apply_in(self, conn: psycopg.Connection) -> str:
        converted = db.one(conn, "SELECT convert_embedding_columns()")[0]
        return f"converted {converted} column(s) to vector with HNSW indexes, data kept"


def _missing_partitions(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT learning_event_partition_name(m) FROM missing_learning_event_partitions(%s) m",
        (MONTHS_AHEAD,))]


def _create_partitions(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT create_learning_event_partitions(%s)", (MONTHS_AHEAD,))]


class PartitionsStep(_OwnerStep):
    title = "learning_events partitions"

    def check_in(self, conn: psycopg.Connection) -> Check:
        if not _exists(conn, "create_learning_event_partitions(integer)"):
            return ok("analytics module not installed")
        missing = _missing_partitions(conn)
        if missing:
            return Check("change", "create " + ", ".join(missing))
        return ok(f"this month and {MONTHS_AHEAD} ahead")

    def apply_in(self, conn: psycopg.Connection) -> str:
        return "created " + ", ".join(_create_partitions(conn))


def _views(conn: psycopg.Connection, only_empty: bool) -> list[tuple[str, bool]]:
    """(name, can refresh concurrently) of the public schema's materialised views."""
    return list(conn.execute(
        "SELECT v.matviewname, v.ispopulated AND EXISTS (SELECT 1 FROM pg_index i WHERE "
        "i.indrelid = format('%%I', v.matviewname)::regclass AND i.indisunique) "
        "FROM pg_matviews v WHERE v.schemaname = 'public' AND (NOT %s OR NOT v.ispopulated) "
        "ORDER BY 1", (only_empty,)))


def _refresh_views(conn: psycopg.Connection, views: list[tuple[str, bool]]) -> list[str]:
    for name, concurrently in views:
        # CONCURRENTLY lets agents keep reading while the view is rebuilt.
        conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}{}").format(
            sql.SQL("CONCURRENTLY " if concurrently else ""), sql.Identifier(name)))
    return [name for name, _ in views]


class MaterializedViewsStep(_OwnerStep):
    title = "Materialised views"

    def check_in(self, conn: psycopg.Connection) -> Check:
        empty = [name for name, _ in _views(conn, only_empty=True)]
        if empty:
            return Check("change", "fill " + ", ".join(empty))
        count = len(_views(conn, only_empty=False))
        return ok(f"{count} view(s); {program.command('refresh')} updates them" if count
                  else "none installed")

    def apply_in(self, conn: psycopg.Connection) -> str:
        return "filled " + ", ".join(_refresh_views(conn, _views(conn, only_empty=True)))


def maintenance_steps(owner: ConnInfo) -> list[Step]:
    return [EmbeddingColumnsStep(owner), PartitionsStep(owner), MaterializedViewsStep(owner)]


def refresh(owner: ConnInfo, console: Console) -> dict[str, list[str]]:
    """Creates the coming partitions and refreshes every materialised view."""
    with db.connect(owner) as conn:
        partitions = (_create_partitions(conn)
                      if _exists(conn, "create_learning_event_partitions(integer)") else [])
        conn.commit()
        views = _refresh_views(conn, _views(conn, only_empty=False))
    console.step("learning_events partitions", "changed" if partitions else "ok",
                 "created " + ", ".join(partitions) if partitions else "none missing")
    console.step("Materialised views", "changed" if views else "ok",
                 "refreshed " + ", ".join(views) if views else "none installed")
    return {"partitions_created": partitions, "views_refreshed": views}
