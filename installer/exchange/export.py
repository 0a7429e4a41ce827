"""`python install.py export`: every learning table to exports/csv/<table>.csv, at COPY speed.

All tables are read in one REPEATABLE READ snapshot with `COPY (SELECT … ORDER BY <primary
key>) TO STDOUT` and streamed to temp files beside their targets while being hashed. Only when
every table succeeded are changed files renamed into place, then the manifest and summary are
written; a file whose bytes did not change is not touched. Tables that the exporting database
does not have (a module not installed here) keep their files and manifest entries. A row
above WIDE_ROW_BYTES is written field by field, its big fields in chunks (memory stays
bounded). Before the snapshot, tombstones older than the kept days that the previous export
holds are purged (tombstones.purge).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import sql

from installer import program
from installer.credentials import ConnInfo
from installer.errors import DataError
from installer.exchange import catalog, tombstones
from installer.exchange.manifest import (
    MANIFEST_NAME,
    Manifest,
    TableEntry,
    read_manifest,
    sha256_file,
    table_file,
    valid_table_name,
)
from installer.exchange.summary import SUMMARY_NAME, render_summary
from installer.fileutil import write_if_changed

_BLOCK = 1 << 20
# Memory stays bounded at any field size: a row whose text is above WIDE_ROW_BYTES is written
# field by field, each field above WIDE_FIELD_BYTES in chunks of CHUNK_BYTES (libpq would
# otherwise hold the whole row, and Python a copy of it).
WIDE_ROW_BYTES = 16 << 20
WIDE_FIELD_BYTES = 1 << 20
CHUNK_BYTES = 4 << 20


@dataclass
class ExportResult:
    manifest: Manifest
    changed_files: list[str] = field(default_factory=list)  # relative to exports/
    change_seq: int | None = None  # exchange_change_seq when nothing else was writing
    purged: int = 0  # tombstones older than learning.tombstone_days, exported before

    @property
    def changed(self) -> bool:
        return bool(self.changed_files)


@dataclass
class _Pending:
    entry: TableEntry
    tmp: Path
    target: Path


class _Out:
    """The temp file and the SHA-256 of what was written to it."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.handle.write(data)
        self.digest.update(data)
        if isinstance(data, bytearray):
            data.clear()


def _key_values(table: catalog.Table, key: tuple[str, ...]) -> sql.Composable:
    """A key read as text (`_wide_rows`), as typed literals in key order."""
    return sql.SQL(", ").join(sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(column.type))
                              for value, column in zip(key, _key_columns(table), strict=True))


def _key_columns(table: catalog.Table) -> list[catalog.Column]:
    return [c for name in table.key if (c := table.column(name)) is not None]


def _wide_rows(conn: psycopg.Connection,
               table: catalog.Table) -> list[tuple[tuple[str, ...], dict[str, int]]]:
    """Rows whose text is above WIDE_ROW_BYTES, in key order: (key as text, size of each
    sizable column). One pass over the table that reads no large value."""
    sizes = [(c, e) for c in table.columns if (e := c.size_expr()) is not None]
    if not sizes or len(_key_columns(table)) != len(table.key):
        return []
    query = sql.SQL("SELECT {}, ARRAY[{}] FROM {} WHERE {} > {} ORDER BY {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(k)) for k in table.key),
        sql.SQL(", ").join(e for _, e in sizes), table.ident,
        sql.SQL(" + ").join(sql.SQL("coalesce({}, 0)").format(e) for _, e in sizes),
        sql.Literal(WIDE_ROW_BYTES), table.key_list)
    found = []
    for row in conn.execute(query):
        *key, each = row
        found.append((tuple(key), {c.name: n or 0 for (c, _), n in zip(sizes, each, strict=True)}))
    return found


