"""External mode: the agent role reaches no other database on the shared server.

PostgreSQL gives PUBLIC the CONNECT privilege on every new database, and a role cannot be
denied a privilege PUBLIC has. So, for each other database where the agent's CONNECT comes
only from PUBLIC and the admin may change the database's privileges (it owns it or is a member
of its owner: a grant option is not enough to take back the owner's grant to PUBLIC), the step
first grants CONNECT to every role that can log in and would otherwise lose it (so existing
users keep working), then revokes CONNECT from PUBLIC. Our own two roles get nothing;
superusers need nothing.

What it changed is recorded in `.learning/other-databases.json` *before* it is changed, so
`uninstall` (or a run with the setting off) gives back exactly that: CONNECT to PUBLIC, and
the grants it made taken back. Databases the admin may not change are named with the
statements their owner can run. Native and docker mode own their cluster and lock `postgres`
and `template1` instead (`provision.Roles.lock_other_databases`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from installer import db
from installer.credentials import ConnInfo
from installer.errors import ServerError
from installer.fileutil import write_atomic
from installer.steps import Check, DatabaseStep, ok

RECORD = Path(".learning") / "other-databases.json"

# Whether role `{role}` has CONNECT on database `d` other than through PUBLIC: an ACL entry
# (the owner's included, implicit while datacl is NULL) of a role it inherits from.
_OWN_CONNECT = """EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
 WHERE a.grantee <> 0 AND a.privilege_type = 'CONNECT' AND pg_has_role({role}, a.grantee,
 'USAGE'))"""

# Other databases the agent reaches only through PUBLIC, and whether we may change them.
_OPEN = f"""
SELECT d.datname, pg_get_userbyid(d.datdba), pg_has_role(current_user, d.datdba, 'USAGE')
  FROM pg_database d
 WHERE d.datallowconn AND d.datname <> %(ours)s
   AND has_database_privilege(%(agent)s, d.oid, 'CONNECT')
   AND NOT {_OWN_CONNECT.format(role="%(agent)s")}
 ORDER BY 1
"""

# Login roles that would lose CONNECT with PUBLIC's (superusers need none; ours get none).
_ONLY_THROUGH_PUBLIC = f"""
SELECT r.rolname FROM pg_roles r, pg_database d
 WHERE d.datname = %(database)s AND r.rolcanlogin AND NOT r.rolsuper
   AND r.rolname <> ALL(%(ours)s) AND NOT {_OWN_CONNECT.format(role="r.oid")}
 ORDER BY 1
"""


@dataclass(frozen=True)
class OpenDatabase:
    """Another database the agent may connect to through PUBLIC."""

    name: str
    owner: str
    changeable: bool  # the connecting role may take PUBLIC's CONNECT back


def open_databases(conn: psycopg.Connection, agent: str, ours: str) -> list[OpenDatabase]:
    return [OpenDatabase(name, owner, bool(changeable)) for name, owner, changeable in
            conn.execute(_OPEN, {"agent": agent, "ours": ours})]


def manual_fix(database: OpenDatabase) -> str:
    """What the database's owner can run instead, and why the installer did not."""
    name = sql.Identifier(database.name).as_string()
    return (f"{database.name} belongs to {database.owner}; as {database.owner} run: GRANT "
            f"CONNECT ON DATABASE {name} TO <each role that uses it>; REVOKE CONNECT ON "
            f"DATABASE {name} FROM PUBLIC")


@dataclass
class Record:
    """What the step changed on one server, kept so it can be given back exactly."""

    path: Path
    server: str = ""
    databases: dict[str, list[str]] = field(default_factory=dict)  # -> roles granted CONNECT

    @classmethod
    def load(cls, project_dir: Path) -> Record:
        path = project_dir / RECORD
        if not path.exists():
            return cls(path)
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return cls(path, str(data.get("server", "")),
                   {str(k): [str(r) for r in v] for k, v in data.get("databases", {}).items()})

    def save(self) -> None:
        if not self.databases:
            self.path.unlink(missing_ok=True)
            return
        write_atomic(self.path, (json.dumps({"server": self.server, "databases": self.databases},
                                            indent=2, sort_keys=True) + "\n").encode())


def _server(conn: ConnInfo) -> str:
    return f"{conn.host}:{conn.port}"


