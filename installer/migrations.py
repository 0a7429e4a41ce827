"""The migration engine: ordered SQL files, a ledger, checksums, a lock, rollback.

Files live in `sql/<module>/NNN_name.sql`. A file may end with a down part after a line
`-- migrate:down`: the text before it (the up part) is what runs and what is hashed, so adding
or editing a down part never changes the checksum; the ledger keeps the down part of every file
it records, and `rollback()` runs those in reverse order.

Each file runs in its own transaction together with the ledger row that records it, so a file
is either applied and recorded or neither; a top-level BEGIN/COMMIT/ROLLBACK in such a file is
refused before anything runs. A file whose up part contains the line
`-- installer:no-transaction` runs statement by statement (for CREATE INDEX CONCURRENTLY and
the like): each statement, or each BEGIN … COMMIT block, commits together with a progress row,
so a re-run after a failure or a kill resumes after the last one that committed.

The ledger (`installer.schema_migrations`) stores module, version, name, the SHA-256 of the up
part's normalised text (strict UTF-8, no BOM, LF line endings — the same text that is
executed), the checksum's algorithm, when, by whom, how long, the down part, and the objects
the file created (tables, views, functions of the `public` schema), which `schema_drift` checks.
An advisory lock serialises concurrent runs; the ledger is read again under the lock. It is
held by a transaction left open on a connection of its own, not by the session: through a
transaction pooler (PgBouncer `pool_mode = transaction`) a session lock stays on whichever
server connection took it, while a transaction keeps its server connection until it ends.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import shlex
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import psycopg
import sqlparse

from installer import db, program
from installer.credentials import ConnInfo
from installer.errors import MigrationError
from installer.modules import Module, select_modules

CHECKSUM_ALGORITHM = "sha256-utf8-lf"
NO_TRANSACTION_MARKER = "-- installer:no-transaction"
DOWN_MARKER = "-- migrate:down"
LOCK_KEY = 0x6C6561726E  # "learn": one key for every installer run against this database
_FILE_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_BLOCK_START = {"BEGIN", "START"}
_BLOCK_END = {"COMMIT", "END"}
_BLOCK_DISCARD = {"ROLLBACK", "ABORT"}
_TRANSACTION_CONTROL = _BLOCK_START | _BLOCK_END | _BLOCK_DISCARD
_SQL_DIR = Path(__file__).with_name("sql")

# The ledger and what the engine keeps beside it; every statement is safe to repeat, so an
# older installation's ledger is upgraded in place by the next run.
LEDGER_DDL = (_SQL_DIR / "ledger.sql").read_text(encoding="utf-8")

# The learning schema's objects a migration can create, as "kind name" strings.
_OBJECTS = """
SELECT coalesce(array_agg(o), '{}') FROM (
    SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
                ELSE 'table ' END || quote_ident(c.relname) AS o
      FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
       AND NOT c.relispartition
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text
      FROM pg_proc p
     WHERE p.pronamespace = 'public'::regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')) s
"""


class Statement(NamedTuple):
    offset: int  # where it starts in the file's text
    text: str
    word: str  # its first word, upper-cased


@dataclass(frozen=True)
class Migration:
    module: str
    version: int
    name: str
    path: Path
    sql: str  # the up part's normalised text: what is hashed is what runs
    down: str | None  # the down part; None when the file has no `-- migrate:down` line
    checksum: str
    transactional: bool

    @property
    def id(self) -> str:
        return f"{self.module}/{self.version:03d}_{self.name}"

    @property
    def shown_path(self) -> str:
        """The file as `sql/<module>/<file>`, relative to the checkout."""
        return str(self.path.relative_to(self.path.parent.parent.parent))


@dataclass(frozen=True)
class Recorded:
    """One ledger row."""

    module: str
    version: int
    name: str
    checksum: str
    down: str | None
    objects: tuple[str, ...] | None  # None: recorded before objects were tracked

    @property
    def id(self) -> str:
        return f"{self.module}/{self.version:03d}_{self.name}"


@dataclass
class Plan:
    """What the ledger says against what the files say."""

    applied: list[str] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)
    changed: list[Migration] = field(default_factory=list)
    out_of_order: list[Migration] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.pending or self.changed or self.out_of_order)


def normalise(raw: bytes, path: Path) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MigrationError(f"{path}: line {line} is not valid UTF-8",
                             hint="save the file as UTF-8") from exc
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def split_down(text: str) -> tuple[str, str | None]:
    """(up part, down part or None): the down part follows a line `-- migrate:down`."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.rstrip() == DOWN_MARKER:
            down = "".join(lines[index + 1:])
            return "".join(lines[:index]), down if statements(down) else ""
    return text, None


def load_module_migrations(module: Module) -> list[Migration]:
    migrations = []
    seen: dict[int, Path] = {}
    for path in sorted(module.path.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: name does not follow NNN_name.sql",
                                 hint="rename it, e.g. 004_add_index.sql (lower case, digits, _)")
        version = int(match.group(1))
        if version in seen:
            raise MigrationError(f"{path} and {seen[version]} share version {version}",
                                 hint="renumber the newer file above the highest version")
        seen[version] = path
        up, down = split_down(normalise(path.read_bytes(), path))
        migrations.append(Migration(
            module=module.name, version=version, name=match.group(2), path=path, sql=up,
            down=down, checksum=hashlib.sha256(up.encode("utf-8")).hexdigest(),
            transactional=not any(line.strip() == NO_TRANSACTION_MARKER
                                  for line in up.splitlines())))
    return sorted(migrations, key=lambda m: m.version)


def ledger(conn: psycopg.Connection) -> list[Recorded]:
    """The ledger's rows in the order they were applied (any ledger version; none: [])."""
    exists = conn.execute("SELECT to_regclass('installer.schema_migrations')").fetchone()
    if not exists or exists[0] is None:
        return []
    rows = conn.execute("SELECT to_jsonb(m) FROM installer.schema_migrations m "
                        "ORDER BY applied_at, module, version").fetchall()
    return [Recorded(module=r["module"], version=r["version"], name=r["name"],
                     checksum=r["checksum"], down=r.get("down_sql"),
                     objects=None if r.get("objects") is None else tuple(r["objects"]))
            for (r,) in rows]


def plan(conn: psycopg.Connection, modules: list[Module]) -> Plan:
    recorded = {(r.module, r.version): r for r in ledger(conn)}
    result = Plan()
    for module in modules:
        migrations = load_module_migrations(module)
        applied_versions = [v for (m, v) in recorded if m == module.name]
        highest = max(applied_versions, default=0)
        for migration in migrations:
            row = recorded.get((module.name, migration.version))
            if row is None:
                target = result.out_of_order if migration.version < highest else result.pending
                target.append(migration)
            elif row.checksum != migration.checksum:
                result.changed.append(migration)
            else:
                result.applied.append(migration.id)
        on_disk = {m.version for m in migrations}
        result.missing_files += [recorded[(module.name, v)].id
                                 for v in sorted(applied_versions) if v not in on_disk]
    return result


def refuse_unsafe(current: Plan, *, allow_out_of_order: bool) -> None:
    if current.changed:
        first = current.changed[0]
        checkout = first.path.parent.parent.parent
        restore = f"git -C {shlex.quote(str(checkout))} checkout -- {first.shown_path}"
        raise MigrationError(
            f"{first.shown_path} was edited after it was applied (checksum differs from the "
            "ledger); it is never re-applied",
            hint=f"restore it with `{restore}` and put the change in a new migration; if the "
            "edit is only cosmetic, accept it with "
            f"{program.command(f'migrate --accept-checksum {first.id}')}")
    if current.out_of_order and not allow_out_of_order:
        first = current.out_of_order[0]
        raise MigrationError(
            f"{first.shown_path} is numbered below a migration already applied in module "
            f"{first.module!r} (out of order)",
            hint="renumber it above the highest applied version, or apply it anyway with "
            f"{program.command('migrate --allow-out-of-order')}")


def refuse_transaction_control(migrations: Iterable[Migration]) -> None:
    """A BEGIN/COMMIT/ROLLBACK at the top level of a file that runs in one transaction."""
    for migration in migrations:
        if not migration.transactional:
            continue
        for statement in statements(migration.sql):
            if statement.word in _TRANSACTION_CONTROL:
                raise MigrationError(
                    f"{migration.shown_path}, line {_line(migration.sql, statement.offset)}: "
                    f"{statement.word} inside a migration; the installer runs each file in one "
                    "transaction. Nothing was applied.",
                    hint=f"remove it; or, if the file must commit part-way, add the line "
                    f"`{NO_TRANSACTION_MARKER}` at its top: each statement (or BEGIN … COMMIT "
                    "block) then commits on its own, and a re-run resumes after the last one "
                    "that committed")


def objects(conn: psycopg.Connection) -> set[str]:
    """The learning schema's tables, views and functions right now, as "kind name"."""
    row = conn.execute(_OBJECTS).fetchone()
    return set(row[0]) if row else set()


class Migrator:
    """Applies and reverts migrations as the database's owner, on an autocommit connection
    (opened with `db.connect(info, autocommit=True)`): each file gets its own transaction."""

    def __init__(self, conn: psycopg.Connection, modules: list[Module]):
        if not conn.autocommit:
            raise ValueError("the migrator needs an autocommit connection")
        self.conn = conn
        self.modules = modules

    def plan(self) -> Plan:
        return plan(self.conn, self.modules)

    def locked(self) -> _Lock:
        return _Lock(self.conn, self.modules)

    def migrate(self, *, allow_out_of_order: bool = False) -> list[Migration]:
        with self.locked():
            current = plan(self.conn, self.modules)  # re-read under the lock
            refuse_unsafe(current, allow_out_of_order=allow_out_of_order)
            order = [x.name for x in self.modules]
            todo = sorted(current.pending + current.out_of_order,
                          key=lambda m: (order.index(m.module), m.version))
            refuse_transaction_control(todo)
            self._take_down_parts()
            for migration in todo:
                self._apply_one(migration)
            return todo

    def accept_checksum(self, migration_id: str) -> None:
        for migration in self.plan().changed:
            if migration.id == migration_id:
                self.conn.execute(
                    "UPDATE installer.schema_migrations SET checksum = %s, checksum_algorithm = "
                    "%s WHERE module = %s AND version = %s",
                    (migration.checksum, CHECKSUM_ALGORITHM, migration.module, migration.version))
                return
        raise MigrationError(f"no edited, applied migration named {migration_id!r}",
                             hint=f"{program.command('migrate --status')} lists the migrations")

    # -- rollback -----------------------------------------------------------------------------
    def rollback_plan(self, target: str) -> list[Recorded]:
        """What `rollback(target)` reverts, last applied first; refuses before any change when
        one of them has no down part."""
        with self.locked():
            return self._rollback_plan(target)

    def _rollback_plan(self, target: str) -> list[Recorded]:
        try:
            rows = self.conn.execute(
                "SELECT module, version, name, down_sql FROM installer.rollback_plan(%s)",
                (target,)).fetchall()
        except psycopg.errors.RaiseException as exc:
            raise MigrationError(f"cannot roll back to {target!r}: {exc.diag.message_primary}",
                                 hint=exc.diag.message_hint) from exc
        steps = [Recorded(m, v, n, "", down, None) for m, v, n, down in rows]
        lacking = [step.id for step in steps if step.down is None]
        if lacking:
            raise MigrationError(
                f"cannot roll back to {target}: {', '.join(lacking)} "
                f"{'has' if len(lacking) == 1 else 'have'} no down part (no `{DOWN_MARKER}` "
                "section when applied). Nothing was changed.",
                hint=f"add a `{DOWN_MARKER}` section to the file and run "
                f"{program.command('migrate')} (the ledger takes it; the checksum stays), or "
                f"restore a backup with {program.command('restore FILE')}")
        return steps

    def rollback(self, target: str,
                 before: Callable[[list[Recorded]], None] = lambda steps: None) -> list[Recorded]:
        """Revert what was applied after `target` (MODULE/NNN, or YYYY.MM.NNN as listed by
        `installer.schema_versions`), and what depends on it, last first: each file's down part
        in one transaction with the removal of its ledger row. `before(steps)` runs once the
        plan holds, before any change (the caller takes its backup there)."""
        with self.locked():
            steps = self._rollback_plan(target)
            if steps:
                before(steps)
            for done, step in enumerate(steps):
                try:
                    with self.conn.transaction():
                        if step.down:
                            self.conn.execute(step.down)
                        self.conn.execute("DELETE FROM installer.schema_migrations "
                                          "WHERE module = %s AND version = %s",
                                          (step.module, step.version))
                except psycopg.Error as exc:
                    reverted = ", ".join(s.id for s in steps[:done]) or "none"
                    raise MigrationError(
                        f"the down part of {step.id} failed: {exc.diag.message_primary or exc}",
                        details=exc.diag.message_detail or exc.diag.message_hint,
                        hint=f"{step.id} and the migrations before it stay applied; reverted: "
                        f"{reverted}. Fix its `{DOWN_MARKER}` section (then "
                        f"{program.command('migrate')} records it) and run the rollback again"
                        ) from exc
            return steps

    # -- applying ------------------------------------------------------------------------------
    def _take_down_parts(self) -> None:
        """Applied files whose down part was added or changed since: the ledger takes it."""
        recorded = {(r.module, r.version): r for r in ledger(self.conn)}
        for module in self.modules:
            for migration in load_module_migrations(module):
                row = recorded.get((migration.module, migration.version))
                if row and row.checksum == migration.checksum and row.down != migration.down:
                    self.conn.execute("UPDATE installer.schema_migrations SET down_sql = %s "
                                      "WHERE module = %s AND version = %s",
                                      (migration.down, migration.module, migration.version))

    def _apply_one(self, migration: Migration) -> None:
        started = time.monotonic()
        conn = self.conn
        if migration.transactional:
            with conn.transaction():
                before = objects(conn)
                for statement in statements(migration.sql):
                    _execute(conn, migration, statement)
                _record(conn, migration, started, before)
            return
        progress = _Progress.read(conn, migration)
        for unit in _units(migration, progress.done):
            progress.run(unit)
        with conn.transaction():
            _record(conn, migration, started, progress.objects_before)
            progress.delete()


def migrate_all(info: ConnInfo, sql_dir: Path, modules: list[str] | None = None
                ) -> list[Migration]:
    """Apply the pending migrations of `modules` (all when None) as `info`'s role."""
    with db.connect(info, autocommit=True) as conn:
        return Migrator(conn, select_modules(sql_dir, modules)).migrate()


class _Lock:
    """The advisory lock, with the ledger created or upgraded and the module graph recorded."""

    def __init__(self, conn: psycopg.Connection, modules: list[Module]):
        self.conn = conn
        self.modules = modules
        self.holder: psycopg.Connection | None = None

    def __enter__(self) -> None:
        self.holder = db.connect(db.login(self.conn))
        try:
            # the server must not end the idle transaction (and the lock) while the run works
            self.holder.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            # no parameters: an extended-protocol portal would keep a snapshot (an xmin) open,
            # and CREATE INDEX CONCURRENTLY in a migration would wait for this transaction
            self.holder.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY:d})")
            self.conn.execute(LEDGER_DDL)
            for module in self.modules:
                self.conn.execute(
                    "INSERT INTO installer.modules (name, requires) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET requires = excluded.requires",
                    (module.name, list(module.requires)))
            _backfill_objects(self.conn, self.modules)
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        holder, self.holder = self.holder, None
        if holder is None:
            return
        try:
            with contextlib.suppress(psycopg.OperationalError):  # lost: the server ended it
                holder.rollback()  # ends the transaction, and with it the lock
        finally:
            holder.close()


