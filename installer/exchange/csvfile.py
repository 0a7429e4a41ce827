"""CSV files read record by record in bounded memory, whatever the size of a field.

A quoted field may hold anything up to PostgreSQL's 1 GB, line breaks included. A record of
at most SMALL bytes is kept whole (and parsed by the csv module when asked); a longer one is
streamed: only the fields the reader was asked for are kept (each up to MAX_VALUE bytes), its
identity is a SHA-256, and its bytes are read from the file again when they are needed. So a
reader holds about two PIECEs plus one SMALL record, however large a field is.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import hashlib
import io
import re
import sys
from collections.abc import Collection, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Self

PIECE = 1 << 20  # the longest read: lines longer than this arrive in pieces
SMALL = 1 << 20  # records up to this size are held whole
HEADER = 1 << 20  # the longest header: it is always held whole
MAX_VALUE = 1 << 20  # the longest value kept of a wanted field in a streamed record
MAX_FIELDS = 10_000  # field boundaries kept per streamed record (a table has far fewer)
_COMMA_OR_QUOTE = re.compile(rb'[,"]')
_QUOTED = re.compile(rb'(?:[^"]++|"")*+')  # a quoted field's text up to its closing quote
csv.field_size_limit(sys.maxsize)  # PostgreSQL's own limit (1 GB a field) is the one that counts


class FieldTooLong(csv.Error):
    """A field the reader must read is longer than MAX_VALUE (keys, timestamps and vectors
    never are); like the csv module's own "field larger than field limit"."""


def _pieces(handle: io.BufferedReader, crlf: bool) -> Iterator[tuple[bytes, int]]:
    """(piece, bytes it took from the file): lines of at most PIECE bytes; with `crlf` a CRLF
    line end reads as LF (what a Windows checkout may have added)."""
    while piece := handle.readline(PIECE):
        taken = len(piece)
        if crlf:
            if piece.endswith(b"\r") and handle.peek(1)[:1] == b"\n":
                piece += handle.read(1)
                taken += 1
            if piece.endswith(b"\r\n"):
                piece = piece[:-2] + b"\n"
        yield piece, taken


def _line_end(tail: bytes) -> int:
    return 2 if tail.endswith(b"\r\n") else 1 if tail.endswith(b"\n") else 0


def _unquote(value: bytes) -> str:
    if len(value) >= 2 and value[:1] == value[-1:] == b'"':
        value = value[1:-1].replace(b'""', b'"')
    return value.decode("utf-8", "replace")


class _Fields:
    """Field boundaries of one record fed piece by piece, the values of `wanted`, and the
    SHA-256 of its bytes."""

    def __init__(self, wanted: Collection[int]):
        self.wanted = wanted
        self.digest = hashlib.sha256()
        self.quoted = False
        self.size = 0
        self.tail = b""
        self.starts = [0]
        self.values: dict[int, bytearray] = {}
        self.too_long: set[int] = set()

    def feed(self, piece: bytes) -> None:
        pos = field_start = 0
        while pos < len(piece):
            if self.quoted:  # skip to the closing quote, over "" pairs
                text = _QUOTED.match(piece, pos)
                assert text is not None  # the pattern matches the empty string too
                pos = text.end()
                if pos == len(piece):
                    break
                # the closing quote, or the first of a pair cut by the piece's end: then the
                # next piece starts with a quote, which opens the field again
                self.quoted, pos = False, pos + 1
                continue
            match = _COMMA_OR_QUOTE.search(piece, pos)
            if match is None:
                break
            pos = match.end()
            if match.group() == b'"':
                self.quoted = True
                continue
            self._keep(piece[field_start:match.start()])
            if len(self.starts) < MAX_FIELDS:
                self.starts.append(self.size + pos)
            field_start = pos
        self._keep(piece[field_start:])
        self.digest.update(piece)
        self.size += len(piece)
        self.tail = (self.tail + piece[-2:])[-2:]

    def _keep(self, part: bytes) -> None:
        index = len(self.starts) - 1
        if index not in self.wanted or index in self.too_long:
            return
        value = self.values.setdefault(index, bytearray())
        if len(value) + len(part) > MAX_VALUE:
            self.too_long.add(index)
            del self.values[index]
        else:
            value += part

    def value(self, index: int) -> str:
        if index in self.too_long:
            raise FieldTooLong(f"field {index + 1} is longer than {MAX_VALUE:,} bytes")
        raw = bytes(self.values.get(index, b""))
        return _unquote(raw[:len(raw) - _line_end(raw)])

    def span(self, index: int) -> tuple[int, int]:
        if index >= len(self.starts):
            return self.size, self.size
        end = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else \
            self.size - _line_end(self.tail)
        return self.starts[index], end

    def field_at(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) - 1


