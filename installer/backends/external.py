"""External mode: a PostgreSQL server someone else runs (a managed service, a team server).

The installer never starts, stops or reconfigures such a server. The admin connection comes
from the environment (`LEARNING_ADMIN_URL`, password inside it, in `LEARNING_ADMIN_PASSWORD`,
or in ~/.pgpass) or from a profile — never from the command line — and is never written to
`.env`. It needs CREATEDB and CREATEROLE, not superuser. Without it, everything that only
needs to be checked (status, a re-run of a healthy installation) runs as the owner role from
`.env`; only creating or repairing roles and the database needs the admin. Every connection
uses TLS (`tls_for`): verify-full when a root certificate is given, require otherwise, unless
turned off (with a warning).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Self

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from installer import db
from installer.backends.base import Backend, register
from installer.credentials import ADMIN_PASSWORD, UNVERIFIED_SSLMODES, ConnInfo, Passwords, Tls
from installer.errors import ConfigError, ServerError
from installer.health import wait_until_healthy
from installer.provision import Roles
from installer.steps import Check, Step, ok

if TYPE_CHECKING:
    from installer.config import Settings

ADMIN_URL = "LEARNING_ADMIN_URL"
REACH_TIMEOUT = 10.0  # an external server either answers or not; no start-up to wait for


def tls_for(settings: Settings, notes: list[str]) -> Tls:
    """The TLS of every connection to the server (config.py folds the admin URL's sslmode and
    sslrootcert into the settings): verify-full when a root certificate is given, else require;
    a mode that allows clear text is kept, with a warning."""
    tls = settings.tls()
    if tls.sslmode is None:
        return replace(tls, sslmode="verify-full" if tls.sslrootcert else "require")
    if tls.sslmode in UNVERIFIED_SSLMODES:
        notes.append(f"sslmode {tls.sslmode} (from {settings.sources['sslmode']}): connections "
                     "to the external server may travel unencrypted and its identity is not "
                     "checked; use sslmode verify-full with the server's CA certificate "
                     "(sslrootcert)")
    return tls


def describe_tls(tls: Tls) -> str:
    """One line for the install and `status`: how the server is reached and checked."""
    what = {"verify-full": "the server's certificate and host name are checked",
            "verify-ca": "the server's certificate is checked, not its host name",
            "require": "encrypted; the server's certificate is not checked",
            }.get(tls.sslmode or "", "may travel unencrypted; the server is not checked")
    if tls.sslrootcert and tls.sslmode in ("verify-full", "verify-ca"):
        what += f" against {tls.sslrootcert}"
    if tls.sslcert:
        what += f"; client certificate {tls.sslcert}"
    return f"sslmode {tls.sslmode}: {what}"


def admin_from(settings: Settings, environ: Mapping[str, str] = os.environ, *,
               tls: Tls | None = None) -> ConnInfo | None:
    """The admin connection the `admin_url` setting names (LEARNING_ADMIN_URL or a profile's
    admin_url), its password from the URL or the variable `admin_password_env` names; or None.
    `tls` replaces the URL's own TLS parameters (they are in it already, see tls_for)."""
    url = settings.admin_url
    if not url:
        return None
    origin = ADMIN_URL if settings.sources.get("admin_url") == "environment" else (
        "the profile's admin_url")
    password_variable = settings.admin_password_env or ADMIN_PASSWORD
    try:
        parts = conninfo_to_dict(str(url))
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"{origin} is not a valid connection URL",
                          hint="use postgresql://USER@HOST:PORT/DATABASE") from exc
    if not parts.get("host") or not parts.get("user"):
        raise ConfigError(f"{origin} must name the host and the user",
                          hint="use postgresql://USER@HOST:PORT/DATABASE")
    return ConnInfo(str(parts["host"]), int(parts.get("port") or 5432),
                    str(parts.get("dbname") or "postgres"), str(parts["user"]),
                    str(parts.get("password") or environ.get(password_variable) or "") or None,
                    tls or Tls())


