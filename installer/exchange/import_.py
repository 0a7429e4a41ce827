"""Import exports into the learning database: verified, streamed, all or nothing per file.

Each file loads in its own transaction, tables parents first (foreign keys are deferred
within the transaction, so rows of one table may reference each other in any order). Into
an empty table a file streams with COPY straight into the table; otherwise COPY fills a
temporary staging table and one `INSERT … ON CONFLICT (<primary key>)` merges it: rows
already present are kept, except that in a table with `updated_at` (tombstones: `deleted_at`)
an incoming row with a newer one replaces the local one (last writer wins). The file's SHA-256
is computed while it streams and compared with the manifest before commit, so a file that fails
any check leaves nothing behind. The transaction says `SET LOCAL learning.import = 'on'`: the
schema's triggers then skip their side effects and `set_updated_at` keeps the replayed
`updated_at` (sql/learning/003 and 004).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from installer import db
from installer.console import Console
from installer.credentials import ConnInfo
from installer.errors import DataError
from installer.exchange import catalog, csvfile, legacy, locate, tombstones, triggers
from installer.exchange.manifest import (
    CSV_DIR,
    MANIFEST_NAME,
    Manifest,
    TableEntry,
    lf_chunks,
    read_manifest,
    sha256_file,
)

_CHUNK = 1 << 20
PROGRESS_MIN_BYTES = 8 << 20
_STAGE = sql.Identifier("_learning_import")
_MISMATCH = (f"{{path}} does not match its SHA-256 in {MANIFEST_NAME} (edited, truncated, or "
             "left over from a merge?)")


@dataclass(frozen=True)
class Source:
    """A folder to import: an export with manifest.json, or bare CSV files (legacy)."""

    root: Path
    manifest: Manifest | None
    files: dict[str, Path]  # table -> file
    unlisted: tuple[Path, ...] = ()  # CSV files the manifest does not mention

    @property
    def fingerprint(self) -> str | None:
        path = self.root / MANIFEST_NAME
        return hashlib.sha256(path.read_bytes()).hexdigest() if self.manifest else None


def find_source(directory: Path, *, legacy_allowed: bool = False) -> Source | None:
    """What `directory` holds to import, or None when it holds nothing. CSV files without a
    manifest.json are a legacy export only where `legacy_allowed` (`import --from`); in the
    project's exports/ a missing manifest is refused, never read as unverified files."""
    if (directory / MANIFEST_NAME).exists():
        manifest = read_manifest(directory / MANIFEST_NAME)
        files = {name: directory / entry.file for name, entry in manifest.tables.items()}
        listed = set(files.values())
        unlisted = tuple(p for p in sorted((directory / CSV_DIR).glob("*.csv"))
                         if p not in listed)
        return Source(directory, manifest, files, unlisted)
    folder = directory / CSV_DIR if (directory / CSV_DIR).is_dir() else directory
    files = {p.stem: p for p in sorted(folder.glob("*.csv"))}
    if files and not legacy_allowed:
        raise DataError(
            f"{directory / MANIFEST_NAME} is missing but {folder} holds {len(files)} CSV "
            "file(s); nothing was imported or exported (unverified files could drop rows)",
            hint=f"restore it with `git checkout -- {directory.name}/{MANIFEST_NAME}`; files "
            "of the earlier bash-based system load with `import --from DIR`")
    return Source(directory, None, files) if files else None


@dataclass
class FileOutcome:
    table: str
    path: Path
    rows: int = 0
    imported: int = 0
    updated: int = 0
    error: str | None = None  # nothing from the file was imported
    note: str | None = None  # nothing to import, and that is fine
    warnings: list[str] = field(default_factory=list)

    @property
    def present(self) -> int:
        return self.rows - self.imported - self.updated


class BadFile(Exception):
    """A file that cannot be imported; the message names file, line and column."""


@dataclass
class _Layout:
    header: list[str]
    staged: list[str]  # COPY column names, in file order (file names mapped to ours)
    targets: list[catalog.Column]  # the table's columns the file provides
    ignored: list[str]
    file_names: dict[str, str]  # staged name -> name in the file, where they differ
    legacy_ids: bool


