"""Roles, the learning database, extensions and grants — created idempotently as the admin.

Three roles: the admin (cluster superuser in native and docker mode; on an external server
it may be a plain role with CREATEDB and CREATEROLE), the owner of the learning database
(migrations and data writes; `DATABASE_URL`), and the read-only agent role used by MCP
servers: SELECT only, `default_transaction_read_only` on, CONNECT on the learning database
only. Passwords are sent as SCRAM verifiers computed client-side, so the clear text never
reaches the server's logs or a command line.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from installer import db
from installer.credentials import ConnInfo
from installer.errors import ServerError
from installer.steps import Check, DatabaseStep, State, Step, ok

# The databases every cluster has, closed to PUBLIC where the installer owns the server
LOCKED_ON_OUR_SERVER = ("postgres", "template1")


@dataclass(frozen=True)
class Roles:
    database: str
    owner: str
    owner_password: str
    agent: str
    agent_password: str
    lock_other_databases: bool  # native: we own the cluster, so PUBLIC loses CONNECT elsewhere




def _set_password(conn: psycopg.Connection, role: str, password: str, create: bool) -> None:
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    verb = "CREATE ROLE {} LOGIN PASSWORD {}" if create else "ALTER ROLE {} LOGIN PASSWORD {}"
    conn.execute(sql.SQL(verb).format(sql.Identifier(role), sql.Literal(verifier.decode())))


class RolesAndDatabaseStep(Step):
    title = "Roles and learning database"

    def __init__(self, admin: ConnInfo, roles: Roles):
        self.admin = admin
        self.roles = roles

    def _problems(self) -> list[str] | None:
        """What is off, or None when the server cannot be asked yet."""
        r = self.roles
        try:
            with db.connect(self.admin, autocommit=True) as conn:
                existing = {row[0] for row in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", ([r.owner, r.agent],))}
                database = conn.execute(
                    "SELECT pg_get_userbyid(datdba), has_database_privilege('public', oid, "
                    "'CONNECT') FROM pg_database WHERE datname = %s", (r.database,)).fetchone()
                open_elsewhere = conn.execute(
                    "SELECT string_agg(datname, ', ') FROM pg_database WHERE datname = ANY(%s) "
                    "AND has_database_privilege('public', oid, 'CONNECT')",
                    (list(LOCKED_ON_OUR_SERVER),)).fetchone()
                agent_settings = _role_settings(conn, r.agent)
                attributes = _extra_attributes(conn, r.agent)
        except (psycopg.OperationalError, ServerError):
            return None
        problems = [f"role {name} missing" for name in (r.owner, r.agent) if name not in existing]
        if database is None:
            problems.append(f"database {r.database} missing")
        elif database[0] != r.owner or database[1]:
            problems.append(f"database {r.database} ownership or CONNECT rights")
        if r.lock_other_databases and open_elsewhere and open_elsewhere[0]:
            problems.append(f"every role may connect to {open_elsewhere[0]}")
        if r.agent in existing and agent_settings != {"": AGENT_SETTINGS}:
            problems.append(f"role {r.agent} settings changed: {_settings_text(agent_settings)}")
        if attributes:
            problems.append(f"role {r.agent} has {', '.join(attributes)}")
        if database is not None:
            for role, password in ((r.owner, r.owner_password), (r.agent, r.agent_password)):
                if role in existing and not db.answers(
                        self.admin.to(user=role, password=password, dbname=r.database)):
                    problems.append(f"role {role} does not accept the password in .env")
        return problems

    def check(self) -> Check:
        problems = self._problems()
        if problems is None:
            return Check("blocked", "after the server answers")
        if not problems:
            return ok(f"{self.roles.database} owned by {self.roles.owner}; "
                      f"{self.roles.agent} read-only")
        state: State = "create" if any("missing" in p for p in problems) else "repair"
        return Check(state, "; ".join(problems))

    def apply(self, check: Check) -> str:
        r = self.roles
        try:
            with db.connect(self.admin, autocommit=True) as conn:
                existing = {row[0] for row in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", ([r.owner, r.agent],))}
                for role, password in ((r.owner, r.owner_password), (r.agent, r.agent_password)):
                    _set_password(conn, role, password, create=role not in existing)
                agent = sql.Identifier(r.agent)
                _drop_agent_privileges(conn, r.agent)
                _reset_role_settings(conn, r.agent)
                database = sql.Identifier(r.database)
                _become_member_of(conn, r.owner)
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (r.database,)).fetchone() is None:
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' "
                                         "TEMPLATE template0").format(database,
                                                                      sql.Identifier(r.owner)))
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    database, sql.Identifier(r.owner)))
                conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
                conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, agent))
                if r.lock_other_databases:
                    for other in LOCKED_ON_OUR_SERVER:
                        conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC")
                                     .format(sql.Identifier(other)))
            with db.connect(self.admin.to(dbname=r.database), autocommit=True) as conn:
                conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(agent))
        except psycopg.Error as exc:
            raise ServerError(f"could not create the roles or the database: {exc}".strip(),
                              hint="the admin role needs CREATEROLE and CREATEDB") from exc
        return check.detail or "created"


# The agent role's settings, role-wide; a setting for one database (ALTER ROLE … IN DATABASE)
# would override them, so there must be none.
AGENT_SETTINGS = frozenset({"default_transaction_read_only=on", "statement_timeout=30s"})
_ATTRIBUTES = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")


def _role_settings(conn: psycopg.Connection, role: str) -> dict[str, frozenset[str]]:
    """Database name ("" for role-wide) -> the role's settings there."""
    return {name or "": frozenset(config or ()) for name, config in conn.execute(
        "SELECT d.datname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = "
        "s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = %s",
        (role,))}


