"""Lifecycle commands: backup, restore, logs, doctor.

Backups are `pg_dump --format=custom` files in `backups/` (gitignored, mode 0600), made with
the client tools that match the server: the native backend's own binaries, else the newest
tools at least as new as the server. Passwords reach pg_dump and pg_restore through the
child's PGPASSWORD, never its command line. A restore runs in one transaction and is preceded
by a safety backup, so a failed or regretted restore loses nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from installer import db, program
from installer.agent_guard import large_objects
from installer.binaries import PgBinaries, embedded_binaries, system_binaries
from installer.context import RunContext
from installer.credentials import ConnInfo
from installer.errors import (
    ConfigError,
    DataError,
    EnvironmentProblem,
    ExitCode,
    InstallerError,
    ServerError,
)
from installer.installation import Installation
from installer.mcp_config import SERVER_NAME, clients_named
from installer.other_databases import manual_fix, open_databases
from installer.prompts import confirm, interactive
from installer.provision import LOCKED_ON_OUR_SERVER
from installer.steps import checked

ARCHIVE_MAGIC = b"PGDMP"


# -- client tools -----------------------------------------------------------------------------
def _server_major(conn: ConnInfo) -> int:
    with db.connect(conn) as connection:
        return int(connection.info.server_version) // 10000


def client_binaries(installation: Installation) -> PgBinaries:
    """The native backend's binaries; otherwise the oldest tools not older than the server."""
    own = installation.backend.client_tools()
    if own is not None:
        return own
    major = _server_major(installation.owner_conn())
    usable = [b for b in (system_binaries(), embedded_binaries())
              if b is not None and b.major >= major and b.tool("pg_dump").exists()]
    if not usable:
        raise EnvironmentProblem(f"no pg_dump for PostgreSQL {major} or newer on this machine",
                          hint=f"install the PostgreSQL {major} client tools")
    return min(usable, key=lambda b: b.major)