def _read_header(path: Path) -> list[str] | None:
    with path.open("rb") as handle:
        first = handle.readline(csvfile.HEADER + 1)
    if not first.strip():
        return None
    if len(first) > csvfile.HEADER:
        raise BadFile(f"{path}, line 1: the header is longer than {csvfile.HEADER:,} bytes "
                      "(is this a CSV export?)")
    try:
        text = first.decode("utf-8").removeprefix("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise BadFile(f"{path}, line 1: the header is not valid UTF-8") from exc
    return next(csv.reader([text]))


def _layout(path: Path, table: catalog.Table, header: list[str], verified: bool) -> _Layout:
    seen: set[str] = set()
    layout = _Layout(header, [], [], [], {}, False)
    for number, name in enumerate(header, start=1):
        if not name or name in seen:
            raise BadFile(f"{path}, line 1, column {number}: header name "
                          f"{name!r} is empty or repeated")
        seen.add(name)
        target = table.column(name)
        mapped = legacy.RENAMES.get(name)
        if target is None and mapped and mapped not in header and table.column(mapped):
            target = table.column(mapped)
            layout.file_names[mapped] = name
        if target is None:
            layout.ignored.append(name)
            layout.staged.append(name)
        else:
            layout.targets.append(target)
            layout.staged.append(target.name)
    missing = [k for k in table.key if k not in layout.staged]
    if missing:
        raise BadFile(f"{path}, line 1: the header lacks the key column(s) {', '.join(missing)}")
    layout.legacy_ids = not verified and legacy.has_integer_ids(path)
    return layout


class _Reading:
    """The file's bytes as COPY gets them (LF line ends), hashed on the way."""

    def __init__(self, path: Path, layout: _Layout, table: str):
        self.path, self.layout, self.table = path, layout, table
        self.digest = hashlib.sha256()
        self.last = b""

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        if self.layout.legacy_ids:
            yield from legacy.rewrite_ids(self.path, self.table)
            return
        for chunk in lf_chunks(self.path, _CHUNK):
            self.digest.update(chunk)
            self.last = chunk[-1:]
            yield chunk, len(chunk)


def _copy(conn: psycopg.Connection, target: sql.Composable, columns: list[str],
          chunks: Iterator[tuple[bytes, int]], advance: Callable[[int], None]) -> int:
    query = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns)))
    with conn.cursor() as cur:
        with cur.copy(query) as copy:
            for chunk, read in chunks:
                copy.write(chunk)
                advance(read)
        return cur.rowcount


def _merge(conn: psycopg.Connection, table: catalog.Table, layout: _Layout,
           empty: bool) -> tuple[int, int]:
    """Staging table into the table; returns (inserted, updated). Into an empty table a plain
    INSERT (no conflict is possible; speculative insertion would only cost time)."""
    names = [c.name for c in layout.targets]
    columns = sql.SQL(", ").join(map(sql.Identifier, names))
    values = sql.SQL(", ").join(c.import_expr(sql.Identifier(c.name)) for c in layout.targets)
    insert = sql.SQL("INSERT INTO {} AS t ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {} "
                     ).format(table.ident, columns, values, _STAGE)
    if empty:
        with conn.cursor() as cur:
            cur.execute(insert)
            return cur.rowcount, 0
    version = table.version_column
    if version is None or version not in names:
        with conn.cursor() as cur:
            cur.execute(insert + sql.SQL("ON CONFLICT ({}) DO NOTHING").format(table.key_list))
            return cur.rowcount, 0
    updates = sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n),
                                                                    sql.Identifier(n))
                                 for n in names if n not in table.key)
    query = sql.SQL("WITH merged AS ({} ON CONFLICT ({}) DO UPDATE SET {} WHERE "
                    "t.{} < EXCLUDED.{} RETURNING (xmax = 0) AS inserted) "
                    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT "
                    "inserted) FROM merged").format(insert, table.key_list, updates,
                                                    sql.Identifier(version),
                                                    sql.Identifier(version))
    inserted, updated = db.one(conn, query)
    return inserted, updated


def _load(conn: psycopg.Connection, table: catalog.Table, path: Path, layout: _Layout,
          entry: TableEntry | None, outcome: FileOutcome,
          advance: Callable[[int], None]) -> str:
    """Load one file in one transaction; returns the SHA-256 of what was read."""
    reading = _Reading(path, layout, table.name)
    chunks = iter(reading)
    with catalog.transaction(conn):
        conn.execute("SET CONSTRAINTS ALL DEFERRED")
        conn.execute("SET LOCAL learning.import = 'on'")
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table.ident))
        empty = db.one(conn, sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(
            table.ident))[0]
        orphans = _parents_deleted_here(conn, table, layout)
        if empty and not layout.ignored and not orphans and \
                not any(c.float_array for c in layout.targets):
            outcome.rows = _copy(conn, table.ident, layout.staged, chunks, advance)
            outcome.imported = outcome.rows
        else:
            types = {c.name: c.staging_type for c in layout.targets}
            conn.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
                _STAGE, sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(types.get(n, "text")))
                    for n in layout.staged)))
            outcome.rows = _copy(conn, _STAGE, layout.staged, chunks, advance)
            _refuse_bad_floats(conn, path, layout)
            _follow_deletes(conn, orphans)
            outcome.imported, outcome.updated = _merge(conn, table, layout, empty)
        if entry is not None:
            _verify(path, entry, reading, outcome.rows)
    return reading.digest.hexdigest()