def _settings_text(found: dict[str, frozenset[str]]) -> str:
    return "; ".join(f"{f'in {name}: ' if name else ''}{', '.join(sorted(config)) or 'none'}"
                     for name, config in sorted(found.items())) or "none"


def _reset_role_settings(conn: psycopg.Connection, role: str) -> None:
    """Every setting of the role dropped, role-wide and per database, then ours set."""
    ident = sql.Identifier(role)
    for name in _role_settings(conn, role):
        where = sql.SQL(" IN DATABASE {}").format(sql.Identifier(name)) if name else sql.SQL("")
        conn.execute(sql.SQL("ALTER ROLE {}{} RESET ALL").format(ident, where))
    for setting in sorted(AGENT_SETTINGS):
        name, value = setting.split("=", 1)
        conn.execute(sql.SQL("ALTER ROLE {} SET {} = {}").format(
            ident, sql.Identifier(name), sql.Literal(value)))


def _extra_attributes(conn: psycopg.Connection, role: str) -> list[str]:
    row = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, "
                       "rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    return [name for name, has in zip(_ATTRIBUTES, row or (), strict=False) if has]


def _drop_agent_privileges(conn: psycopg.Connection, agent: str) -> None:
    """Only the attributes the agent actually has are removed: a non-superuser admin may not
    even mention SUPERUSER or REPLICATION in ALTER ROLE."""
    if dropped := _extra_attributes(conn, agent):
        conn.execute(sql.SQL("ALTER ROLE {} " + " ".join(f"NO{name}" for name in dropped))
                     .format(sql.Identifier(agent)))


def _become_member_of(conn: psycopg.Connection, owner: str) -> None:
    """A non-superuser admin (CREATEDB, CREATEROLE) must be able to SET ROLE to the owner to
    give it a database; from PostgreSQL 16 creating a role grants only ADMIN OPTION on it."""
    privilege = "SET" if conn.info.server_version >= 160000 else "MEMBER"
    if not db.one(conn, "SELECT pg_has_role(current_user, %s, %s)", (owner, privilege))[0]:
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(owner)))


# Managed services give their admin no superuser but a role whose members may create the
# extensions the service allows (RDS/Aurora, Cloud SQL, Azure Flexible Server, Neon).
PROVIDER_EXTENSION_ROLES = ["rds_superuser", "cloudsqlsuperuser", "azure_pg_admin",
                            "neon_superuser"]