def _run_tool(tool: Path, args: list[str], conn: ConnInfo) -> subprocess.CompletedProcess[str]:
    if not tool.is_file():
        raise EnvironmentProblem(f"{tool.name} is missing: no {tool}",
                                 hint="install the PostgreSQL client tools that match the server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSWORD=conn.password or "", PGCONNECT_TIMEOUT="10", **conn.tls.env())
    command = [str(tool), "--host", conn.host, "--port", str(conn.port), "--username", conn.user,
               *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)


def _require_server(installation: Installation) -> ConnInfo:
    owner = installation.owner_conn()
    if not db.answers(owner):
        raise ServerError(f"cannot connect to {owner.masked_url()}",
                          hint=f"start the server with {program.command('start')}, or repair the "
                          f"installation with {program.command('--full')}",
                          details=installation.backend.log_tail(10))
    return owner


# -- backup -----------------------------------------------------------------------------------
def backup(installation: Installation, label: str = "") -> Path:
    owner = _require_server(installation)
    tools = client_binaries(installation)
    directory = installation.settings.project_dir / "backups"
    directory.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{owner.dbname}-{stamp}{label}.dump"
    partial = path.with_suffix(".dump.partial")
    # Large objects are no learning data, and one owned by another role (the agent) would make
    # the owner's pg_dump fail: they are left out.
    result = _run_tool(tools.tool("pg_dump"), ["--format=custom", "--no-blobs", "--file",
                                              str(partial), "--dbname", owner.dbname], owner)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ServerError("pg_dump failed", details=result.stderr.strip(),
                          hint=f"check that the server runs ({program.command('status')})")
    partial.chmod(0o600)
    partial.rename(path)
    return path


def cmd_backup(ctx: RunContext) -> ExitCode:
    console = ctx.console
    installation = ctx.installation()
    with console.working("pg_dump"):
        path = backup(installation)
    size = path.stat().st_size
    console.step("Backup", "changed", f"{path} ({size:,} bytes)")
    console.info(f"restore it with {program.command(f'restore {path}')}")
    console.emit_json({"ok": True, "file": str(path), "bytes": size})
    return ExitCode.OK


# -- restore ----------------------------------------------------------------------------------
def _check_archive(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"no backup file at {path}", hint="list backups/ for the files made "
                          f"by {program.command('backup')}")
    with path.open("rb") as handle:
        if handle.read(len(ARCHIVE_MAGIC)) != ARCHIVE_MAGIC:
            raise DataError(f"{path} is not a pg_dump custom-format archive",
                            hint=f"restore only files made by {program.command('backup')} "
                            "(pg_dump --format=custom); nothing was changed")


# An archive's table of contents: "ID; CATALOG OID TYPE SCHEMA NAME OWNER"; large objects are
# "BLOB"/"BLOBS" (up to 16) or "LARGE OBJECT…"/"BLOB METADATA" (17), with their ACL and COMMENT.
_LARGE_OBJECT_ENTRY = re.compile(r"^\d+; \d+ \d+ (?:(?:ACL|COMMENT) - )?(?:BLOB|LARGE OBJECT)")


def _left_out(line: str) -> bool:
    """Extensions belong to the admin role; large objects are no learning data, and one that
    exists already (owned by the agent) would make the restore fail."""
    return " EXTENSION " in line or bool(_LARGE_OBJECT_ENTRY.match(line))


def restore(installation: Installation, path: Path) -> None:
    """Replace the learning database's objects with the archive's, in one transaction.

    `pg_restore --clean` cannot drop the constraints of partitioned tables, so the archive is
    turned into a script and run by psql in one transaction after `DROP OWNED BY
    CURRENT_USER` (everything the owner role has in this database). Extensions and large
    objects are left out (see _left_out)."""
    owner = _require_server(installation)
    tools = client_binaries(installation)
    listing = _run_tool(tools.tool("pg_restore"), ["--list", str(path)], owner)
    if listing.returncode != 0:
        raise DataError(f"cannot read {path}: {listing.stderr.strip()}",
                        hint="the file is damaged or newer than these client tools; nothing "
                        "was changed")
    kept = [line for line in listing.stdout.splitlines() if not _left_out(line)]
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=path.parent) as scratch:
        entries, script = Path(scratch) / "entries.list", Path(scratch) / "restore.sql"
        entries.write_text("\n".join(kept) + "\n")
        result = _run_tool(tools.tool("pg_restore"), [
            "--no-owner", "--use-list", str(entries), "--file", str(script), str(path)], owner)
        if result.returncode == 0:
            result = _run_tool(tools.tool("psql"), [
                "--no-psqlrc", "--quiet", "--single-transaction", "--set", "ON_ERROR_STOP=1",
                "--dbname", owner.dbname, "--command", "DROP OWNED BY CURRENT_USER",
                "--file", str(script)], owner)
    if result.returncode != 0:
        raise DataError("the restore failed; the database was left exactly as it was",
                        details=result.stderr.strip()[-2000:],
                        hint="the archive may need an extension this server lacks (pgvector)")


def cmd_restore(ctx: RunContext) -> ExitCode:
    args, console = ctx.args, ctx.console
    path = Path(args.file).expanduser().absolute()
    _check_archive(path)
    installation = ctx.installation()
    database = installation.settings.database
    if not getattr(args, "yes", False):
        if not interactive():
            raise ConfigError(f"restore replaces the content of {database}; it needs a "
                              "confirmation", hint="pass --yes to confirm without a terminal")
        if not confirm(f"Replace everything in the database {database} with {path.name}? "
                       "(a safety backup of the current content is taken first)"):
            console.info("Nothing was changed.")
            return ExitCode.FAILED
    with console.working("Safety backup"):
        safety = backup(installation, "-before-restore")
    console.step("Safety backup of the current content", "changed", str(safety))
    with console.working(f"Restoring {path.name}"):
        try:
            restore(installation, path)
        except InstallerError as exc:
            exc.hint = "; ".join(filter(None, (exc.hint, f"your data before the attempt is "
                                                       f"also in {safety}")))
            raise
    console.step(f"Restore {path.name} into {database}", "changed", "done")
    for step in installation.agent_steps():  # a dump may grant the agent more than ours
        if not (check := checked(step)).ok:
            console.step(step.title, "changed", step.apply(check))
    console.info(f"run {program.command('--full')} to apply migrations newer than the backup")
    console.emit_json({"ok": True, "restored": str(path), "safety_backup": str(safety)})
    return ExitCode.OK