class Record:
    """One CSV record: where it is in the file and what the reader kept of it."""

    __slots__ = (
        "_digest",
        "_fields",
        "_parsed",
        "first_line",
        "last_line",
        "length",
        "raw",
        "source",
        "start",
        "truncated",
    )

    def __init__(self, source: CsvRecords, first_line: int, last_line: int, start: int,
                 length: int, truncated: bool, raw: bytes | None, fields: _Fields | None,
                 digest: bytes | None):
        self.source = source
        self.first_line = first_line
        self.last_line = last_line
        self.start = start  # offset in the file
        self.length = length  # bytes in the file
        self.truncated = truncated  # the file ended inside a quoted field
        self.raw = raw  # the record's bytes when it is at most SMALL, else None
        self._fields = fields
        self._digest = digest
        self._parsed: list[str] | None = None

    def fields(self) -> list[str]:
        """Every field's value; for a record held whole (a header, a row of a usual size)."""
        if self.raw is None:
            raise FieldTooLong(f"line {self.first_line}: the record is longer than "
                               f"{SMALL:,} bytes")
        if self._parsed is None:
            self._parsed = next(csv.reader([self.raw.decode("utf-8", "replace")]), [])
        return self._parsed

    def value(self, index: int) -> str:
        """One field's value ("" beyond the last field)."""
        if self.raw is not None:
            fields = self.fields()
            return fields[index] if index < len(fields) else ""
        assert self._fields is not None
        return self._fields.value(index)

    def _boundaries(self) -> _Fields:
        if self._fields is None:
            assert self.raw is not None
            self._fields = _Fields(())
            self._fields.feed(self.raw)
        return self._fields

    def span(self, index: int) -> tuple[int, int]:
        """Start and end offset of a field's bytes (quotes included) in the record."""
        return self._boundaries().span(index)

    def field_at(self, offset: int) -> int:
        """Index of the field that holds byte `offset` of the record."""
        return self._boundaries().field_at(offset)

    def blank(self) -> bool:
        return self.raw is not None and not self.raw.strip()

    def same(self, other: Record) -> bool:
        if self.raw is not None and other.raw is not None:
            return self.raw == other.raw
        # equal bytes are equally long, so both are held or both streamed (and digested)
        return self.raw is None and other.raw is None and self._digest == other._digest

    def chunks(self) -> Iterator[bytes]:
        """The record's bytes, as the reader saw them (line ends normalised where asked)."""
        if self.raw is not None:
            yield self.raw
            return
        with self.source.path.open("rb") as handle:
            handle.seek(self.start)
            left = self.length
            for piece, taken in _pieces(handle, self.source.crlf):
                yield piece
                left -= taken
                if left <= 0:
                    return

    def replaced(self, start: int, end: int, new: bytes) -> Iterator[bytes]:
        """The record's bytes with bytes start..end replaced by `new`."""
        offset = 0
        for chunk in self.chunks():
            after = offset + len(chunk)
            if after <= start or offset >= end:
                yield chunk
            else:
                if offset <= start:
                    yield chunk[:start - offset] + new
                if after > end:
                    yield chunk[max(end - offset, 0):]
            offset = after

    def invalid_utf8(self) -> tuple[int, int] | None:
        """(offset, line breaks before it) of the first byte that is not UTF-8, or None."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = breaks = 0
        for chunk in self.chunks():
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                at = offset - pending + exc.start
                return at, breaks + chunk.count(b"\n", 0, max(at - offset, 0))
            offset += len(chunk)
            breaks += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return offset - len(exc.object) + exc.start, breaks
        return None


def compare_text(a: Record, b: Record) -> int:
    """-1, 0 or 1 as the bytes of `a` sort before, with or after those of `b`."""
    if a.raw is not None and b.raw is not None:
        return (a.raw > b.raw) - (a.raw < b.raw)
    left, right = a.chunks(), b.chunks()
    x = y = b""
    while True:
        x = x or next(left, b"")
        y = y or next(right, b"")
        if not x or not y:
            return bool(x) - bool(y)
        n = min(len(x), len(y))
        if x[:n] != y[:n]:
            return 1 if x[:n] > y[:n] else -1
        x, y = x[n:], y[n:]


class CsvRecords:
    """The records of a CSV file after its header, in file order; use as a context manager.

    `columns` names the fields a streamed record keeps (others of a usual-size record are
    there anyway); `crlf` reads CRLF line ends as LF."""

    def __init__(self, path: Path, columns: Sequence[str] = (), *, crlf: bool = False):
        self.path = path
        self.crlf = crlf
        self._handle = path.open("rb")
        self._pieces = _pieces(self._handle, crlf)
        self._line = self._offset = 0
        self._wanted: frozenset[int] = frozenset()
        self.head = self._read(HEADER)
        if self.head is not None and self.head.raw is None:
            self.close()
            raise FieldTooLong(f"{path}: the header is longer than {HEADER:,} bytes")
        self.header = list(self.head.fields()) if self.head is not None else []
        if self.header:
            self.header[0] = self.header[0].removeprefix("\ufeff")
        self._wanted = frozenset(self.header.index(c) for c in columns if c in self.header)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[Record]:
        while (record := self._read(SMALL)) is not None:
            yield record

    def _read(self, hold: int) -> Record | None:
        """The next record: held whole up to `hold` bytes, streamed beyond."""
        opening = next(self._pieces, (b"", 0))
        if not opening[1]:
            return None
        first, start = self._line + 1, self._offset
        line = opening[0]
        if line.endswith(b"\n") and not line.count(b'"') % 2 and len(line) <= hold:
            self._line, self._offset = first, start + opening[1]  # the usual record: one line
            return Record(self, first, first, start, opening[1], False, line, None, None)
        held: list[bytes] = []
        size = length = 0
        fields: _Fields | None = None
        quoted = ended = False
        for piece, taken in chain([opening], self._pieces):
            length += taken
            ended = piece.endswith(b"\n")
            self._line += ended
            if piece.count(b'"') % 2:
                quoted = not quoted
            if fields is None:
                held.append(piece)
                size += len(piece)
                if size > hold:  # too long to hold: stream it from here on
                    fields = _Fields(self._wanted)
                    for part in held:
                        fields.feed(part)
                    held.clear()
            else:
                fields.feed(piece)
            if ended and not quoted:
                break
        self._line += not ended  # a last line without a line break
        self._offset += length
        raw = (held[0] if len(held) == 1 else b"".join(held)) if fields is None else None
        return Record(self, first, self._line, start, length, quoted, raw, fields,
                      fields.digest.digest() if fields is not None else None)