@register
class ExternalBackend(Backend):
    mode = "external"
    summary = "a server that already exists (managed or team server)"
    default_port = None  # the server's own
    owns_admin_password = False
    may_lock_other_databases = False  # a shared server: other databases are not ours
    offers_tls = True

    def __init__(self, *, admin: ConnInfo | None, owner: ConnInfo, roles: Roles,
                 recorded_admin_user: str | None, unknown_passwords: list[str]):
        self.admin = admin
        self.owner = owner  # stands in for the admin when none is given
        self.roles = roles
        self.recorded_admin_user = recorded_admin_user
        self.unknown_passwords = unknown_passwords  # roles whose password .env did not hold

    @classmethod
    def build(cls, settings: Settings, recorded: Mapping[str, str], passwords: Passwords,
              notes: list[str]) -> Self:
        tls = tls_for(settings, notes)
        admin = admin_from(settings, tls=tls)
        if admin is not None:
            host, port = admin.host, admin.port
        elif recorded.get("PGHOST") and recorded.get("PGPORT"):
            host, port = settings.host, settings.port or int(recorded["PGPORT"])
        else:
            raise ConfigError(
                "external mode needs the server's admin connection",
                hint=f"set {ADMIN_URL}=postgresql://USER@HOST:PORT/postgres in the environment "
                f"(password in the URL, in {ADMIN_PASSWORD} or in ~/.pgpass; never on the "
                "command line); the user needs CREATEDB and CREATEROLE")
        owner = ConnInfo(host, port, settings.database, settings.owner_role, passwords.owner, tls)
        roles = Roles(database=settings.database, owner=settings.owner_role,
                      owner_password=passwords.owner, agent=settings.agent_role,
                      agent_password=passwords.agent,
                      lock_other_databases=cls.may_lock_other_databases)
        new_roles = {"owner": settings.owner_role, "agent": settings.agent_role}
        return cls(admin=admin, owner=owner, roles=roles,
                   recorded_admin_user=recorded.get("LEARNING_ADMIN_USER"),
                   unknown_passwords=[new_roles[name] for name in passwords.generated
                                      if name in new_roles])

    def refuse_foreign_roles(self, conn: psycopg.Connection) -> None:
        """A role that exists already but whose password .env lacks belongs to someone else
        (another project on a shared server): its password is never reset."""
        taken = [row[0] for row in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1",
            (self.unknown_passwords,))]
        if taken:
            raise ConfigError(
                f"role(s) {', '.join(taken)} exist on {self.server.host}:{self.server.port} but "
                ".env holds no password for them; the installer does not reset passwords of "
                "roles it did not create",
                hint="put their passwords in .env (PGPASSWORD for the owner, "
                "LEARNING_AGENT_PASSWORD for the agent), or choose other names with "
                "LEARNING_OWNER_ROLE / LEARNING_AGENT_ROLE")

    def refuse_foreign_database(self, conn: psycopg.Connection) -> None:
        """A database with the learning database's name that our owner role cannot own (the
        role does not exist) is someone else's, e.g. the admin's own database on a managed
        server: the installer would give it away and close it to PUBLIC, so it stops."""
        r = self.roles
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s AND NOT EXISTS "
            "(SELECT 1 FROM pg_roles WHERE rolname = %s)", (r.database, r.owner)).fetchone()
        if row:
            raise ConfigError(
                f"database {r.database} exists on {self.server.host}:{self.server.port} and "
                f"belongs to {row[0]}; the installer gives the learning database to its own "
                f"owner role ({r.owner}) and closes it to PUBLIC, so it does not take over a "
                "database it did not create",
                hint="choose another name with LEARNING_DATABASE (the installer creates it); "
                "to use this one, let its owner create the owner role and run ALTER DATABASE "
                f"{r.database} OWNER TO {r.owner}, then put that role's password in .env "
                "(PGPASSWORD)")

    @property
    def server(self) -> ConnInfo:
        return self.admin or self.owner

    def admin_conn(self, dbname: str = "postgres") -> ConnInfo:
        if self.admin is None:
            return self.owner  # the owner may only be able to reach its own database
        # "postgres" means the maintenance database, which the admin URL names
        return self.admin if dbname == "postgres" else self.admin.to(dbname=dbname)

    def recorded(self) -> dict[str, str]:
        user = self.admin.user if self.admin else self.recorded_admin_user
        return {"LEARNING_ADMIN_USER": user} if user else {}

    def is_running(self) -> bool:
        return db.answers(self.server)

    def describe(self) -> dict[str, Any]:
        s = self.server
        return {"mode": self.mode, "binaries": "external server",
                "server": f"{s.host}:{s.port}", "port": s.port,
                "admin": f"{self.admin.user} (from the environment)" if self.admin else
                f"not given (checks run as {self.owner.user}; set {ADMIN_URL} to repair)",
                "data_dir": f"database {self.roles.database} on {s.host}:{s.port}",
                "tls": describe_tls(s.tls), "running": self.is_running()}

    def log_tail(self, lines: int = 30) -> str:
        return "(the server's log is kept by whoever runs it)"

    def start(self) -> str:
        return f"not managed by the installer: {self.server.host}:{self.server.port} " + (
            "answers" if self.is_running() else "does not answer; ask whoever runs it")

    def stop(self) -> str:
        return "not managed by the installer: left running"

    def remove(self, purge: bool) -> str:
        """Drops the learning database and roles only with purge; the server itself stays."""
        if not purge:
            return (f"nothing dropped on {self.server.host}:{self.server.port} (the database "
                    f"{self.roles.database} and its roles stay; --purge --yes drops them)")
        if self.admin is None:
            raise ConfigError("dropping the learning database needs the admin connection",
                              hint=f"set {ADMIN_URL} in the environment and run it again")
        r = self.roles
        try:
            with db.connect(self.admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(r.database)))
                for role in (r.agent, r.owner):
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        except psycopg.Error as exc:
            raise ServerError(f"could not drop the learning database or its roles: {exc}",
                              hint="the admin needs to own them (or be a member of their "
                              "owner) and have CREATEROLE") from exc
        return f"dropped database {r.database} and roles {r.owner}, {r.agent}"

    def server_steps(self) -> list[Step]:
        return [ServerReachableStep(self)]


class ServerReachableStep(Step):
    def __init__(self, backend: ExternalBackend):
        self.backend = backend
        s = backend.server
        self.title = f"External server {s.host}:{s.port} reachable as {s.user}"

    def check(self) -> Check:
        try:
            connection = db.connect(self.backend.server, connect_timeout=3)
        except ServerError as exc:
            if db.tls_hint(self.backend.server, exc.__cause__ or exc):
                raise  # a certificate or TLS mismatch: waiting or repairing would not help
            return Check("repair", f"does not answer: {db.reason(exc.__cause__ or exc)}")
        with connection as conn:
            version = conn.info.parameter_status("server_version") or "?"
            superuser = conn.info.parameter_status("is_superuser") == "on"
            self.backend.refuse_foreign_roles(conn)
            self.backend.refuse_foreign_database(conn)
        return ok(f"PostgreSQL {version}" + (", superuser" if superuser else ""))

    def apply(self, check: Check) -> str:
        waited = wait_until_healthy(self.backend.server, REACH_TIMEOUT,
                                    log_tail=self.backend.log_tail, what="the external server")
        return f"answers (after {waited:.1f} s)"
