"""The git merge driver for exports/: rows merge by primary key, so `git pull` never conflicts.

Registered by the installer (`.gitattributes`: `exports/** -text merge=learning-exports`, and
`git config merge.learning-exports.driver`); git calls it with the common ancestor (%O), our
version (%A, where the result goes) and theirs (%B) of one file:

- `csv/<table>.csv`: a three-way merge of rows by key. A row changed on one side only takes
  that side; changed on both, the newer `updated_at` (tombstones: `deleted_at`) wins, ties go
  to the greater row text, so both machines pick the same row. A row deleted on one side and
  unchanged on the other is dropped (its tombstone travels in exchange_tombstones.csv); changed
  on the other side, it stays and the import's tombstone pass decides by time. Export files
  are sorted by key, so the three files are read side by side in one pass, and a long record
  is streamed (csvfile): memory grows neither with the file nor with a field. Files whose
  headers differ (two schema versions) are left to git as a conflict.
- `manifest.json`: tables changed on one side take that side's entry; tables changed on both
  get an entry marked `"merged": true` with no row count or checksum, which an import checks
  for structure only (the next export writes exact entries again).
- anything else (EXPORT_SUMMARY.md): ours; the next export rewrites it.

Runs as a script without the installer's dependencies: git starts it once per merged file.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run by git as a script: make `installer` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from installer.exchange.csvfile import CsvRecords, Record, compare_text
from installer.exchange.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_NAME,
    render_manifest,
)

DRIVER = "learning-exports"
ATTRIBUTES = f"exports/** -text merge={DRIVER}"
VERSION_COLUMNS = ("updated_at", "deleted_at")

Key = tuple[str, ...]


class MergeRefused(Exception):
    """The files cannot be merged row by row; git then reports a conflict."""


def _version(value: str) -> tuple[int, datetime | str]:
    """Sortable form of a timestamp as PostgreSQL prints it; unparsable text sorts last."""
    if value in ("", "-infinity"):
        return (0, "")
    if value == "infinity":
        return (3, "")
    try:
        return (1, datetime.fromisoformat(value))
    except ValueError:
        return (2, value)


class _Side:
    """One version of a CSV file, read record by record in key order (CRLF read as LF)."""

    def __init__(self, path: Path, key: tuple[str, ...]):
        self.file = CsvRecords(path, key + VERSION_COLUMNS, crlf=True)
        head = self.file.head
        if head is not None and head.truncated:
            raise MergeRefused("the file ends inside a quoted field (truncated)")
        self.header = b"" if head is None else head.raw or b""
        names = self.file.header
        missing = [k for k in key if k not in names]
        if names and missing:
            raise MergeRefused(f"{path}: no key column {', '.join(missing)}")
        self.key_index = [names.index(k) for k in key] if names else []
        version = next((c for c in VERSION_COLUMNS if c in names), None)
        self.version_index = names.index(version) if version else None
        self.records = iter(self.file)
        self.current: tuple[Key, Record] | None = None
        self.advance()

    def advance(self) -> None:
        previous = self.current[0] if self.current else None
        record = next(self.records, None)
        if record is None:
            self.current = None
            return
        if record.truncated:
            raise MergeRefused("the file ends inside a quoted field (truncated)")
        key = tuple(record.value(i) for i in self.key_index)
        if previous is not None and key <= previous:
            raise MergeRefused(f"rows are not in key order at {key}")
        self.current = (key, record)

    def take(self, key: Key) -> Record | None:
        if self.current is None or self.current[0] != key:
            return None
        record = self.current[1]
        self.advance()
        return record

    def newer(self, mine: Record, other: Record) -> Record:
        """The row both machines keep: the later version, ties to the greater row text."""
        if self.version_index is not None:
            a, b = (_version(r.value(self.version_index)) for r in (mine, other))
            if a != b:
                return mine if a > b else other
        return mine if compare_text(mine, other) >= 0 else other


def _same(a: Record | None, b: Record | None) -> bool:
    return a.same(b) if a is not None and b is not None else a is b


def _pick(base: Record | None, mine: Record | None, other: Record | None,
          side: _Side) -> Record | None:
    if _same(mine, other):
        return mine
    if _same(mine, base):  # only theirs changed (or deleted) the row
        return other
    if _same(other, base):
        return mine
    if mine is None or other is None:  # deleted on one side, changed on the other
        return mine or other
    return side.newer(mine, other)


def merge_rows(base: Path, ours: Path, theirs: Path, out: Path,
               key: tuple[str, ...] = ("id",)) -> int:
    """Three-way merge of one table's CSV versions into `out`; returns the rows written."""
    sides: list[_Side] = []
    tmp = out.with_name(out.name + ".merging")
    try:
        sides.extend(_Side(p, key) for p in (base, ours, theirs))
        o, a, b = sides
        if a.header and b.header and a.header != b.header:
            raise MergeRefused("the two versions have different columns (schema versions "
                               "differ): run the installer's --full on both machines first")
        written = 0
        with tmp.open("wb") as handle:
            handle.write(a.header or b.header)
            while a.current or b.current:
                key_now = min(s.current[0] for s in (a, b) if s.current)
                while o.current and o.current[0] < key_now:
                    o.advance()
                row = _pick(o.take(key_now), a.take(key_now), b.take(key_now), a)
                if row is not None:
                    handle.writelines(row.chunks())
                    written += 1
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for side in sides:
            side.file.close()
    tmp.replace(out)
    return written


