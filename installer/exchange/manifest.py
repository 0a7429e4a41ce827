"""exports/manifest.json: what an export holds, and the checks an import makes before loading.

    {"format": "learning-exports", "format_version": 1,
     "schema_version": {"learning": 1},
     "tables": {"agent_metrics": {"file": "csv/agent_metrics.csv", "rows": 10,
                                  "sha256": "…", "columns": [{"name": "id", "type": "uuid"}, …]}}}

It holds no timestamp and no connection detail, so unchanged data gives an unchanged manifest.
The SHA-256 is over the file with LF line ends (a checkout that turned them into CRLF still
matches). A key other than `id` is recorded as `"key": ["id", "created_at"]`. An entry that
git's merge driver wrote for a file both machines changed says `"merged": true` and has no row
count or checksum (merge.py); the import then checks its header and form only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installer.errors import DataError

FORMAT = "learning-exports"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
CSV_DIR = "csv"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class TableEntry:
    name: str
    file: str  # relative to the manifest's folder
    rows: int | None  # None: merged by git from two machines' files
    sha256: str | None
    columns: tuple[tuple[str, str], ...]  # (name, type)
    key: tuple[str, ...] = ("id",)

    @property
    def merged(self) -> bool:
        return self.rows is None

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"file": self.file, "rows": self.rows, "sha256": self.sha256,
                               "columns": [{"name": n, "type": t} for n, t in self.columns]}
        if self.key != ("id",):
            doc["key"] = list(self.key)
        if self.merged:
            doc["merged"] = True
        return doc


@dataclass(frozen=True)
class Manifest:
    schema_version: dict[str, int]
    tables: dict[str, TableEntry]

    def to_bytes(self) -> bytes:
        return render_manifest(FORMAT_VERSION, self.schema_version,
                               {name: entry.as_json() for name, entry in self.tables.items()})


def render_manifest(version: int, schema: dict[str, int], tables: dict[str, Any]) -> bytes:
    doc = {"format": FORMAT, "format_version": version,
           "schema_version": dict(sorted(schema.items())),
           "tables": {name: tables[name] for name in sorted(tables)}}
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def lf_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    """The file's bytes in blocks, CRLF line ends turned into LF when its header ends in CRLF
    (a checkout with core.autocrlf): a value never keeps a \\r that git added."""
    with path.open("rb") as handle:
        first = handle.readline()
        crlf = first.endswith(b"\r\n")
        pending = first
        while True:
            block = handle.read(size)
            data = pending + block
            if not block:
                if data:
                    yield data.replace(b"\r\n", b"\n") if crlf else data
                return
            if crlf:  # keep a trailing \r until we see what follows it
                cut = len(data) - 1 if data.endswith(b"\r") else len(data)
                data, pending = data[:cut].replace(b"\r\n", b"\n"), data[cut:]
            else:
                pending = b""
            yield data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in lf_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def table_file(name: str) -> str:
    return f"{CSV_DIR}/{name}.csv"


def valid_table_name(name: str) -> bool:
    return bool(_TABLE_NAME.match(name))


def _invalid(path: Path, what: str) -> DataError:
    return DataError(f"{path} is not a valid export manifest: {what}; nothing was imported",
                     hint="restore it with `git checkout -- exports/manifest.json` (an export "
                     "reads it first, so it cannot overwrite a broken one)")


def read_manifest(path: Path) -> Manifest:
    """Parse and validate; any problem refuses the whole export (DataError)."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid(path, f"not JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _invalid(path, f'"format" is not "{FORMAT}"')
    version = doc.get("format_version")
    if not isinstance(version, int):
        raise _invalid(path, '"format_version" is missing')
    if version > FORMAT_VERSION:
        raise DataError(f"{path} has format version {version}; this installer reads up to "
                        f"{FORMAT_VERSION}; nothing was imported",
                        hint="update this checkout (`git pull`) and run the installer again")
    schema = doc.get("schema_version", {})
    tables = doc.get("tables")
    if not isinstance(schema, dict) or not isinstance(tables, dict):
        raise _invalid(path, '"schema_version" and "tables" must be objects')
    entries = {}
    for name, entry in tables.items():
        try:
            columns = tuple((str(c["name"]), str(c["type"])) for c in entry["columns"])
            merged = entry.get("merged") is True
            parsed = TableEntry(name, str(entry["file"]), None if merged else int(entry["rows"]),
                                None if merged else str(entry["sha256"]), columns,
                                tuple(str(k) for k in entry.get("key") or ("id",)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _invalid(path, f"table {name!r} lacks file, rows, sha256 or columns") from exc
        if not valid_table_name(name) or parsed.file != table_file(name):
            raise _invalid(path, f"table {name!r} must be stored as {table_file(name)}")
        if not merged and (not _SHA256.match(parsed.sha256 or "") or (parsed.rows or 0) < 0):
            raise _invalid(path, f"table {name!r} has a malformed sha256 or row count")
        entries[name] = parsed
    return Manifest({str(k): int(v) for k, v in schema.items()}, entries)
