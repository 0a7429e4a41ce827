"""Exports of the earlier bash-based system: integer ids, a `timestamp` column, no manifest.

Each integer id becomes UUIDv5(LEGACY_NAMESPACE, "<table>/<id>"), so importing the same
files twice (or on two machines) gives the same rows. `timestamp` (without time zone) loads
into `created_at` and is read as UTC; `t`/`f` booleans load as they are.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

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


def has_integer_ids(path: Path, id_index: int) -> bool:
    """True when the first data row's id is an integer (a legacy export)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        row = next(reader, None)
    return bool(row) and len(row) > id_index and bool(_INTEGER.match(row[id_index]))


def rewrite_ids(path: Path, table: str, id_index: int) -> Iterator[tuple[bytes, int]]:
    """The file as CSV bytes with every integer id replaced; yields (chunk, bytes read)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        reader = csv.reader(text, strict=True)
        position = 0
        try:
            for row in reader:
                if reader.line_num > 1 and row:
                    value = row[id_index] if id_index < len(row) else ""
                    if not _INTEGER.match(value):
                        raise LegacyRowError(reader.line_num, "id",
                                             f"legacy id {value!r} is not an integer")
                    row[id_index] = legacy_uuid(table, value)
                writer.writerow(row)
                if out.tell() >= _CHUNK:
                    now = raw.tell()
                    yield out.getvalue().encode("utf-8"), now - position
                    position = now
                    out.seek(0)
                    out.truncate()
        except csv.Error as exc:
            raise LegacyRowError(reader.line_num, None, str(exc)) from exc
        except UnicodeDecodeError as exc:
            raise LegacyRowError(None, None, "not valid UTF-8") from exc  # located by the caller
        yield out.getvalue().encode("utf-8"), raw.tell() - position