class OtherDatabasesStep(DatabaseStep):
    """See the module's docstring. `enabled` False: give back what an earlier run changed."""

    title = "Agent role kept out of the server's other databases"
    waits_for = "after the server answers and the agent role exists"
    autocommit = True

    def __init__(self, admin: ConnInfo, agent: str, owner: str, database: str,
                 project_dir: Path, enabled: bool):
        super().__init__(admin)
        self.admin, self.agent, self.owner, self.database = admin, agent, owner, database
        self.project_dir, self.enabled = project_dir, enabled

    def check(self) -> Check:
        if not self.enabled and not Record.load(self.project_dir).databases:
            return ok("off (protect_other_databases): the agent may connect wherever PUBLIC may")
        return super().check()

    def check_in(self, conn: psycopg.Connection) -> Check:
        if not self.enabled:
            return Check("change", "protect_other_databases is off: give PUBLIC back CONNECT on "
                         f"{', '.join(sorted(Record.load(self.project_dir).databases))}")
        try:
            found = open_databases(conn, self.agent, self.database)
        except psycopg.errors.UndefinedObject:  # the roles step creates the agent
            return Check("blocked", f"after role {self.agent} exists")
        ours = [d.name for d in found if d.changeable]
        if ours:
            return Check("change", f"revoke PUBLIC's CONNECT on {', '.join(ours)} (login roles "
                         f"that relied on it get it explicitly){self._left(found)}")
        return ok(f"no other database open to {self.agent} through PUBLIC{self._left(found)}")

    def _left(self, found: list[OpenDatabase]) -> str:
        theirs = [f"{d.name} (owner {d.owner})" for d in found if not d.changeable]
        return f"; not {self.admin.user}'s to change: {', '.join(theirs)}" if theirs else ""

    def apply(self, check: Check) -> str:
        if not self.enabled:
            return give_back(self.admin, self.project_dir)
        record = Record.load(self.project_dir)
        record.server = record.server or _server(self.admin)
        done = []
        with db.connect(self.admin, autocommit=True) as conn:
            found = open_databases(conn, self.agent, self.database)
            for database in found:
                if not database.changeable:
                    continue
                roles = [row[0] for row in conn.execute(_ONLY_THROUGH_PUBLIC, {
                    "database": database.name, "ours": [self.agent, self.owner]})]
                record.databases[database.name] = sorted(
                    set(record.databases.get(database.name, [])) | set(roles))
                record.save()  # before the change: a crash leaves nothing unrecorded
                name = sql.Identifier(database.name)
                with conn.transaction():
                    if roles:
                        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                            name, sql.SQL(", ").join(map(sql.Identifier, roles))))
                    conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(name))
                done.append(f"{database.name}: PUBLIC's CONNECT revoked"
                            + (f", granted to {', '.join(roles)}" if roles else ""))
        return "; ".join(done) + self._left(found) + (
            f" (recorded in {RECORD}; uninstall gives it back)")


def give_back(admin: ConnInfo, project_dir: Path) -> str:
    """Undo what the step recorded: PUBLIC's CONNECT back, our grants taken back. Raises
    ServerError naming what is left (the record keeps it) when the admin cannot."""
    record = Record.load(project_dir)
    if not record.databases:
        return "nothing to give back"
    given = []
    try:
        with db.connect(admin, autocommit=True) as conn:
            for database, roles in sorted(record.databases.items()):
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                      (database,)).fetchone()
                if exists:
                    name = sql.Identifier(database)
                    living = [row[0] for row in conn.execute(
                        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (roles,))]
                    with conn.transaction():
                        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC")
                                     .format(name))
                        if living:
                            conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
                                name, sql.SQL(", ").join(map(sql.Identifier, living))))
                given.append(database)
                del record.databases[database]
                record.save()
    except (ServerError, psycopg.Error) as exc:
        left = ", ".join(sorted(record.databases))
        raise ServerError(
            f"could not give PUBLIC back CONNECT on {left}: {db.reason(exc)}",
            hint=f"run it again with the admin connection (LEARNING_ADMIN_URL) of "
            f"{record.server}; what is left stays in {RECORD}") from exc
    return f"PUBLIC's CONNECT given back on {', '.join(given)}; our grants taken back"