class _Unit(NamedTuple):
    end: int  # statements done once this unit has committed
    body: list[Statement]  # without the BEGIN/COMMIT around it


def _units(migration: Migration, done: int) -> Iterator[_Unit]:
    """A no-transaction file's commit units after the first `done` statements: one statement,
    or a BEGIN … COMMIT block (a block closed by ROLLBACK runs nothing, as in psql)."""
    block: list[Statement] | None = None
    pieces = statements(migration.sql)
    for index, statement in enumerate(pieces, 1):
        if statement.word in _BLOCK_START:
            block = []
        elif statement.word in _BLOCK_END | _BLOCK_DISCARD:
            if index > done:
                yield _Unit(index, block if block and statement.word in _BLOCK_END else [])
            block = None
        elif block is not None:
            block.append(statement)
        elif index > done:
            yield _Unit(index, [statement])
    if block and len(pieces) > done:  # BEGIN without COMMIT: the rest of the file is one unit
        yield _Unit(len(pieces), block)


@dataclass
class _Progress:
    """How far a no-transaction file got; kept in `installer.migration_progress`."""

    conn: psycopg.Connection
    migration: Migration
    done: int
    objects_before: set[str]

    @classmethod
    def read(cls, conn: psycopg.Connection, migration: Migration) -> _Progress:
        row = conn.execute("SELECT statements_done, done_checksum, objects_before FROM "
                           "installer.migration_progress WHERE module = %s AND version = %s",
                           (migration.module, migration.version)).fetchone()
        if row is None:
            return cls(conn, migration, 0, objects(conn))
        done, checksum, before = row
        if _prefix_checksum(migration, done) != checksum:
            raise MigrationError(
                f"{migration.shown_path}: its first {done} statements ran in an earlier "
                "attempt and have been edited since",
                hint="restore those statements as they were (the fix belongs to the statement "
                "that failed or to the ones after it), then run the install again")
        return cls(conn, migration, done, set(before))

    def run(self, unit: _Unit) -> None:
        conn, migration = self.conn, self.migration
        statement = unit.body[0] if unit.body else None
        try:
            with conn.transaction():
                for statement in unit.body:
                    conn.execute(statement.text)
                self._save(unit.end)
            return
        except psycopg.errors.ActiveSqlTransaction as exc:
            if len(unit.body) != 1:  # e.g. CREATE INDEX CONCURRENTLY inside BEGIN … COMMIT
                raise _failure(migration, statement, exc, resumes=True) from exc
        except psycopg.Error as exc:
            raise _failure(migration, statement, exc, resumes=True) from exc
        assert statement is not None
        _execute(conn, migration, statement, resumes=True)  # cannot run in a transaction
        self._save(unit.end)  # a kill between the two repeats this one statement

    def _save(self, done: int) -> None:
        self.conn.execute(
            "INSERT INTO installer.migration_progress AS p (module, version, statements_done, "
            "done_checksum, objects_before) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (module, version) DO UPDATE SET statements_done = excluded."
            "statements_done, done_checksum = excluded.done_checksum, updated_at = now()",
            (self.migration.module, self.migration.version, done,
             _prefix_checksum(self.migration, done), sorted(self.objects_before)))
        self.done = done

    def delete(self) -> None:
        self.conn.execute("DELETE FROM installer.migration_progress WHERE module = %s AND "
                          "version = %s", (self.migration.module, self.migration.version))


