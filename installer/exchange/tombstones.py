"""After an import: deletes applied and derived values recomputed, once, set-based; before an
export: old tombstones purged.

A tombstone (exchange_tombstones: table, id, deleted_at) deletes the row with that id when the
row was last written (updated_at, else created_at) no later than the delete; a row updated
after the delete stays (last writer wins between a delete and an update). Then every function
a schema module marked `installer:after-import` runs (the session counters are recounted).
All in one transaction that says `learning.import = 'on'`, so the deletes record no new
tombstones and the recount keeps each row's updated_at.

Tombstones do not stay for ever: each export first purges the tombstones older than
`learning.tombstone_days` days (a database setting, default 90; 0 keeps them) that the export
it replaces already holds, so every tombstone is exported at least once before it goes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg
from psycopg import sql

from installer.errors import DataError
from installer.exchange import catalog, triggers

KEEP_DAYS_SETTING = "learning.tombstone_days"
DEFAULT_KEEP_DAYS = 90


def keep_days(conn: psycopg.Connection) -> int:
    """How many days tombstones are kept (0: for ever), from the database's setting."""
    value = catalog.scalar(conn, "SELECT current_setting(%s, true)", (KEEP_DAYS_SETTING,))
    if value in (None, ""):
        return DEFAULT_KEEP_DAYS
    try:
        days = int(value)
    except ValueError:
        days = -1
    if days < 0:
        raise DataError(f"{KEEP_DAYS_SETTING} is {value!r}: it must be a whole number of days "
                        f"(0 keeps tombstones for ever); nothing was exported",
                        hint=f"ALTER DATABASE <database> SET {KEEP_DAYS_SETTING} = "
                        f"{DEFAULT_KEEP_DAYS}; (or RESET it for the default)")
    return days


def _exported(previous: Path, wanted: set[str]) -> tuple[list[str], list[str]]:
    """(id, deleted_at) of the `wanted` tombstones in the export file being replaced."""
    ids: list[str] = []
    times: list[str] = []
    try:
        with previous.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            if "id" not in header or "deleted_at" not in header:
                return [], []
            at_id, at_time = header.index("id"), header.index("deleted_at")
            for record in reader:
                if len(record) == len(header) and record[at_id] in wanted:
                    ids.append(record[at_id])
                    times.append(record[at_time])
    except (OSError, UnicodeDecodeError, csv.Error):
        return [], []  # no file (first export) or an unreadable one: purge nothing
    return ids, times


def purge(conn: psycopg.Connection, previous: Path) -> int:
    """Delete the tombstones older than the kept days that `previous` (the export file this
    export replaces) holds with the same or a later deleted_at; returns how many. One
    transaction of its own (committed before the export's snapshot)."""
    with conn.transaction():
        if not triggers.available(conn):
            return 0
        days = keep_days(conn)
        if days == 0:
            return 0
        store = sql.Identifier(catalog.SCHEMA, catalog.TOMBSTONES)
        old = {row[0] for row in conn.execute(sql.SQL(
            "SELECT id::text FROM {} WHERE deleted_at < now() - make_interval(days => %s)"
        ).format(store), (days,))}
        ids, times = _exported(previous, old) if old else ([], [])
        if not ids:
            return 0
        with conn.cursor() as cur:
            cur.execute(sql.SQL(
                "DELETE FROM {} AS t USING unnest(%s::uuid[], %s::timestamptz[]) AS f (id, at) "
                "WHERE t.id = f.id AND t.deleted_at <= f.at "
                "AND t.deleted_at < now() - make_interval(days => %s)").format(store),
                (ids, times, days))
            return cur.rowcount


def converge(conn: psycopg.Connection, tables: list[catalog.Table]) -> tuple[dict[str, int], int]:
    """Apply tombstones to `tables` and run the after-import functions; returns the rows
    deleted per table and the rows the functions changed."""
    deleted: dict[str, int] = {}
    with conn.transaction():
        conn.execute("SET LOCAL learning.import = 'on'")
        conn.execute("SET CONSTRAINTS ALL DEFERRED")
        store = sql.Identifier(catalog.SCHEMA, catalog.TOMBSTONES)
        named: set[str] = set()
        if triggers.available(conn):
            named = {row[0] for row in conn.execute(
                sql.SQL("SELECT DISTINCT table_name FROM {}").format(store))}
        for table in reversed(tables):  # children first
            if table.name not in named:
                continue
            with conn.cursor() as cur:
                cur.execute(sql.SQL(
                    "DELETE FROM {} AS x USING {} AS t WHERE t.table_name = {} AND "
                    "t.row_id = x.id AND t.deleted_at >= {}").format(
                    table.ident, store, sql.Literal(table.name), table.age_expr("x")))
            if cur.rowcount:
                deleted[table.name] = cur.rowcount
        recomputed = 0
        for function in catalog.after_import_functions(conn):
            result = conn.execute(sql.SQL("SELECT {}()").format(
                sql.SQL(function.removesuffix("()")))).fetchone()
            recomputed += result[0] if result and isinstance(result[0], int) else 0
    return deleted, recomputed
