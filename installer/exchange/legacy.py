"""Exports of the earlier bash-based system: integer ids, a `timestamp` column, no manifest.

Each integer id becomes UUIDv5(LEGACY_NAMESPACE, "<table>/<id>"), so importing the same
files twice (or on two machines) gives the same rows. `timestamp` (without time zone) loads
into `created_at` and is read as UTC; `t`/`f` booleans load as they are.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

from installer.exchange.csvfile import CsvRecords, FieldTooLong

LEGACY_NAMESPACE = uuid.UUID("5d1f3b7e-8c2a-5e4b-9a61-0c7f2e8d4b19")
# legacy column -> our column, applied when the table has no column of the legacy name
RENAMES = {"timestamp": "created_at"}
_INTEGER = re.compile(r"^[0-9]+$")
_CHUNK = 1 << 20


class LegacyRowError(ValueError):
    def __init__(self, line: int | None, column: str | None, message: str):
        super().__init__(message)
        self.line = line
        self.column = column


def legacy_uuid(table: str, legacy_id: str) -> str:
    return str(uuid.uuid5(LEGACY_NAMESPACE, f"{table}/{int(legacy_id)}"))


def has_integer_ids(path: Path) -> bool:
    """True when the first data row's id is an integer (a legacy export)."""
    with CsvRecords(path, ("id",)) as records:
        row = next(iter(records), None)
        if row is None or "id" not in records.header:
            return False
        try:
            return bool(_INTEGER.match(row.value(records.header.index("id"))))
        except FieldTooLong:
            return False


def rewrite_ids(path: Path, table: str) -> Iterator[tuple[bytes, int]]:
    """The file with every integer id replaced, every other byte as it was (so `""` stays an
    empty string and an empty field stays NULL); yields (chunk, bytes read). A record of any
    length passes through in pieces."""
    out = bytearray()
    with CsvRecords(path, ("id",)) as records:
        assert records.head is not None and records.head.raw is not None
        out += records.head.raw
        id_index = records.header.index("id")
        read = records.head.length
        for record in records:
            if record.truncated:
                raise LegacyRowError(record.first_line, None,
                                     "unterminated CSV quoted field (truncated?)")
            read += record.length
            if record.blank():
                continue  # a blank line, e.g. at the end of the file
            try:
                value = record.value(id_index)
            except FieldTooLong:
                value = "(longer than 1 MB)"
            if not _INTEGER.match(value):
                raise LegacyRowError(record.first_line, "id",
                                     f"legacy id {value[:40]!r} is not an integer")
            start, end = record.span(id_index)
            for chunk in record.replaced(start, end, legacy_uuid(table, value).encode()):
                out += chunk
                if len(out) >= _CHUNK:
                    yield bytes(out), read
                    read = 0
                    out.clear()
    yield bytes(out), read