def _load_json(path: Path) -> dict[str, Any]:
    """One version of manifest.json (an empty file: no version, e.g. no common ancestor);
    anything but an export manifest's shape is refused, so git leaves a conflict."""
    try:
        doc: object = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MergeRefused(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise MergeRefused(f"{path} is not an export manifest (a JSON {type(doc).__name__}, "
                           "not an object)")
    if doc and doc.get("format") != FORMAT:
        raise MergeRefused(f"{path} is not an export manifest")
    tables, schema = doc.get("tables", {}), doc.get("schema_version", {})
    if not isinstance(tables, dict) or not all(isinstance(e, dict) and "file" in e and
                                               "columns" in e for e in tables.values()) \
            or not isinstance(schema, dict) \
            or not all(isinstance(v, int) for v in schema.values()) \
            or not isinstance(doc.get("format_version", FORMAT_VERSION), int):
        raise MergeRefused(f"{path} is not an export manifest (malformed tables, "
                           "schema_version or format_version)")
    return doc


def merge_manifests(base: Path, ours: Path, theirs: Path, out: Path) -> None:
    o, a, b = (_load_json(p) for p in (base, ours, theirs))
    if not isinstance(a.get("tables"), dict) or not isinstance(b.get("tables"), dict):
        raise MergeRefused("a manifest has no tables")
    tables = {}
    o_tables = o.get("tables") or {}
    for name in sorted(a["tables"].keys() | b["tables"].keys()):
        mine, other, common = a["tables"].get(name), b["tables"].get(name), o_tables.get(name)
        if mine is None or other is None or mine == other or other == common:
            tables[name] = mine or other
        elif mine == common:
            tables[name] = other
        else:  # both sides changed the file: its rows were merged by merge_rows
            tables[name] = {"file": mine["file"], "rows": None, "sha256": None,
                            "columns": mine["columns"], "merged": True}
    schema = dict(b.get("schema_version") or {})
    for module, version in (a.get("schema_version") or {}).items():
        schema[module] = max(version, schema.get(module, version))
    version = max(a.get("format_version", FORMAT_VERSION), b.get("format_version",
                                                                  FORMAT_VERSION))
    out.write_bytes(render_manifest(version, schema, tables))


def table_key(file_path: str) -> tuple[str, ...]:
    """The table's key as the checked-out manifest records it (default: id)."""
    path = Path(file_path)
    manifest = path.parent.parent / MANIFEST_NAME
    try:
        entry = json.loads(manifest.read_text(encoding="utf-8"))["tables"][path.stem]
        return tuple(entry.get("key") or ("id",))
    except (OSError, ValueError, KeyError, TypeError):
        return ("id",)


def main(argv: list[str]) -> int:
    """git's call: BASE OURS THEIRS PATH; the result goes to OURS; non-zero means conflict."""
    if len(argv) != 4:
        print("usage: merge.py BASE OURS THEIRS PATH", file=sys.stderr)
        return 2
    base, ours, theirs = (Path(p) for p in argv[:3])
    name = argv[3]
    try:
        if name.endswith(".csv"):
            rows = merge_rows(base, ours, theirs, ours, table_key(name))
            print(f"learning exports: merged {name} by row ({rows} rows)", file=sys.stderr)
        elif Path(name).name == MANIFEST_NAME:
            merge_manifests(base, ours, theirs, ours)
        return 0
    except (MergeRefused, OSError, UnicodeDecodeError, csv.Error) as exc:
        print(f"learning exports: cannot merge {name} by row: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