_CREATABLE = """
SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
    OR (coalesce((SELECT trusted FROM pg_available_extension_versions v
                    JOIN pg_available_extensions e USING (name)
                   WHERE name = 'vector' AND v.version = e.default_version), false)
        AND has_database_privilege(current_database(), 'CREATE'))
    OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ANY(%s)
                AND pg_has_role(current_user, oid, 'MEMBER')),
    current_setting('azure.extensions', true)
"""


class VectorExtensionStep(Step):
    title = "pgvector extension"

    def __init__(self, admin: ConnInfo, database: str):
        self.admin = admin.to(dbname=database)

    def _state(self) -> tuple[bool, bool, bool, str | None] | None:
        """(available, installed, creatable by the admin, Azure's allow-list), or None when
        unreachable."""
        try:
            with db.connect(self.admin) as conn:
                available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = "
                                         "'vector'").fetchone() is not None
                installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = "
                                         "'vector'").fetchone() is not None
                creatable, allowed = db.one(conn, _CREATABLE, (PROVIDER_EXTENSION_ROLES,))
                return available, installed, bool(creatable), allowed
        except (psycopg.OperationalError, ServerError):
            return None

    def check(self) -> Check:
        state = self._state()
        if state is None:
            return Check("blocked", "after the learning database exists")
        available, installed, creatable, allowed = state
        if installed:
            return ok("installed")
        if not available:
            return ok("not available on this server: embeddings use the real[] fallback")
        if allowed is not None and "vector" not in allowed.replace(" ", "").split(","):
            return ok("not in the server's azure.extensions allow-list: embeddings use the "
                      "real[] fallback (add vector to azure.extensions, then re-run)")
        if not creatable:
            return ok(f"{self.admin.user} may not create it: embeddings use the real[] "
                      f"fallback (a superuser, or a member of the provider's admin role, can "
                      f"run CREATE EXTENSION vector in {self.admin.dbname})")
        return Check("create", "CREATE EXTENSION vector")

    def apply(self, check: Check) -> str:
        try:
            with db.connect(self.admin, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.FeatureNotSupported) as exc:
            return (f"not permitted ({db.reason(exc)}): embeddings use the real[] fallback; "
                    "the provider's extension allow-list must hold vector")
        return "installed"


class AgentGrantsStep(DatabaseStep):
    """After migrations: the agent role reads every table of the learning schema and executes
    the agent_api functions our migrations create, nothing more (see agent_guard.py)."""

    title = "Read-only grants for the agent role"
    autocommit = True

    def __init__(self, owner: ConnInfo, agent: str, ours: frozenset[str]):
        super().__init__(owner)
        self.agent = agent
        self.api = sorted(name for name in ours if name.startswith("agent_api."))

    def _missing(self, conn: psycopg.Connection) -> tuple[list[str], list[str]]:
        tables = [row[0] for row in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r','v','m','p') "
            "AND NOT has_table_privilege(%s, c.oid, 'SELECT') ORDER BY 1", (self.agent,))]
        functions = [row[0] for row in conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = "
            "p.pronamespace WHERE n.nspname || '.' || p.proname = ANY(%s) AND NOT "
            "(has_schema_privilege(%s, n.oid, 'USAGE') AND "
            "has_function_privilege(%s, p.oid, 'EXECUTE')) ORDER BY 1",
            (self.api, self.agent, self.agent))]
        return tables, functions

    def check_in(self, conn: psycopg.Connection) -> Check:
        try:
            tables, functions = self._missing(conn)
        except psycopg.errors.UndefinedObject:  # the role was dropped: the roles step recreates it
            return Check("blocked", f"after role {self.agent} exists again")
        missing = ([f"SELECT on {len(tables)} table(s)"] if tables else []) + (
            [f"EXECUTE on {len(functions)} agent_api function(s)"] if functions else [])
        return Check("change", ", ".join(missing)) if missing else ok()

    def apply(self, check: Check) -> str:
        agent = sql.Identifier(self.agent)
        with db.connect(self.conn, autocommit=True) as conn:
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(agent))
            conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON "
                                 "TABLES TO {}").format(agent))
            _, functions = self._missing(conn)
            if functions:
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA agent_api TO {}").format(agent))
            for function in functions:
                conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(
                    sql.SQL(function), agent))
        return f"granted {check.detail}"
