"""`python install.py export`: every learning table to exports/csv/<table>.csv, at COPY speed.

All tables are read in one REPEATABLE READ snapshot with `COPY (SELECT … ORDER BY <primary
key>) TO STDOUT` and streamed to temp files beside their targets while being hashed. Only when
every table succeeded are changed files renamed into place, then the manifest and summary are
written; a file whose bytes did not change is not touched. Tables that the exporting database
does not have (a module not installed here) keep their files and manifest entries.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import sql

from installer import program
from installer.credentials import ConnInfo
from installer.errors import DataError
from installer.exchange import catalog
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


@dataclass
class ExportResult:
    manifest: Manifest
    changed_files: list[str] = field(default_factory=list)  # relative to exports/
    change_seq: int | None = None  # exchange_change_seq when nothing else was writing

    @property
    def changed(self) -> bool:
        return bool(self.changed_files)


@dataclass
class _Pending:
    entry: TableEntry
    tmp: Path
    target: Path


def _write(handle: BinaryIO, digest: hashlib._Hash, data: bytes | bytearray | memoryview) -> None:
    handle.write(data)
    digest.update(data)
    if isinstance(data, bytearray):
        data.clear()


def _copy_table(conn: psycopg.Connection, table: catalog.Table, target: Path) -> _Pending:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    digest = hashlib.sha256()
    query = sql.SQL("COPY (SELECT {} FROM {} ORDER BY {}) TO STDOUT WITH (FORMAT csv, HEADER)"
                    ).format(sql.SQL(", ").join(c.export_expr() for c in table.columns),
                             table.ident, table.key_list)
    try:
        with os.fdopen(fd, "wb") as handle, conn.cursor() as cur:
            buffer = bytearray()  # COPY sends one message per row: write and hash in blocks
            with cur.copy(query) as copy:
                for row in copy:
                    if len(row) >= _BLOCK:  # a big row goes out as it is, never copied
                        _write(handle, digest, buffer)
                        _write(handle, digest, row)
                        continue
                    buffer += row
                    if len(buffer) >= _BLOCK:
                        _write(handle, digest, buffer)
            _write(handle, digest, buffer)
            rows = cur.rowcount
        os.chmod(tmp_name, 0o644)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    entry = TableEntry(table.name, table_file(table.name), rows, digest.hexdigest(),
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
    result = ExportResult(manifest, change_seq=change_seq)
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
