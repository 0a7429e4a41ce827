"""Exports of the earlier bash-based system: integer ids, a `timestamp` column, no manifest.

Each integer id becomes UUIDv5(LEGACY_NAMESPACE, "<table>/<id>"), so importing the same
files twice (or on two machines) gives the same rows. `timestamp` (without time zone) loads
into `created_at` and is read as UTC; `t`/`f` booleans load as they are.
"""

from __future__ import annotations

import csv
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from installer.exchange.locate import records

LEGACY_NAMESPACE = uuid.UUID("5d1f3b7e-8c2a-5e4b-9a61-0c7f2e8d4b19")
# legacy column -> our column, applied when the table has no column of the legacy name
RENAMES = {"timestamp": "created_at"}
_INTEGER = re.compile(r"^[0-9]+$")
_CHUNK = 1 << 20
csv.field_size_limit(sys.maxsize)  # PostgreSQL's own limit (1 GB a field) is the one that counts


class LegacyRowError(ValueError):
    def __init__(self, line: int | None, column: str | None, message: str):
        super().__init__(message)
        self.line = line
        self.column = column


def legacy_uuid(table: str, legacy_id: str) -> str:
    return str(uuid.uuid5(LEGACY_NAMESPACE, f"{table}/{int(legacy_id)}"))


def has_integer_ids(path: Path, id_index: int) -> bool:
    """True when the first data row's id is an integer (a legacy export)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        row = next(reader, None)
    return bool(row) and len(row) > id_index and bool(_INTEGER.match(row[id_index]))


def _field_span(raw: bytes, index: int) -> tuple[int, int]:
    """Start and end offsets of field `index` in a raw CSV record (quotes honoured)."""
    start, field, quoted = 0, 0, False
    for offset, byte in enumerate(raw):
        if byte == 0x22:
            quoted = not quoted
        elif byte == 0x2C and not quoted:
            if field == index:
                return start, offset
            field, start = field + 1, offset + 1
    end = len(raw) - (2 if raw.endswith(b"\r\n") else 1 if raw.endswith(b"\n") else 0)
    return (start, end) if field == index else (len(raw), len(raw))


def rewrite_ids(path: Path, table: str, id_index: int) -> Iterator[tuple[bytes, int]]:
    """The file with every integer id replaced, every other byte as it was (so `""` stays an
    empty string and an empty field stays NULL); yields (chunk, bytes read)."""
    out = bytearray()
    read = 0
    with path.open("rb") as handle:
        for line, _, raw in records(handle):
            if raw.count(b'"') % 2:
                raise LegacyRowError(line, None, "unterminated CSV quoted field (truncated?)")
            if line > 1 and not raw.strip():
                continue  # a blank line, e.g. at the end of the file
            if line > 1:
                start, end = _field_span(raw, id_index)
                value = raw[start:end].decode("utf-8", "replace").strip('"')
                if not _INTEGER.match(value):
                    raise LegacyRowError(line, "id", f"legacy id {value!r} is not an integer")
                raw = raw[:start] + legacy_uuid(table, value).encode() + raw[end:]
            out += raw
            if len(out) >= _CHUNK:
                now = handle.tell()
                yield bytes(out), now - read
                read = now
                out.clear()
    yield bytes(out), path.stat().st_size - read