def _prefix_checksum(migration: Migration, done: int) -> str:
    texts = [s.text for s in statements(migration.sql)[:done]]
    return hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()


def _record(conn: psycopg.Connection, migration: Migration, started: float,
            before: set[str]) -> None:
    after = objects(conn)
    removed = sorted(before - after)
    if removed:  # what this file dropped or renamed is no longer expected of the earlier ones
        conn.execute("UPDATE installer.schema_migrations SET objects = ARRAY(SELECT unnest("
                     "objects) EXCEPT SELECT unnest(%(removed)s::text[])) "
                     "WHERE objects && %(removed)s::text[]", {"removed": removed})
    conn.execute(
        "INSERT INTO installer.schema_migrations (module, version, name, checksum, "
        "checksum_algorithm, duration_ms, down_sql, objects) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (migration.module, migration.version, migration.name, migration.checksum,
         CHECKSUM_ALGORITHM, int((time.monotonic() - started) * 1000), migration.down,
         sorted(after - before)))


_CREATES = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?(TABLE|VIEW|MATERIALIZED\s+VIEW|FUNCTION)"
    r"\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:public\.)?\"?(\w+)", re.IGNORECASE)


def _backfill_objects(conn: psycopg.Connection, modules: list[Module]) -> None:
    """Rows recorded before objects were tracked: the objects their file creates that exist."""
    pending = [r for r in ledger(conn) if r.objects is None]
    if not pending:
        return
    files = {(m.module, m.version): m for module in modules
             for m in load_module_migrations(module)}
    present = objects(conn)
    for row in pending:
        migration = files.get((row.module, row.version))
        names = {(kind.upper().split()[-1], name.lower())
                 for kind, name in _CREATES.findall(migration.sql if migration else "")}
        found = sorted(o for o in present if _kind_and_name(o) in names)
        conn.execute("UPDATE installer.schema_migrations SET objects = %s "
                     "WHERE module = %s AND version = %s", (found, row.module, row.version))