# -- logs -------------------------------------------------------------------------------------
def cmd_logs(ctx: RunContext) -> ExitCode:
    args, console = ctx.args, ctx.console
    installation = ctx.installation(installed=False)
    text = installation.backend.log_tail(max(1, getattr(args, "lines", 50)))
    if not console.json_mode:
        console.out.print(text, markup=False, highlight=False)
    console.emit_json({"ok": True, "log": text})
    return ExitCode.OK


# -- doctor -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    check: str
    state: str  # ok | warning | failed | skipped
    detail: str = ""
    hint: str = ""


def _repair() -> str:
    return f"run {program.command('--full')}: it repairs exactly this"


def _step_findings(installation: Installation) -> list[Finding]:
    findings = []
    if not installation.recorded:
        findings.append(Finding("installation", "failed", "nothing is installed here yet (no "
                                f"{installation.settings.env_path.name})",
                                f"run {program.command('--full')}"))
    for step in installation.steps():
        try:
            check = checked(step)
        except InstallerError as exc:
            findings.append(Finding(step.title, "failed", exc.message, exc.hint or ""))
            continue
        if check.ok:
            findings.append(Finding(step.title, "ok", check.detail))
        elif check.state == "blocked":  # cannot be checked before an earlier step passes
            findings.append(Finding(step.title, "skipped", check.detail))
        else:
            findings.append(Finding(step.title, "failed", f"{check.state}: {check.detail}",
                                    _repair()))
    return findings


def _git_ignores(project_dir: Path, name: str) -> bool | None:
    if not (project_dir / ".git").exists() or not shutil.which("git"):
        return None
    result = subprocess.run(["git", "-C", str(project_dir), "check-ignore", "-q", name],
                            capture_output=True, check=False)
    return result.returncode == 0


def _machine_findings(installation: Installation) -> list[Finding]:
    project_dir = installation.settings.project_dir
    findings = []
    if installation.settings.mcp_server == "npx" and installation.settings.mcp_clients:
        findings.append(Finding("npx (runs the MCP server)",
                                "ok" if shutil.which("npx") else "warning",
                                shutil.which("npx") or "not on PATH",
                                "" if shutil.which("npx") else "install Node.js 18 or newer"))
    for name, why in ((".env", "it holds passwords"), ("backups/", "backups hold your data")):
        ignored = _git_ignores(project_dir, name)
        if ignored is False:
            findings.append(Finding(f"{name} ignored by git", "failed", "not ignored",
                                    f"add `{name}` to .gitignore: {why}"))
        elif ignored:
            findings.append(Finding(f"{name} ignored by git", "ok"))
    log = installation.backend.log_tail(200)
    # doctor's own proof that the agent is kept out of other databases leaves such lines
    kept_out = re.compile(r'permission denied for database "(?!'
                          + re.escape(installation.settings.database) + '")')
    serious = [line for line in log.splitlines() if "PANIC:" in line or (
        "FATAL:" in line and "password authentication failed" not in line
        and not kept_out.search(line))]
    if serious:
        findings.append(Finding("server log", "warning", serious[-1][:200],
                                f"read it with {program.command('logs')}"))
    return findings


def _large_object_findings(installation: Installation) -> list[Finding]:
    """The learning data uses no large object: any there was made by hand or by an agent."""
    admin = installation.backend.admin_conn().to(dbname=installation.settings.database)
    try:
        found = large_objects(admin)
    except (InstallerError, psycopg.Error):
        return []
    if not found:
        return [Finding("large objects", "ok", "none")]
    return [Finding("large objects", "warning", f"{len(found)}: {', '.join(found[:10])}"
                    + (" …" if len(found) > 10 else ""),
                    "the learning data uses none and backups leave them out; remove one with "
                    "`SELECT lo_unlink(OID)` as the admin")]


_OTHER_DATABASES = "SELECT datname FROM pg_database WHERE datallowconn AND datname <> " \
    "current_database() ORDER BY 1"


