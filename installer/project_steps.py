"""Install steps that write files or the schema: .env, migrations, ~/.pgpass, MCP config."""

from __future__ import annotations

from pathlib import Path

import psycopg

from installer import db, schema_drift
from installer.credentials import ConnInfo, mask
from installer.envfile import merge_env_text, read_env, write_env
from installer.fileutil import text_diff, write_if_changed
from installer.mcp_config import BUILTIN, McpClient, ServerChoice, read_text, server_entry
from installer.migrations import Migrator, load_module_migrations, refuse_unsafe, statements
from installer.modules import select_modules
from installer.pgpass import merge_pgpass, pgpass_line, pgpass_path, read_pgpass, write_pgpass
from installer.steps import Check, DatabaseStep, Step, ok

_SECRET_KEYS = ("PASSWORD", "DATABASE_URL")


def _shown(key: str, value: str) -> str:
    return mask(value) if any(word in key for word in _SECRET_KEYS) else value


def _masked_env_line(line: str) -> str:
    key, sep, value = line.partition("=")
    return f"{key}{sep}{_shown(key, value)}" if sep else line


class EnvFileStep(Step):
    def __init__(self, path: Path, values: dict[str, str]):
        self.path = path
        self.values = values
        self.title = f"{path.name} with connection settings (mode 0600)"

    def check(self) -> Check:
        current = read_env(self.path)
        changed = [key for key, value in self.values.items() if current.get(key) != value]
        if not self.path.exists():
            return Check("create", f"write {self.path}")
        if changed:
            return Check("change", ", ".join(f"{k}={_shown(k, self.values[k])}" for k in changed))
        if self.path.stat().st_mode & 0o777 != 0o600:
            return Check("repair", "permissions to 0600")
        return ok()

    def apply(self, check: Check) -> str:
        write_env(self.path, self.values)
        return f"{'wrote' if check.state == 'create' else 'updated'} {self.path}"

    def diff(self) -> str:
        old = read_text(self.path)
        new = merge_env_text(old, self.values)
        return text_diff(self.path, old, new, mask_line=_masked_env_line)


class MigrationsStep(DatabaseStep):
    """Pending migrations applied; objects of applied ones that someone dropped re-created."""

    title = "Schema migrations"
    autocommit = True  # the engine runs each file in its own transaction

    def __init__(self, owner: ConnInfo, sql_dir: Path, modules: list[str] | None = None):
        super().__init__(owner)
        self.modules = select_modules(sql_dir, modules)
        self.pending: list[str] = []  # what the last check found to apply, for the plan

    def check(self) -> Check:
        found = super().check()
        if found.state == "blocked":  # everything is pending
            self.pending = [m.id for module in self.modules
                            for m in load_module_migrations(module)]
            return Check("blocked", f"{found.detail}; then apply {', '.join(self.pending)}")
        return found

    def prepare(self) -> None:
        """Every file split into statements (sqlparse's lexer: the costly part of applying)."""
        for module in self.modules:
            for migration in load_module_migrations(module):
                statements(migration.sql)

    def check_in(self, conn: psycopg.Connection) -> Check:
        current = Migrator(conn, self.modules).plan()
        missing = schema_drift.find(conn)
        refuse_unsafe(current, allow_out_of_order=False)
        self.pending = [m.id for m in current.pending]
        todo = []
        if missing:
            todo.append("re-create " + "; ".join(m.describe() for m in missing))
        if current.pending:
            todo.append("apply " + ", ".join(self.pending))
        if todo:
            return Check("repair" if missing else "change", "; ".join(todo))
        return ok(f"{len(current.applied)} applied, none pending")

    def apply(self, check: Check) -> str:
        with db.connect(self.conn, autocommit=True) as conn:
            migrator = Migrator(conn, self.modules)
            restored = schema_drift.repair(migrator)
            applied = migrator.migrate()
        done = [f"re-created {', '.join(restored)}"] if restored else []
        if applied:
            done.append("applied " + ", ".join(m.id for m in applied))
        return "; ".join(done) or "none pending"


class PgpassStep(Step):
    def __init__(self, agent: ConnInfo):
        self.agent = agent
        self.path = pgpass_path()
        self.title = f"Agent password in {self.path} (mode 0600)"

    def _line(self) -> str:
        a = self.agent
        return pgpass_line(a.host, a.port, a.dbname, a.user, a.password or "")

    def check(self) -> Check:
        existing = read_pgpass(self.path)
        if not self.path.exists():
            return Check("create", f"write {self.path}")
        if self._line() not in existing.splitlines():
            a = self.agent
            return Check("change", f"entry for {a.user}@{a.host}:{a.port}")
        if self.path.stat().st_mode & 0o777 != 0o600:
            return Check("repair", "permissions to 0600")
        return ok()

    def apply(self, check: Check) -> str:
        existing = read_pgpass(self.path)
        a = self.agent
        write_pgpass(self.path, merge_pgpass(existing, a.host, a.port, a.dbname, a.user,
                                             a.password or ""))
        return f"entry for {self.agent.user} written"


class McpConfigStep(Step):
    """Our server entry in one MCP client's configuration file, merged without clobbering."""

    def __init__(self, client: McpClient, project_dir: Path, agent: ConnInfo,
                 choice: ServerChoice = BUILTIN):
        self.client = client
        self.path = client.path(project_dir)
        self.url = agent.url(with_password=False)
        self.entry = server_entry(agent, project_dir, choice)
        self.title = f"MCP server for {client.label} in {self.path} (agent role, no password)"

    def _texts(self) -> tuple[str, str]:
        current = read_text(self.path)
        return current, self.client.merged(current, self.entry, self.path)

    def check(self) -> Check:
        current, merged = self._texts()
        if current == merged:
            return ok()
        return Check("create" if not self.path.exists() else "change",
                     f"learning-db server for {self.url}")

    def apply(self, check: Check) -> str:
        _, merged = self._texts()
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
        write_if_changed(self.path, merged.encode("utf-8"), mode=mode)
        return f"{'wrote' if check.state == 'create' else 'merged into'} {self.path}"

    def diff(self) -> str:
        return text_diff(self.path, *self._texts())