def _copy_rows(conn: psycopg.Connection, table: catalog.Table, out: _Out,
               after: tuple[str, ...] | None, before: tuple[str, ...] | None,
               header: bool) -> int:
    """COPY the rows between two keys (None: no bound) in key order; returns their count."""
    bounds = [sql.SQL("({}) {} ({})").format(table.key_list, sql.SQL(op), _key_values(table, k))
              for op, k in ((">", after), ("<", before)) if k is not None]
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(bounds) if bounds else sql.SQL("")
    query = sql.SQL("COPY (SELECT {} FROM {}{} ORDER BY {}) TO STDOUT WITH (FORMAT csv{})"
                    ).format(sql.SQL(", ").join(c.export_expr() for c in table.columns),
                             table.ident, where, table.key_list,
                             sql.SQL(", HEADER") if header else sql.SQL(""))
    with conn.cursor() as cur:
        buffer = bytearray()  # COPY sends one message per row: write and hash in blocks
        with cur.copy(query) as copy:
            for row in copy:
                if len(row) >= _BLOCK:  # a big row goes out as it is, never copied
                    out.write(buffer)
                    out.write(row)
                    continue
                buffer += row
                if len(buffer) >= _BLOCK:
                    out.write(buffer)
        out.write(buffer)
        return cur.rowcount


def _copy_wide_row(conn: psycopg.Connection, table: catalog.Table, out: _Out,
                   key: tuple[str, ...], sizes: dict[str, int]) -> None:
    """One wide row, byte for byte as COPY writes it: COPY writes the row with a marker in
    place of each field above WIDE_FIELD_BYTES, and each such field is read in chunks of
    CHUNK_BYTES and quoted here the way COPY quotes."""
    marker = f"learningwide{secrets.token_hex(16)}"
    streamed = [c for c in table.columns if sizes.get(c.name, 0) > WIDE_FIELD_BYTES]
    query = sql.SQL("COPY (SELECT {} FROM {} WHERE ({}) = ({})) TO STDOUT WITH (FORMAT csv)"
                    ).format(sql.SQL(", ").join(
                        sql.SQL("{} AS {}").format(sql.Literal(f"{marker}{i:04d}"),
                                                   sql.Identifier(c.name))
                        if c in streamed else c.export_expr()
                        for i, c in enumerate(table.columns)),
                        table.ident, table.key_list, _key_values(table, key))
    with conn.cursor() as cur, cur.copy(query) as copy:
        line = b"".join(bytes(part) for part in copy)  # the fields below WIDE_FIELD_BYTES
    for i, column in enumerate(table.columns):
        if column in streamed:
            written, line = line.split(f"{marker}{i:04d}".encode(), 1)
            out.write(written)
            _copy_field(conn, table, column, key, out)
    out.write(line)


# A value is quoted when it holds a delimiter, a quote or a line end (it is never empty here)
_QUOTED = '[",\n\r]'


def _copy_field(conn: psycopg.Connection, table: catalog.Table, column: catalog.Column,
                key: tuple[str, ...], out: _Out) -> None:
    """One field in chunks through a server-side cursor: the server holds the value once
    (OFFSET 0 keeps the subquery from being evaluated again for every chunk), this process
    holds one chunk."""
    query = sql.SQL(
        "SELECT s.quoted, substring(s.value FROM g FOR {size}) FROM (SELECT "
        "convert_to({text}, 'UTF8') AS value, {text} ~ {special} AS quoted FROM {table} "
        "WHERE ({key}) = ({values}) OFFSET 0) s "
        "CROSS JOIN LATERAL generate_series(1, octet_length(s.value), {size}) g").format(
        size=sql.Literal(CHUNK_BYTES), text=column.text_expr(), special=sql.Literal(_QUOTED),
        table=table.ident, key=table.key_list, values=_key_values(table, key))
    quoted = False
    with conn.cursor(name="learning_export_field", binary=True) as cur:
        cur.itersize = 1
        cur.execute(query)
        for number, (quote, chunk) in enumerate(cur):
            if number == 0 and quote:
                quoted = True
                out.write(b'"')
            out.write(chunk.replace(b'"', b'""') if quoted else chunk)
    if quoted:
        out.write(b'"')


