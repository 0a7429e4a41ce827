"""One function per command. Each returns an exit code; errors are raised as InstallerError."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from rich.table import Table

from installer import db, program, schema_drift
from installer.backends.docker import DockerBackend, docker_spec
from installer.backends.native import PortTaken
from installer.capture.claude_settings import remove_hooks
from installer.compose import compose_env, write_compose
from installer.config import find_env_file, resolve_settings
from installer.console import Console
from installer.context import RunContext
from installer.envfile import read_env, remove_env_keys, write_env
from installer.errors import ConfigError, ExitCode, InstallerError, ServerError
from installer.exchange import hook
from installer.exchange.import_ import find_source
from installer.exchange.sync import run_export, run_import
from installer.installation import Installation
from installer.lifecycle import backup
from installer.mcp_config import CLIENTS, remove_entry
from installer.migrations import Migrator, Recorded
from installer.modules import select_modules
from installer.other_databases import Record, give_back
from installer.pgadmin.registration import EMAIL
from installer.pgadmin.runner import Pgadmin, report
from installer.pgpass import pgpass_path, read_pgpass, remove_from_pgpass, write_pgpass
from installer.project_steps import MigrationsStep
from installer.prompts import confirm, interactive
from installer.schema_maintenance import refresh
from installer.size_history import SizeReading, record_size
from installer.steps import StepResult, checked, run_steps


def _report_detection(installation: Installation, console: Console) -> None:
    d = installation.detection
    b = installation.backend.describe()
    console.heading("Detected")
    console.info(f"  OS: {d.os}{' (inside a container)' if d.in_container else ''}")
    console.info(f"  Docker daemon: {d.docker_daemon or 'not reachable'}")
    console.info("  system PostgreSQL: " + (f"{d.system_pg.version} ("
                 f"{'with' if d.system_pg.has_pgvector else 'no'} pgvector)" if d.system_pg
                 else "none"))
    console.info("  embedded PostgreSQL: " + (
        f"{d.embedded_pg.version} with pgvector" if d.embedded_pg else "none"))
    console.info("  ports: " + ", ".join(f"{port} {'free' if free else 'in use'}"
                                         for port, free in d.free_ports.items()))
    console.info(f"  mode: {installation.settings.mode} ({b.get('binaries', '')}), "
                 f"port {b.get('port')}")
    if b.get("binaries_why"):
        console.info(f"  binaries: {b['binaries_why']}")
    if b.get("tls"):
        console.info(f"  TLS: {b['tls']}")


_PORT_ATTEMPTS = 3  # another program may take the chosen port before the server binds it


def cmd_install(ctx: RunContext) -> ExitCode:
    project_dir, args, console = ctx.project_dir, ctx.args, ctx.console
    dry_run = bool(getattr(args, "dry_run", False))
    installation = ctx.installation(installed=False, probe_docker=True, choose_port=True)
    _report_detection(installation, console)
    console.heading("Plan" if dry_run else "Install")
    for attempt in range(_PORT_ATTEMPTS):
        steps = installation.steps(console)
        try:
            results = run_steps(steps, console, dry_run=dry_run)
            break
        except PortTaken as taken:
            if attempt + 1 == _PORT_ATTEMPTS:
                raise
            installation.move_off(taken, console)
    changed = [r for r in results if r.state in ("changed", "planned")]
    summary = _summary(installation, results)
    if dry_run:
        console.info("Nothing would change." if not changed else
                     f"{len(changed)} step(s) would change; nothing was changed.")
        pending = [m for step in steps if isinstance(step, MigrationsStep) for m in step.pending]
        console.emit_json({"ok": True, "dry_run": True, "changes": len(changed),
                           "pending_migrations": pending, **summary})
        return ExitCode.CHANGES_PENDING if changed else ExitCode.OK
    if changed:
        console.heading(f"Done: {len(changed)} step(s) changed.")
    else:
        console.heading("Nothing to do: the installation is healthy and unchanged.")
    owner = installation.owner_conn()
    console.info(f"  database: {owner.masked_url()}")
    console.info(f"  agent role (read-only): {installation.settings.agent_role}")
    mcp_files = [str(CLIENTS[name].path(project_dir)) for name in installation.settings.mcp_clients]
    console.info(f"  files: {', '.join([str(installation.settings.env_path), *mcp_files])}")
    console.info(f"  next: {program.command('status')}; {program.command('backup')}; restart your "
                 "MCP clients so they pick up the learning-db server")
    deferred = [step.deferred_error for step in steps if step.deferred_error]
    if deferred:
        raise deferred[0]
    console.emit_json({"ok": True, "changes": len(changed), "files": [
        str(installation.settings.env_path), *mcp_files], **summary})
    return ExitCode.OK


def _summary(installation: Installation, results: list[StepResult]) -> dict[str, Any]:
    return {"mode": installation.settings.mode, "server": installation.backend.describe(),
            "database": installation.owner_conn().masked_url()}


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    names = [row[0] for row in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    return {name: int((conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(name))).fetchone() or (0,))[0]) for name in names}


def cmd_status(ctx: RunContext) -> ExitCode:
    console = ctx.console
    installation = ctx.installation(installed=False)
    steps = installation.steps()
    checks = [(step.title, checked(step)) for step in steps]
    healthy = all(check.ok for _, check in checks)
    pending: list[str] = []
    tables: dict[str, int] = {}
    missing: list[schema_drift.Missing] = []
    size: SizeReading | None = None
    try:
        with db.connect(installation.owner_conn(), autocommit=True) as conn:
            current = Migrator(conn, select_modules(installation.settings.sql_dir,
                                                    installation.settings.modules)).plan()
            pending = [m.id for m in current.pending + current.out_of_order + current.changed]
            missing = schema_drift.find(conn)
            tables = table_counts(conn)
            size = record_size(conn)
    except ServerError:  # the checks above say why
        healthy = False
    table = Table(title=f"learning installation ({installation.settings.mode})")
    table.add_column("check")
    table.add_column("state")
    table.add_column("detail", overflow="fold")
    for title, check in checks:
        table.add_row(title, "[green]ok[/]" if check.ok else f"[red]{check.state}[/]",
                      check.detail)
    console.table(table)
    if tables:
        counts = Table(title="learning tables")
        counts.add_column("table")
        counts.add_column("rows", justify="right")
        for name, count in tables.items():
            counts.add_row(name, str(count))
        console.table(counts)
    for gone in missing:
        console.warn(f"missing: {gone.describe()}")
    if size:
        console.info(f"database {installation.settings.database}: {size.describe()}")
    if why := installation.backend.describe().get("binaries_why"):
        console.info(f"binaries: {why}")
    pgadmin = _pgadmin_if_any(installation)
    if pgadmin is not None:
        report(pgadmin, console)
    console.info("healthy" if healthy else
                 f"not healthy: run {program.command('--full')} to repair")
    console.emit_json({
        "pgadmin": pgadmin.describe() if pgadmin is not None else None,
        "ok": healthy, "healthy": healthy, "mode": installation.settings.mode,
        "server": installation.backend.describe(),
        "database": installation.owner_conn().masked_url(),
        "pending_migrations": pending, "tables": tables,
        "missing_objects": {m.migration: list(m.objects) for m in missing},
        "size": size.as_dict() if size else None,
        "checks": [{"check": t, "state": c.state, "detail": c.detail} for t, c in checks],
    })
    return ExitCode.OK if healthy else ExitCode.SERVER


def _pgadmin_if_any(installation: Installation) -> Pgadmin | None:
    """pgAdmin when this installation has one (asked for, or started before)."""
    if installation.settings.pgadmin or EMAIL in installation.recorded:
        return installation.pgadmin
    return None


def cmd_start(ctx: RunContext) -> ExitCode:
    console = ctx.console
    installation = ctx.installation()
    console.step("Start server", "changed", installation.backend.start())
    console.emit_json({"ok": True, "server": installation.backend.describe()})
    return ExitCode.OK


def cmd_stop(ctx: RunContext) -> ExitCode:
    console = ctx.console
    installation = ctx.installation(installed=False)
    console.step("Stop server", "changed", installation.backend.stop())
    console.emit_json({"ok": True, "server": installation.backend.describe()})
    return ExitCode.OK


def cmd_uninstall(ctx: RunContext) -> ExitCode:
    project_dir, args, console = ctx.project_dir, ctx.args, ctx.console
    purge = bool(getattr(args, "purge", False))
    installation = ctx.installation()
    if purge and not getattr(args, "yes", False):
        where = installation.backend.describe().get("data_dir")
        if not interactive():
            raise ConfigError(f"--purge deletes all learning data in {where}; it needs a "
                              "confirmation and there is no terminal to ask",
                              hint="add --yes to confirm; nothing was removed")
        if not confirm(f"Delete the learning database and all its data ({where})?"):
            console.info("Nothing was removed.")
            return ExitCode.FAILED
    if (pgadmin := _pgadmin_if_any(installation)) is not None:
        console.step("pgAdmin 4", "changed", pgadmin.remove(purge=purge))
    if Record.load(project_dir).databases:  # what OtherDatabasesStep changed, given back
        try:
            console.step("Other databases' CONNECT", "changed", give_back(
                installation.backend.admin_conn(), project_dir))
        except ServerError as exc:
            console.warn(f"{exc.message} ({exc.hint})")
    console.step("Server", "changed", installation.backend.remove(purge=purge))
    agent = installation.agent_conn()
    for client in CLIENTS.values():
        if removed_from := remove_entry(client, project_dir, agent):
            console.step(f"MCP server entry for {client.label}", "changed",
                         f"removed from {removed_from}")
    if removed_from := remove_hooks(project_dir):
        console.step("Claude Code capture hooks", "changed", f"removed from {removed_from}")
    path = pgpass_path()
    if existing := read_pgpass(path):
        write_pgpass(path, remove_from_pgpass(existing, agent.host, agent.port,
                                              agent.dbname, agent.user))
        console.step("Agent password", "changed", f"removed from {path}")
    if purge:
        kept = remove_env_keys(installation.settings.env_path, installation.env_values())
        console.step(".env", "changed", f"installer keys removed ({kept} of yours kept)")
    else:
        console.info(f"Data and credentials kept ({installation.settings.env_path}); "
                     f"{program.command('--full')} brings it all back.")
    console.emit_json({"ok": True, "purged": purge})
    return ExitCode.OK


def cmd_migrate(ctx: RunContext) -> ExitCode:
    args, console = ctx.args, ctx.console
    installation = ctx.installation(installed=False)
    modules = select_modules(installation.settings.sql_dir, installation.settings.modules)
    with db.connect(installation.owner_conn(), autocommit=True) as conn:
        migrator = Migrator(conn, modules)
        if getattr(args, "rollback_to", None):
            return _rollback(installation, migrator, args.rollback_to,
                             bool(getattr(args, "dry_run", False)), console)
        if getattr(args, "accept_checksum", None):
            migrator.accept_checksum(args.accept_checksum)
            console.step(f"Checksum of {args.accept_checksum}", "changed", "accepted")
            return ExitCode.OK
        if getattr(args, "list_only", False):
            current = migrator.plan()
            for name in current.applied:
                console.step(name, "ok", "applied")
            for m in current.pending:
                console.step(m.id, "planned", "pending")
            for m in current.out_of_order:
                console.step(m.id, "failed", "out of order")
            for m in current.changed:
                console.step(m.id, "failed", "edited after it was applied")
            for name in current.missing_files:
                console.step(name, "skipped", "applied, file missing")
            console.emit_json({"applied": current.applied,
                               "pending": [m.id for m in current.pending]})
            return ExitCode.OK
        applied = migrator.migrate(allow_out_of_order=getattr(args, "allow_out_of_order", False))
    console.step("Schema migrations", "changed" if applied else "ok",
                 ", ".join(m.id for m in applied) or "none pending")
    console.emit_json({"ok": True, "applied": [m.id for m in applied]})
    return ExitCode.OK


def _rollback(installation: Installation, migrator: Migrator, target: str, dry_run: bool,
              console: Console) -> ExitCode:
    """`migrate --rollback-to TARGET`: a pg_dump backup, then the down parts, last first."""
    if dry_run:
        steps = migrator.rollback_plan(target)
        for step in steps:
            console.step(step.id, "planned", "would be reverted")
        console.info(f"{len(steps)} migration(s) would be reverted after a backup; nothing was "
                     "changed." if steps else f"nothing is applied after {target}.")
        console.emit_json({"ok": True, "dry_run": True, "revert": [s.id for s in steps]})
        return ExitCode.CHANGES_PENDING if steps else ExitCode.OK
    saved: list[Path] = []

    def take_backup(steps: list[Recorded]) -> None:
        with console.working("Backup before the rollback"):
            saved.append(backup(installation, "-before-rollback"))
        console.step("Backup of the current content", "changed", str(saved[0]))

    try:
        steps = migrator.rollback(target, before=take_backup)
    except InstallerError as exc:
        if saved:
            exc.hint = "; ".join(filter(None, (exc.hint, f"your data before the rollback is "
                                                         f"in {saved[0]}")))
        raise
    for step in steps:
        console.step(step.id, "changed", "reverted")
    if steps:
        console.info(f"{program.command('--full')} applies them again; "
                     f"{program.command(f'restore {saved[0]}')} brings back the data")
    else:
        console.step(f"Rollback to {target}", "ok", f"nothing is applied after {target}")
    console.emit_json({"ok": True, "reverted": [s.id for s in steps],
                       "backup": str(saved[0]) if saved else None})
    return ExitCode.OK


def cmd_detect(ctx: RunContext) -> ExitCode:
    console = ctx.console
    installation = ctx.installation(installed=False, probe_docker=True)
    _report_detection(installation, console)
    server = installation.backend.describe()
    console.emit_json({"detected": installation.detection.as_dict(),
                       "mode": installation.settings.mode, "binaries": server.get("binaries"),
                       "binaries_why": server.get("binaries_why")})
    return ExitCode.OK


def cmd_compose(ctx: RunContext) -> ExitCode:
    project_dir, settings, console = ctx.project_dir, ctx.settings, ctx.console
    env_path = find_env_file(project_dir, settings)
    recorded = read_env(env_path)
    other_mode = recorded.get("LEARNING_MODE", DockerBackend.mode) != DockerBackend.mode
    if other_mode:  # its recorded port and names belong to that server, not to a container
        console.warn(f"this checkout is installed in {recorded['LEARNING_MODE']} mode; "
                     "compose.yaml describes a separate docker-mode server")
    resolved = resolve_settings(project_dir, settings, recorded={} if other_mode else recorded)
    spec = docker_spec(resolved)
    values, login = compose_env(spec, resolved, recorded)
    if not other_mode and write_env(env_path, values):
        console.step(f"{env_path.name} for docker compose", "changed",
                     "passwords and pgAdmin login (generated where missing)")
    path = project_dir / "compose.yaml"
    changed = write_compose(path, spec, resolved, login)
    console.step(f"{path.name} for docker compose", "changed" if changed else "ok",
                 f"{spec.image} as {spec.name}, port {spec.host}:{spec.port}, volume "
                 f"{spec.volume}; pgAdmin in profile tools")
    if other_mode:
        console.warn(f"{env_path} was left alone: compose needs LEARNING_ADMIN_PASSWORD and the "
                     "PGADMIN_* keys in the .env beside compose.yaml")
    console.emit_json({"ok": True, "path": str(path), "changed": changed})
    return ExitCode.OK


def cmd_refresh(ctx: RunContext) -> ExitCode:
    console = ctx.console
    installation = ctx.installation()
    done = refresh(installation.owner_conn(), console)
    console.emit_json({"ok": True, **done})
    return ExitCode.OK


def cmd_export(ctx: RunContext) -> ExitCode:
    console = ctx.console
    installation = ctx.installation()
    exports = installation.settings.exports_dir
    result = run_export(installation.owner_conn(), exports, console)
    console.info(f"{len(result.changed_files)} file(s) changed in {exports}" if result.changed
                 else f"{exports} is up to date: no file changed")
    console.emit_json({"ok": True, "changed_files": result.changed_files,
                       "rows": {n: e.rows for n, e in result.manifest.tables.items()}})
    return ExitCode.OK


def cmd_import(ctx: RunContext) -> ExitCode:
    args, console = ctx.args, ctx.console
    installation = ctx.installation()
    exports = installation.settings.exports_dir
    folder = Path(args.from_dir).resolve() if getattr(args, "from_dir", None) else exports
    if folder != exports and not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder",
                          hint="--from takes an export folder or a folder of CSV files")
    source = find_source(folder, legacy_allowed=folder != exports)
    if source is None:
        console.info(f"no exports to import in {folder}")
        console.emit_json({"ok": True, "tables": {}})
        return ExitCode.OK
    outcomes, problem = run_import(installation.owner_conn(), source, console,
                                   force=bool(getattr(args, "force", False)),
                                   record=folder == exports)
    if problem:
        raise problem
    console.emit_json({"ok": True, "tables": {o.table: {
        "rows": o.rows, "imported": o.imported, "updated": o.updated, "present": o.present,
        "note": o.note} for o in outcomes}})
    return ExitCode.OK


def cmd_hooks(ctx: RunContext) -> ExitCode:
    project_dir, args, console = ctx.project_dir, ctx.args, ctx.console
    action = args.action
    if action == "install":
        console.step("git pre-push hook", "changed", hook.install_hook(project_dir))
        console.step("exports merge driver", "changed", hook.install_merge_driver(project_dir))
    elif action == "uninstall":
        console.step("git pre-push hook", "changed", hook.uninstall_hook(project_dir))
        console.step("exports merge driver", "changed", hook.uninstall_merge_driver(project_dir))
    elif action == "follow-up-push":
        return ExitCode(hook.follow_up_push(project_dir, args.git_pid, args.remote,
                                            args.refspec) and 1)
    else:  # run-pre-push, called by the hook: never fails the push
        lines = sys.stdin.read().splitlines()
        try:
            installation = ctx.installation(installed=False)
            done = hook.run_pre_push(project_dir, installation.owner_conn(), console,
                                     args.remote, lines, args.git_pid)
            console.info(f"learning export: {done}")
        except InstallerError as exc:
            console.warn(f"learning export skipped, the push goes on: {exc.message}")
        except psycopg.Error as exc:  # e.g. a deadline (prepush.DEADLINES) ran out
            console.warn(f"learning export skipped, the push goes on: {db.reason(exc)}")
    console.emit_json({"ok": True})
    return ExitCode.OK
