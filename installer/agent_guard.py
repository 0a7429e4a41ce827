"""The agent role holds no privilege beyond ours, whatever granted it (a restore, a hand-made
GRANT, the agent itself through a direct connection).

Ours: CONNECT on the learning database, USAGE on `public` and `agent_api`, SELECT on the
tables, EXECUTE on the functions our migrations create (only those of `agent_api` may be
SECURITY DEFINER) and on extensions' functions. Anything else is reported by the check and
revoked by the repair: role memberships, objects the agent owns (given to the owner role),
writes on any table, CREATE on a schema or the database, EXECUTE on any other function,
default privileges beyond SELECT. Where the admin is a superuser, PUBLIC also loses EXECUTE on
the functions that create large objects in the learning database (the owner role keeps it):
a large object owned by the agent makes the owner's `pg_dump` fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from installer import db
from installer.credentials import ConnInfo
from installer.errors import ServerError
from installer.steps import Check, DatabaseStep, ok

LARGE_OBJECT_CREATORS = ("lo_creat(integer)", "lo_create(oid)", "lo_from_bytea(oid,bytea)",
                         "lo_import(text)", "lo_import(text,oid)")
_FUNCTION = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+([\w.]+)\s*\(", re.IGNORECASE)
_OBJECT_TYPES = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}
_SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"


def functions_we_create(sql_dir: Path) -> frozenset[str]:
    """schema.name of every function the migrations and the migration engine's own SQL
    (installer/sql/) create; unqualified names are in public."""
    names = set()
    for path in [*sql_dir.glob("*/*.sql"), *(Path(__file__).parent / "sql").glob("*.sql")]:
        for name in _FUNCTION.findall(path.read_text(encoding="utf-8")):
            names.add(name.lower() if "." in name else f"public.{name.lower()}")
    return frozenset(names)


@dataclass
class Excess:
    """One privilege beyond ours and the statements that remove it."""

    what: str
    fix: list[sql.Composed] = field(default_factory=list)
    as_admin: bool = False  # else as the owner role


@dataclass(frozen=True)
class AgentGuard:
    admin: ConnInfo  # connected to the learning database
    owner: ConnInfo
    agent: str
    ours: frozenset[str]

    def excess(self, conn: psycopg.Connection) -> list[Excess]:
        """What the agent holds beyond ours; `conn` is the admin's, in the learning database."""
        oid = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (self.agent,)).fetchone()
        if oid is None:
            return []
        superuser = _one(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        found = [*self._memberships(conn, oid[0]), *self._ownership(conn, oid[0]),
                 *self._tables(conn), *self._schemas(conn), *self._functions(conn),
                 *self._default_privileges(conn, oid[0])]
        if superuser:  # acts as each object's owner, whoever it is
            found += self._large_object_creators(conn)
            for item in found:
                item.as_admin = True
        return found

    def repair(self, found: list[Excess]) -> None:
        for as_admin in (True, False):
            statements = [s for e in found if e.as_admin == as_admin for s in e.fix]
            if statements:
                with db.connect(self.admin if as_admin else self.owner, autocommit=True) as conn:
                    for statement in statements:
                        conn.execute(statement)

    # -- what is beyond ours ------------------------------------------------------------------
    def _memberships(self, conn: psycopg.Connection, oid: int) -> Iterator[Excess]:
        newer = conn.info.server_version >= 160000  # a grant is per grantor since 16
        for role, grantor in conn.execute(
                "SELECT r.rolname, g.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = "
                "m.roleid JOIN pg_roles g ON g.oid = m.grantor WHERE m.member = %s", (oid,)):
            by = sql.SQL(" GRANTED BY {}").format(sql.Identifier(grantor)) if newer else sql.SQL("")
            yield Excess(f"member of {role}", [sql.SQL("REVOKE {} FROM {}{}").format(
                sql.Identifier(role), sql.Identifier(self.agent), by)], as_admin=True)

    def _ownership(self, conn: psycopg.Connection, oid: int) -> Iterator[Excess]:
        owned = [row[0] for row in conn.execute(
            "SELECT pg_describe_object(classid, objid, objsubid) FROM pg_shdepend WHERE "
            "refobjid = %s AND deptype = 'o' AND dbid IN (0, (SELECT oid FROM pg_database "
            "WHERE datname = current_database())) ORDER BY 1", (oid,))]
        if owned:
            yield Excess(f"owns {', '.join(owned[:5])}{' …' if len(owned) > 5 else ''}",
                         [sql.SQL("REASSIGN OWNED BY {} TO {}").format(
                             sql.Identifier(self.agent), sql.Identifier(self.owner.user))],
                         as_admin=True)

    def _tables(self, conn: psycopg.Connection) -> Iterator[Excess]:
        for name, kind in conn.execute(
                "SELECT c.oid::regclass::text, c.relkind FROM pg_class c JOIN pg_namespace n ON "
                f"n.oid = c.relnamespace WHERE n.nspname NOT IN {_SYSTEM_SCHEMAS} AND CASE "
                "WHEN c.relkind = 'S' THEN has_sequence_privilege(%(a)s, c.oid, 'USAGE, UPDATE')"
                " WHEN c.relkind IN ('r', 'p', 'v', 'm', 'f') THEN has_table_privilege(%(a)s, "
                "c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') OR "
                "has_any_column_privilege(%(a)s, c.oid, 'INSERT, UPDATE, REFERENCES') ELSE "
                "false END ORDER BY 1", {"a": self.agent}):
            privileges = "USAGE, UPDATE ON SEQUENCE" if kind == "S" else \
                "INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE"
            yield Excess(f"may write {name}", [sql.SQL("REVOKE {} {} FROM {}, PUBLIC").format(
                sql.SQL(privileges), sql.SQL(name), sql.Identifier(self.agent))])

    def _schemas(self, conn: psycopg.Connection) -> Iterator[Excess]:
        for (name,) in conn.execute(
                f"SELECT nspname FROM pg_namespace WHERE nspname NOT IN {_SYSTEM_SCHEMAS} "
                "AND has_schema_privilege(%s, oid, 'CREATE') ORDER BY 1", (self.agent,)):
            yield Excess(f"may create objects in schema {name}", [
                sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}, PUBLIC").format(
                    sql.Identifier(name), sql.Identifier(self.agent))])
        if _one(conn, "SELECT has_database_privilege(%s, current_database(), 'CREATE, TEMPORARY')",
                (self.agent,)):
            yield Excess("may create schemas or temporary tables in the database", [
                sql.SQL("REVOKE CREATE, TEMPORARY ON DATABASE {} FROM {}, PUBLIC").format(
                    sql.Identifier(self.owner.dbname), sql.Identifier(self.agent))])

    def _functions(self, conn: psycopg.Connection) -> Iterator[Excess]:
        for signature, name, definer in conn.execute(
                "SELECT p.oid::regprocedure::text, n.nspname || '.' || p.proname, p.prosecdef "
                "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                f"WHERE n.nspname NOT IN {_SYSTEM_SCHEMAS} "
                "AND has_function_privilege(%s, p.oid, 'EXECUTE') AND NOT EXISTS (SELECT 1 "
                "FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid "
                "AND d.deptype = 'e') ORDER BY 1", (self.agent,)):
            if name.lower() in self.ours and (not definer or name.startswith("agent_api.")):
                continue
            what = "a SECURITY DEFINER function" if definer else "a function"
            yield Excess(f"may execute {signature}, {what} the installer did not create", [
                sql.SQL("REVOKE EXECUTE ON ROUTINE {} FROM {}, PUBLIC").format(
                    sql.SQL(signature), sql.Identifier(self.agent))])

    def _default_privileges(self, conn: psycopg.Connection, oid: int) -> Iterator[Excess]:
        for role, schema, kind, privilege in conn.execute(
                "SELECT pg_get_userbyid(d.defaclrole), n.nspname, d.defaclobjtype, "
                "a.privilege_type FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = "
                "d.defaclnamespace, aclexplode(d.defaclacl) a WHERE a.grantee = %s AND NOT "
                "(d.defaclobjtype = 'r' AND a.privilege_type = 'SELECT') ORDER BY 1, 2, 3, 4",
                (oid,)):
            where = sql.SQL(" IN SCHEMA {}").format(sql.Identifier(schema)) if schema \
                else sql.SQL("")
            yield Excess(f"gets {privilege} on future {_OBJECT_TYPES[kind].lower()} of {role}", [
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} REVOKE {} ON {} FROM {}").format(
                    sql.Identifier(role), where, sql.SQL(privilege), sql.SQL(_OBJECT_TYPES[kind]),
                    sql.Identifier(self.agent))], as_admin=True)

    def _large_object_creators(self, conn: psycopg.Connection) -> Iterator[Excess]:
        for function in LARGE_OBJECT_CREATORS:
            if _one(conn, "SELECT has_function_privilege(%s, %s, 'EXECUTE')",
                    (self.agent, f"pg_catalog.{function}")):
                target = sql.SQL("FUNCTION pg_catalog.{}").format(sql.SQL(function))
                yield Excess(f"may create large objects ({function})", [
                    sql.SQL("REVOKE EXECUTE ON {} FROM {}, PUBLIC").format(
                        target, sql.Identifier(self.agent)),
                    sql.SQL("GRANT EXECUTE ON {} TO {}").format(
                        target, sql.Identifier(self.owner.user))], as_admin=True)