_ORPHAN = ("{column} IN (SELECT row_id FROM {tombstones} WHERE table_name = {parent}) AND NOT "
           "EXISTS (SELECT 1 FROM {parent_table} p WHERE p.id = {column})")


def _parents_deleted_here(conn: psycopg.Connection, table: catalog.Table,
                          layout: _Layout) -> list[tuple[str, str, str]]:
    """Foreign keys of the file whose parent table has tombstones here: a row may arrive that
    points at a parent this machine deleted (made on another machine after the delete)."""
    keys = [fk for fk in table.foreign_keys if fk[0] in layout.staged and fk[2] in "cn"]
    if not keys or catalog.scalar(conn, "SELECT to_regclass(%s)", (catalog.TOMBSTONES,)) is None:
        return []
    with_tombstones = {row[0] for row in conn.execute(
        sql.SQL("SELECT DISTINCT table_name FROM {} WHERE table_name = ANY (%s)").format(
            sql.Identifier(catalog.SCHEMA, catalog.TOMBSTONES)), ([fk[1] for fk in keys],))}
    return [fk for fk in keys if fk[1] in with_tombstones]


def _follow_deletes(conn: psycopg.Connection, keys: list[tuple[str, str, str]]) -> None:
    """Do to staged rows what the parent's delete did here: ON DELETE SET NULL clears the
    reference, ON DELETE CASCADE drops the row."""
    for column, parent, action in keys:
        where = sql.SQL(_ORPHAN).format(
            column=sql.Identifier(column), parent=sql.Literal(parent),
            tombstones=sql.Identifier(catalog.SCHEMA, catalog.TOMBSTONES),
            parent_table=sql.Identifier(catalog.SCHEMA, parent))
        if action == "n":
            conn.execute(sql.SQL("UPDATE {} SET {} = NULL WHERE ").format(
                _STAGE, sql.Identifier(column)) + where)
        else:
            conn.execute(sql.SQL("DELETE FROM {} WHERE ").format(_STAGE) + where)


def _verify(path: Path, entry: TableEntry, reading: _Reading, rows: int) -> None:
    """What the manifest promises: a complete file, its rows, its bytes (unless merged)."""
    if reading.last != b"\n":
        raise BadFile(f"{path} is truncated (it does not end with a line end); "
                      f"{MANIFEST_NAME} says {entry.rows} rows")
    if entry.sha256 is not None and reading.digest.hexdigest() != entry.sha256:
        raise BadFile(_MISMATCH.format(path=path))
    if entry.rows is not None and rows != entry.rows:
        raise BadFile(f"{path} holds {rows} rows; {MANIFEST_NAME} says {entry.rows}")


def _refuse_bad_floats(conn: psycopg.Connection, path: Path, layout: _Layout) -> None:
    """NaN and infinity have no place in an embedding (pgvector refuses them): refuse them on
    every server alike, naming the first such row."""
    arrays = [c for c in layout.targets if c.float_array]
    if not arrays:
        return
    found = catalog.scalar(conn, sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(
        _STAGE, sql.SQL(" OR ").join(sql.SQL("{} ~* 'nan|inf'").format(sql.Identifier(c.name))
                                     for c in arrays)))
    if found:
        names = [layout.file_names.get(c.name, c.name) for c in arrays]
        line, column = locate.first_bad_float_list(path, layout.header, names) or (None, None)
        where = (f", line {line}" if line else "") + (f", column {column}" if column else "")
        raise BadFile(f"{path}{where}: NaN or infinity in an embedding")


def _describe(exc: psycopg.Error, path: Path, layout: _Layout) -> str:
    diag = exc.diag
    context = diag.context or ""
    where = ""
    if "COPY" in context:
        where = locate.copy_error_location(path, context, layout.header, layout.file_names)
    else:  # raised while merging: find the row by its id, named in the error's detail
        found = locate.UUID.search(diag.message_detail or "")
        line = locate.line_of(path, found.group(0)) if found else None
        column = diag.column_name
        if line is None:  # a float array that does not convert
            arrays = [layout.file_names.get(c.name, c.name) for c in layout.targets
                      if c.float_array]
            line, column = locate.first_bad_float_list(path, layout.header, arrays) or (
                None, column)
        where = (f", line {line}" if line else "") + (f", column {column}" if column else "")
    message = diag.message_primary or str(exc)
    if len(message) > 200:  # e.g. a whole vector quoted back: the line and column say where
        message = message[:120] + " …"
    return f"{path}{where}: {message}"


