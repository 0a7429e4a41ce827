"""The two triggers every exchanged table carries, attached by the installer, idempotently.

- `exchange_tombstone` (AFTER DELETE, per row): records the deleted id in exchange_tombstones,
  so the delete travels to other machines (sql/learning/070_exchange_tombstones.sql);
- `exchange_changed` (per statement): moves `exchange_change_seq`, so the pre-push hook can
  tell in one query that nothing changed since the last export.

Tables are the catalog's learning tables, so tables that any module adds later get them on the
next `--full` (and before each import and export) without code changes.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from installer.exchange import catalog
from installer.steps import Check, DatabaseStep, ok

TOMBSTONE_TRIGGER = "exchange_tombstone"
CHANGE_TRIGGER = "exchange_changed"

_PRESENT = """
SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND t.tgname IN (%s, %s) AND t.tgparentid = 0
"""


def available(conn: psycopg.Connection) -> bool:
    """Whether this database has the tombstone table and functions (learning module 070)."""
    row = conn.execute("SELECT to_regprocedure('record_tombstone()') IS NOT NULL AND "
                       "to_regclass(%s) IS NOT NULL", (catalog.TOMBSTONES,)).fetchone()
    return bool(row and row[0])


def missing(conn: psycopg.Connection,
            tables: list[catalog.Table] | None = None) -> list[tuple[str, str]]:
    """(table, trigger) pairs still to attach (`tables`: the learning tables, when known)."""
    if not available(conn):
        return []
    present = set(conn.execute(_PRESENT, (catalog.SCHEMA, TOMBSTONE_TRIGGER, CHANGE_TRIGGER)))
    wanted = [(t.name, trigger) for t in tables or catalog.learning_tables(conn)
              for trigger in (TOMBSTONE_TRIGGER, CHANGE_TRIGGER)
              if not (t.name == catalog.TOMBSTONES and trigger == TOMBSTONE_TRIGGER)]
    return [pair for pair in wanted if pair not in present]


_CREATE = {
    TOMBSTONE_TRIGGER: "CREATE TRIGGER {trigger} AFTER DELETE ON {table} FOR EACH ROW "
                       "WHEN (NOT learning_import_in_progress()) "
                       "EXECUTE FUNCTION record_tombstone({name})",
    CHANGE_TRIGGER: "CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "
                    "{table} FOR EACH STATEMENT EXECUTE FUNCTION note_exchange_change()",
}


def attach(conn: psycopg.Connection, tables: list[catalog.Table] | None = None) -> list[str]:
    """Attach what is missing, in one transaction; returns `table.trigger` names."""
    done = []
    with conn.transaction():
        for table, trigger in missing(conn, tables):
            conn.execute(sql.SQL(_CREATE[trigger]).format(
                trigger=sql.Identifier(trigger), table=sql.Identifier(catalog.SCHEMA, table),
                name=sql.Literal(table)))
            done.append(f"{table}.{trigger}")
    return done


class ExchangeTriggersStep(DatabaseStep):
    """After the migrations: every exchanged table records its deletes and changes."""

    title = "Exchange triggers (deletes and changes travel)"
    autocommit = True

    def check_in(self, conn: psycopg.Connection) -> Check:
        todo = missing(conn)
        if todo:
            return Check("change", f"attach to {len({t for t, _ in todo})} table(s)")
        return ok("every learning table has them")

    def apply(self, check: Check) -> str:
        with catalog.connect(self.conn, autocommit=True) as conn:
            done = attach(conn)
        return f"attached {len(done)} trigger(s)"