def _one(conn: psycopg.Connection, query: str, params: tuple[str, ...] = ()) -> bool:
    row = conn.execute(query, params).fetchone()
    return bool(row and row[0])


def large_objects(admin: ConnInfo) -> list[str]:
    """Each large object in the learning database: its oid and owner."""
    with db.connect(admin) as conn:
        return [f"{oid} (owner {owner})" for oid, owner in conn.execute(
            "SELECT oid, pg_get_userbyid(lomowner) FROM pg_largeobject_metadata ORDER BY oid")]


class AgentGuardStep(DatabaseStep):
    title = "Agent role holds no privilege beyond reading and agent_api"
    autocommit = True

    def __init__(self, admin: ConnInfo, owner: ConnInfo, agent: str, ours: frozenset[str]):
        self.guard = AgentGuard(admin.to(dbname=owner.dbname), owner, agent, ours)
        super().__init__(self.guard.admin)
        self.found: list[Excess] = []

    def check_in(self, conn: psycopg.Connection) -> Check:
        self.found = self.guard.excess(conn)
        if not self.found:
            return ok()
        return Check("repair", "; ".join(e.what for e in self.found))

    def apply(self, check: Check) -> str:
        try:
            self.guard.repair(self.found)
        except psycopg.Error as exc:
            raise ServerError(f"could not take back what the agent role holds beyond its grants: "
                              f"{db.reason(exc)}", details=check.detail,
                              hint="an admin role with more rights (a superuser) can; or revoke "
                              "these by hand") from exc
        return f"revoked: {check.detail}"
