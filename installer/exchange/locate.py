"""Where in a CSV file a problem is: physical line and column, for messages people can act on.

PostgreSQL's COPY reports the physical line on which a bad record ends and, for value
errors, the column. A quoted field may span lines, so the record's first line is found by
re-reading the file (only when something failed).
"""

from __future__ import annotations

import csv
import math
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

_CONTEXT = re.compile(r"line (\d+)(?:, column ([^:]+))?")
csv.field_size_limit(sys.maxsize)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def records(lines: Iterable[bytes]) -> Iterator[tuple[int, int, bytes]]:
    """(first line, last line, raw bytes) of each CSV record, quotes honoured. A record cut off
    by the end of the input (an open quote) comes last, as it is."""
    first, raw, open_quote, number = 1, b"", False, 0
    for number, line in enumerate(lines, start=1):
        raw += line
        if line.count(b'"') % 2:
            open_quote = not open_quote
        if not open_quote:
            yield first, number, raw
            first, raw = number + 1, b""
    if raw:
        yield first, number, raw


def _records(path: Path) -> Iterator[tuple[int, int, bytes]]:
    with path.open("rb") as handle:
        yield from records(handle)


def _field_index(raw: bytes, offset: int) -> int:
    """Index of the CSV field that contains byte `offset` of a record."""
    index, quoted = 0, False
    for byte in raw[:offset]:
        if byte == 0x22:
            quoted = not quoted
        elif byte == 0x2C and not quoted:
            index += 1
    return index


def _column_name(header: list[str], index: int) -> str:
    return header[index] if index < len(header) else f"{index + 1} (beyond the header's " \
        f"{len(header)} columns)"


def position(path: Path, end_line: int, header: list[str],
             column: str | None) -> tuple[int, str | None]:
    """The first line of the record that ends on `end_line`, and the column when it can tell.

    A record cut off by the end of the file (an open quote) is the last one read."""
    first = end_line
    for first, last, raw in _records(path):
        if last < end_line:
            continue
        if column is None:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return (first + raw.count(b"\n", 0, exc.start),
                        _column_name(header, _field_index(raw, exc.start)))
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
    for first, _, raw in _records(path):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return (first + raw.count(b"\n", 0, exc.start),
                    _column_name(header, _field_index(raw, exc.start)))
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
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        start = reader.line_num + 1
        for record in reader:
            for i in indexes:
                if i < len(record) and not _float_list(record[i]):
                    return start, header[i]
            start = reader.line_num + 1
    return None


def line_of(path: Path, needle: str) -> int | None:
    """The first line that holds `needle` (used to place a row named by its id)."""
    data = needle.encode("utf-8")
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if data in line:
                return number
    return None