def _copy_table(conn: psycopg.Connection, table: catalog.Table, target: Path) -> _Pending:
    """The table in key order. Rows above WIDE_ROW_BYTES are found first and written field by
    field between COPYs of the rows around them, so no row is ever held whole here."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            out = _Out(handle)
            wide = _wide_rows(conn, table)
            keys: list[tuple[str, ...] | None] = [key for key, _ in wide]
            rows = 0
            bounds = zip([None, *keys], [*keys, None], strict=True)
            for number, (after, before) in enumerate(bounds):
                rows += _copy_rows(conn, table, out, after, before, header=number == 0)
                if before is not None:
                    _copy_wide_row(conn, table, out, before, wide[number][1])
                    rows += 1
        os.chmod(tmp_name, 0o644)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    entry = TableEntry(table.name, table_file(table.name), rows, out.digest.hexdigest(),
                       tuple((c.name, c.exchange_type) for c in table.columns), table.key)
    return _Pending(entry, Path(tmp_name), target)


def _change_seq(conn: psycopg.Connection) -> int | None:
    """exchange_change_seq, read after this export's snapshot was taken; None when a writing
    transaction was in flight then (its rows may be missing here although the sequence moved)."""
    if catalog.scalar(conn, "SELECT to_regclass('exchange_change_seq')") is None:
        return None
    if catalog.scalar(conn, "SELECT EXISTS (SELECT FROM pg_snapshot_xip(pg_current_snapshot()))"):
        return None
    return int(catalog.scalar(conn, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                                    "FROM exchange_change_seq"))


def _previous(exports_dir: Path) -> Manifest | None:
    path = exports_dir / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        return read_manifest(path)
    except DataError:
        return None  # replaced by a valid one below


def export_all(owner: ConnInfo, exports_dir: Path) -> ExportResult:
    (exports_dir / "csv").mkdir(parents=True, exist_ok=True)
    pending: list[_Pending] = []
    try:
        with catalog.connect(owner) as conn:
            purged = tombstones.purge(conn, exports_dir / table_file(catalog.TOMBSTONES))
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with catalog.transaction(conn):
                tables = [t for t in catalog.learning_tables(conn) if valid_table_name(t.name)]
                change_seq = _change_seq(conn)
                schema = catalog.schema_version(conn)
                for table in tables:
                    pending.append(_copy_table(conn, table, exports_dir / table_file(table.name)))
    except BaseException as exc:
        for item in pending:
            item.tmp.unlink(missing_ok=True)
        if isinstance(exc, psycopg.Error):
            raise DataError(f"export failed, no file was changed: {exc}".strip(),
                            hint=f"check the server with {program.command('status')}") from exc
        raise
    old = _previous(exports_dir)
    kept = {n: e for n, e in (old.tables.items() if old else ())
            if n not in {t.name for t in tables} and (exports_dir / e.file).exists()}
    manifest = Manifest(schema, {**kept, **{p.entry.name: p.entry for p in pending}})
    result = ExportResult(manifest, change_seq=change_seq, purged=purged)
    for item in pending:
        if item.target.exists() and sha256_file(item.target) == item.entry.sha256:
            item.tmp.unlink()
        else:
            with item.tmp.open("rb") as handle:  # on disk before it replaces the old file
                os.fsync(handle.fileno())
            os.replace(item.tmp, item.target)
            result.changed_files.append(item.entry.file)
    if write_if_changed(exports_dir / MANIFEST_NAME, manifest.to_bytes()):
        result.changed_files.append(MANIFEST_NAME)
        summary = render_summary(manifest, old, {t.name for t in tables})
        if write_if_changed(exports_dir / SUMMARY_NAME, summary):
            result.changed_files.append(SUMMARY_NAME)
    return result