def import_file(conn: psycopg.Connection, table: catalog.Table, path: Path,
                entry: TableEntry | None, console: Console, *, force: bool = False) -> FileOutcome:
    """Import one file; `entry` is its manifest entry (None for bare CSV files). With `force`
    a file that does not match its entry is imported anyway, with a warning."""
    outcome = FileOutcome(table.name, path)
    layout: _Layout | None = None
    checked = None if force else entry
    try:
        header = _read_header(path)
        if header is None and entry is None:
            outcome.note = "empty file (no header): nothing to import"
            return outcome
        if header is None:
            rows = entry.rows if entry else None
            raise BadFile(f"{path} is empty; {MANIFEST_NAME} says it holds "
                          f"{'some' if rows is None else rows} rows")
        expected = [name for name, _ in checked.columns] if checked else header
        if header != expected:
            raise BadFile(f"{path}, line 1: the header does not match {MANIFEST_NAME} "
                          f"(file: {','.join(header)[:200]}; manifest: "
                          f"{','.join(expected)[:200]})")
        layout = _layout(path, table, header, verified=entry is not None)
        if layout.ignored:
            outcome.warnings.append(
                f"{path}: column(s) {', '.join(layout.ignored)} are not in table {table.name} "
                "(dropped or renamed by a later migration?); their values are not imported")
        size = path.stat().st_size
        with console.progress(f"Importing {table.name}",
                              size if size >= PROGRESS_MIN_BYTES else 0) as advance:
            sha256 = _load(conn, table, path, layout, checked, outcome, advance)
        if entry is not None and force and entry.sha256 not in (None, sha256):
            outcome.warnings.append(f"{path} does not match {MANIFEST_NAME}; imported anyway "
                                    "(--force)")
    except BadFile as exc:
        outcome.error = str(exc)
    except legacy.LegacyRowError as exc:
        assert layout is not None
        line, column = exc.line, exc.column
        if line is None:
            line, column = locate.first_invalid_utf8(path, layout.header) or (None, None)
        where = (f", line {line}" if line else "") + (f", column {column}" if column else "")
        outcome.error = f"{path}{where}: {exc}"
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError) and conn.closed:
            raise
        outcome.error = _describe(exc, path, layout) if layout else f"{path}: {exc}"
        if checked is not None and checked.sha256 not in (None, sha256_file(path)):
            outcome.error = f"{_MISMATCH.format(path=path)}; reading it failed: {outcome.error}"
    if outcome.error:
        outcome.rows = outcome.imported = outcome.updated = 0
    return outcome


@dataclass
class ImportResult:
    files: list[FileOutcome]
    deleted: dict[str, int] = field(default_factory=dict)  # rows removed by tombstones
    recomputed: int = 0  # rows whose derived values were recomputed

    @property
    def changed(self) -> bool:
        return any(o.imported or o.updated for o in self.files) or bool(self.deleted)


def import_source(owner: ConnInfo, source: Source, console: Console, *,
                  force: bool) -> ImportResult:
    """Import every file of `source` (one bad file never stops the others), then apply the
    tombstones and recompute derived values once."""
    outcomes: list[FileOutcome] = []
    with catalog.connect(owner, autocommit=True) as conn:
        tables = {t.name: t for t in catalog.learning_tables(conn)}  # parents first
        try:  # a table added since the last --full records its deletes from now on
            triggers.attach(conn, list(tables.values()))
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            console.warn(f"exchange triggers not attached now ({exc.diag.message_primary}); "
                         "the next import or --full attaches them")
        for path in source.unlisted:
            if not force:
                outcomes.append(FileOutcome(path.stem, path, error=(
                    f"{path} is not listed in {MANIFEST_NAME}; refused (import it anyway with "
                    "--force)")))
            elif path.stem in tables:
                outcomes.append(import_file(conn, tables[path.stem], path, None, console,
                                            force=True))
        order = [n for n in tables if n in source.files] + sorted(source.files.keys() - tables)
        for name, path in ((n, source.files[n]) for n in order):
            entry = source.manifest.tables[name] if source.manifest else None
            if name not in tables:
                outcomes.append(FileOutcome(name, path, note=(
                    f"no learning table {name} in this database (its schema module is not "
                    "installed here); skipped")))
            elif not path.exists():
                outcomes.append(FileOutcome(name, path, error=(
                    f"{path} is listed in {MANIFEST_NAME} but missing")))
            else:
                outcomes.append(import_file(conn, tables[name], path, entry, console,
                                            force=force))
        result = ImportResult(outcomes)
        if any(o.imported or o.updated for o in outcomes):
            result.deleted, result.recomputed = tombstones.converge(conn, list(tables.values()))
    return result
