"""Install steps: import the project's exports, and install the git pre-push hook."""

from __future__ import annotations

from pathlib import Path

import psycopg

from installer.console import Console
from installer.credentials import ConnInfo
from installer.errors import DataError
from installer.exchange import hook
from installer.exchange.import_ import Source, find_source
from installer.exchange.sync import already_imported, run_import
from installer.steps import Check, DatabaseStep, Step, ok


class ImportExportsStep(DatabaseStep):
    """After the schema and grants: load exports/ unless this database already holds it."""

    title = "Learning data from exports/"
    autocommit = True

    def __init__(self, owner: ConnInfo, exports_dir: Path, console: Console):
        super().__init__(owner)
        self.exports_dir = exports_dir
        self.console = console
        self.source: Source | None = None  # what the last check found

    def check(self) -> Check:
        try:
            self.source = find_source(self.exports_dir)
        except DataError as exc:  # an unreadable manifest: apply reports it
            return Check("change", exc.message)
        if self.source is None:
            return ok("no exports to import")
        return super().check()

    def check_in(self, conn: psycopg.Connection) -> Check:
        assert self.source is not None
        if already_imported(conn, self.source):
            return ok("already imported")
        return Check("change", f"import {len(self.source.files)} file(s) from {self.exports_dir}")

    def apply(self, check: Check) -> str:
        try:
            source = find_source(self.exports_dir)
        except DataError as exc:
            self.deferred_error = exc
            self.console.step("Importing exports", "failed", exc.message)
            return "manifest refused; nothing imported"
        assert source is not None
        outcomes, problem = run_import(self.conn, source, self.console)
        self.deferred_error = problem
        imported = sum(o.imported + o.updated for o in outcomes)
        failed = sum(1 for o in outcomes if o.error)
        return f"{imported} rows imported" + (f"; {failed} file(s) skipped" if failed else "")


class PrePushHookStep(Step):
    title = "git pre-push hook and merge driver (learning data travels with git)"

    def __init__(self, project_dir: Path):
        self.project_dir = project_dir

    def check(self) -> Check:
        path = hook.hook_path(self.project_dir)
        if path is None:
            return ok("not a git work tree: no hook")
        if not path.exists():
            return Check("create", f"write {path}, register the exports merge driver")
        if not hook.is_ours(path):
            return Check("create", f"install, keeping your hook as {hook.CHAINED}")
        if path.read_text() != hook.hook_script(self.project_dir):
            return Check("change", f"update {path}")
        if hook.merge_driver_missing(self.project_dir):
            return Check("change", "register the exports merge driver")
        return ok(f"{path}; exports merge by row")

    def apply(self, check: Check) -> str:
        return (f"{hook.install_hook(self.project_dir)}; "
                f"{hook.install_merge_driver(self.project_dir)}")