def _separation_finding(installation: Installation) -> Finding:
    """Document 004's separation, tried for real: the agent role logs in to the learning
    database, and to no other database on the server."""
    agent, database = installation.settings.agent_role, installation.settings.database
    title = f"{agent} can connect to {database} only"
    own = installation.agent_conn()
    try:
        with db.connect(own, connect_timeout=3) as conn:
            others = [row[0] for row in conn.execute(_OTHER_DATABASES)]
    except ServerError as exc:
        cause = db.cause_of(exc.__cause__ or exc)
        if cause.kind in ("refused", "timeout"):
            return Finding(title, "skipped", "the server does not answer")
        return Finding(f"{agent} logs in to {database}", "failed",
                       f"{cause.summary}: {db.reason(exc.__cause__ or exc)}",
                       db.tls_hint(own, exc.__cause__ or exc) or cause.todo)
    reached = [name for name in others if db.answers(own.to(dbname=name), timeout=3)]
    if not reached:
        return Finding(title, "ok", f"{agent} tried {len(others)} other database(s): refused "
                       "by each" if others else "no other database on the server")
    detail = f"it connected to {', '.join(reached)}"
    if installation.backend.may_lock_other_databases:  # our own server
        yours = [name for name in reached if name not in LOCKED_ON_OUR_SERVER]
        return Finding(title, "failed", detail, "; ".join(
            ([_repair()] if len(yours) < len(reached) else []) + [
                f"{name} is not the installer's: as the admin run REVOKE CONNECT ON DATABASE "
                f"{name} FROM PUBLIC after GRANT CONNECT to the roles that use it"
                for name in yours]))
    return _shared_server_finding(installation, title, detail, reached)


def _shared_server_finding(installation: Installation, title: str, detail: str,
                           reached: list[str]) -> Finding:
    """On a shared server: failed for what the install step would close, a warning naming
    their owners' statements for what the admin may not change."""
    s = installation.settings
    try:
        with db.connect(installation.backend.admin_conn(), connect_timeout=3) as conn:
            found = {d.name: d for d in open_databases(conn, s.agent_role, s.database)}
    except (ServerError, psycopg.Error):
        found = {}
    if not s.protect_other_databases:
        return Finding(title, "warning", detail + " (protect_other_databases is off)",
                       f"{program.command('--full')} with LEARNING_PROTECT_OTHER_DATABASES=true "
                       "closes those the admin owns")
    closable = [name for name in reached if name in found and found[name].changeable]
    if closable:
        return Finding(title, "failed", detail, _repair())
    fixes = [manual_fix(found[name]) for name in reached if name in found]
    return Finding(title, "warning", detail + ": not the admin's to change",
                   "; ".join(fixes) or "their owners can REVOKE CONNECT ON DATABASE … FROM "
                   "PUBLIC after granting it to the roles that use them")


def _mcp_findings(installation: Installation) -> list[Finding]:
    """Each configured client's entry, started as the client would, answers one read."""
    # imported here: the `mcp` SDK costs ~0.4 s to import, and only `doctor` needs it
    from installer.mcp_probe import probe_clients

    s = installation.settings
    p = installation.passwords
    reports = probe_clients(clients_named(s.mcp_clients), s.project_dir,
                            f"{s.agent_role}@{s.database}", secrets=(p.admin, p.owner, p.agent))
    findings = []
    for report in reports:
        title = f"{report.client.label}: the {SERVER_NAME} MCP server answers a read"
        detail = report.outcome.detail + (f" (the same entry as {report.same_as}: started "
                                          "once)" if report.same_as else "")
        findings.append(Finding(title, "ok" if report.outcome.ok else "failed", detail,
                                report.outcome.todo))
    return findings


def cmd_doctor(ctx: RunContext) -> ExitCode:
    console = ctx.console
    try:
        installation = ctx.installation(installed=False)
        findings = [*_step_findings(installation), _separation_finding(installation),
                    *_mcp_findings(installation), *_machine_findings(installation),
                    *_large_object_findings(installation)]
    except InstallerError as exc:
        findings = [Finding("configuration", "failed", exc.message, exc.hint or "")]
    for f in findings:
        console.step(f.check, f.state, f.detail)
        if f.hint and f.state != "ok":
            console.info(f"    fix: {f.hint}")
    healthy = all(f.state != "failed" for f in findings)
    console.info("Everything looks right." if healthy else "Problems found: each says how to "
                 "fix it.")
    console.emit_json({"ok": healthy, "checks": [f.__dict__ for f in findings]})
    return ExitCode.OK if healthy else ExitCode.FAILED