def _kind_and_name(obj: str) -> tuple[str, str]:
    """("TABLE", "learning_queue") for "table learning_queue"; views of any kind are VIEW."""
    kind, _, name = obj.rpartition(" ")
    if kind == "function":
        kind, name = "function", name.split("(", 1)[0]
    return kind.upper().split()[-1], name.strip('"').lower()


@functools.cache
def statements(sql: str) -> tuple[Statement, ...]:
    """Each statement with its offset and first word; comment-only pieces are dropped.
    (sqlparse's lexer, not its formatter: the formatter costs seconds on a whole schema.)
    Cached by text: one install checks and applies each file, and re-reads the files (down
    parts included) several times, while sqlparse's lexer takes milliseconds per file."""
    pieces, position = [], 0
    for text in sqlparse.split(sql):
        offset = sql.find(text, position)
        position = offset + len(text)
        word = _first_word(text)
        if word is not None:
            pieces.append(Statement(offset, text, word))
    return tuple(pieces)


def _first_word(statement: str) -> str | None:
    for ttype, value in sqlparse.lexer.tokenize(statement):
        if ttype in sqlparse.tokens.Whitespace or ttype in sqlparse.tokens.Comment or value == ";":
            continue
        return str(value).upper()
    return None


def _line(sql: str, offset: int) -> int:
    return sql.count("\n", 0, offset) + 1


def _execute(conn: psycopg.Connection, migration: Migration, statement: Statement,
             resumes: bool = False) -> None:
    try:
        conn.execute(statement.text)
    except psycopg.Error as exc:
        raise _failure(migration, statement, exc, resumes) from exc


def _failure(migration: Migration, statement: Statement | None, exc: psycopg.Error,
             resumes: bool) -> MigrationError:
    sql, diag = migration.sql, exc.diag
    at = 0
    if statement is not None:
        at = statement.offset + len(statement.text) - len(statement.text.lstrip())
        if diag.statement_position:
            at = statement.offset + int(diag.statement_position) - 1
    column = at - (sql.rfind("\n", 0, at) + 1) + 1
    hint = ("nothing from this file was applied; the files before it stay applied. Fix the "
            f"file and run {program.command('--full')} again.")
    if resumes:
        hint = ("this file runs without a transaction: the statements before this one are "
                "applied and recorded, and the next run resumes at this one. Fix it and run "
                f"{program.command('--full')} again.")
    return MigrationError(
        f"{migration.shown_path}, line {_line(sql, at)}, column {column}: "
        f"{diag.message_primary or exc}",
        hint=hint, details=diag.message_detail or diag.message_hint)
