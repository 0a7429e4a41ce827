"""The import and export flows shared by the commands, the install step and the git hook."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg

from installer import db, program
from installer.console import Console
from installer.credentials import ConnInfo
from installer.errors import DataError
from installer.exchange import state
from installer.exchange.export import ExportResult, export_all
from installer.exchange.import_ import FileOutcome, Source, find_source, import_source
from installer.exchange.manifest import MANIFEST_NAME
from installer.exchange.tombstones import KEEP_DAYS_SETTING
from installer.schema_maintenance import refresh


def pending_import(owner: ConnInfo, exports_dir: Path) -> Source | None:
    """The project's exports when this database has not imported them yet."""
    source = find_source(exports_dir)
    if source is None or source.manifest is None:
        return source
    with db.connect(owner, autocommit=True) as conn:
        return None if already_imported(conn, source) else source


def already_imported(conn: psycopg.Connection, source: Source) -> bool:
    """Whether this database has imported `source` (one without a manifest never is)."""
    return source.manifest is not None and state.recorded(conn) == source.fingerprint


def _report(outcomes: list[FileOutcome], console: Console) -> DataError | None:
    for o in outcomes:
        for warning in o.warnings:
            console.warn(warning)
        title = f"Importing {o.table}"
        if o.error:
            console.step(title, "failed", o.error)
        elif o.note:
            console.step(title, "skipped", o.note)
        elif o.rows == 0:
            console.detail(f"{title}: empty file")  # 30 empty tables need not fill the screen
        else:
            detail = f"{o.rows} rows: {o.imported} imported"
            if o.updated:
                detail += f", {o.updated} updated (newer updated_at)"
            detail += f", {o.present} already present"
            console.step(title, "changed" if o.imported or o.updated else "ok", detail)
    failed = [o for o in outcomes if o.error]
    if not failed:
        return None
    return DataError(
        f"{len(failed)} file(s) were not imported (nothing from them was loaded; the other "
        "files were): " + "; ".join(o.path.name for o in failed),
        details="\n".join(o.error or "" for o in failed),
        hint="fix or restore those files (`git checkout -- <file>`) and run "
        f"{program.command('import')} again; a file that only fails its checksum because git "
        "merged two machines' exports cleanly can be imported with `import --force`")


def run_import(owner: ConnInfo, source: Source, console: Console, *,
               force: bool = False, record: bool = True) -> tuple[list[FileOutcome],
                                                                  DataError | None]:
    """Import `source`, then refresh what derives from the rows; remember the manifest when
    every file went in."""
    result = import_source(owner, source, console, force=force)
    outcomes = result.files
    problem = _report(outcomes, console)
    for table, rows in sorted(result.deleted.items()):
        console.step(f"Deletes from other machines in {table}", "changed",
                     f"{rows} row(s) deleted (tombstones newer than the rows)")
    if result.recomputed:
        console.detail(f"derived values recomputed in {result.recomputed} row(s)")
    if result.changed:
        refresh(owner, console)  # materialised views and partitions follow the new rows
    if problem is None and record and source.fingerprint:
        with db.connect(owner, autocommit=True) as conn:
            state.record(conn, source.fingerprint)
    return outcomes, problem


def run_export(owner: ConnInfo, exports_dir: Path, console: Console) -> ExportResult:
    """Export, after importing exports that arrived by git and are not in the database yet."""
    source = pending_import(owner, exports_dir)
    if source is not None and source.manifest is not None:
        console.info(f"{exports_dir} holds data this database has not imported yet; "
                     "importing it first so the export keeps it")
        _, problem = run_import(owner, source, console)
        if problem:
            problem.message = "export stopped: " + problem.message
            raise problem
    result = export_all(owner, exports_dir)
    if result.purged:
        console.step("Old tombstones purged", "changed",
                     f"{result.purged} delete(s) older than {KEEP_DAYS_SETTING} days, exported "
                     "before")
    with db.connect(owner, autocommit=True) as conn:
        state.record(conn, hashlib.sha256((exports_dir / MANIFEST_NAME).read_bytes()).hexdigest(),
                     result.change_seq)
    for name, entry in sorted(result.manifest.tables.items()):
        changed = entry.file in result.changed_files
        console.step(f"Export {name}", "changed" if changed else "ok",
                     f"{entry.rows} rows" + ("" if changed else ", unchanged"))
    return result
