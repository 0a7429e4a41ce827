"""Where in a CSV file a problem is: physical line and column, for messages people can act on.

PostgreSQL's COPY reports the physical line on which a bad record ends and, for value
errors, the column. A quoted field may span lines, so the record's first line is found by
re-reading the file (only when something failed).
"""

from __future__ import annotations

import math
import re
from itertools import chain
from pathlib import Path

from installer.exchange.csvfile import CsvRecords, FieldTooLong

_CONTEXT = re.compile(r"line (\d+)(?:, column ([^:]+))?")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _column_name(header: list[str], index: int) -> str:
    return header[index] if index < len(header) else f"{index + 1} (beyond the header's " \
        f"{len(header)} columns)"


def position(path: Path, end_line: int, header: list[str],
             column: str | None) -> tuple[int, str | None]:
    """The first line of the record that ends on `end_line`, and the column when it can tell.

    A record cut off by the end of the file (an open quote) is the last one read."""
    first = end_line
    with CsvRecords(path) as records:
        for record in chain([records.head] if records.head else [], records):
            first = record.first_line
            if record.last_line < end_line:
                continue
            bad = record.invalid_utf8() if column is None else None
            if bad is not None:
                return first + bad[1], _column_name(header, record.field_at(bad[0]))
            return first, column
    return first, column


def copy_error_location(path: Path, context: str | None, header: list[str],
                        renamed: dict[str, str]) -> str:
    """', line N, column C' from a COPY error context, mapped back to the file's names."""
    match = _CONTEXT.search(context or "")
    if not match:
        return ""
    line, column = position(path, int(match.group(1)), header, match.group(2))
    where = f", line {line}"
    if column:
        where += f", column {renamed.get(column, column)}"
    return where


def first_invalid_utf8(path: Path, header: list[str]) -> tuple[int, str] | None:
    """Line and column of the first byte that is not UTF-8."""
    with CsvRecords(path) as records:
        for record in records:
            bad = record.invalid_utf8()
            if bad is not None:
                return (record.first_line + bad[1],
                        _column_name(header, record.field_at(bad[0])))
    return None


def _float_list(text: str) -> bool:
    inner = text.strip()
    if not inner:
        return True  # NULL
    if inner[0] + inner[-1] not in ("[]", "{}"):
        return False
    try:
        values = [float(v) for v in inner[1:-1].split(",") if v.strip().lower() != "null"]
    except ValueError:
        return False
    return all(math.isfinite(v) for v in values)


def first_bad_float_list(path: Path, header: list[str],
                         columns: list[str]) -> tuple[int, str] | None:
    """Line and column of the first value in `columns` that is not a list of finite numbers."""
    indexes = [header.index(c) for c in columns if c in header]
    with CsvRecords(path, [header[i] for i in indexes]) as records:
        for record in records:
            for i in indexes:
                try:
                    good = _float_list(record.value(i))
                except FieldTooLong:
                    good = False
                if not good:
                    return record.first_line, header[i]
    return None


def line_of(path: Path, needle: str) -> int | None:
    """The first line that holds `needle` (used to place a row named by its id)."""
    data = needle.encode("utf-8")
    keep = len(data) - 1
    with path.open("rb") as handle:
        carried, breaks = b"", 0
        while chunk := handle.read(1 << 20):
            window = carried + chunk
            found = window.find(data)
            if found >= 0:
                return breaks + window.count(b"\n", 0, found) + 1
            carried = window[len(window) - keep:] if keep else b""
            breaks += window.count(b"\n", 0, len(window) - len(carried))
    return None
