"""Command line: parses arguments, runs one command, maps errors to exit codes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import psycopg

from installer import commands, db, lifecycle, locking, mcp_config, program, show_config
from installer.config import MODES, TLS_SETTINGS
from installer.console import Console
from installer.context import Command, RunContext
from installer.credentials import SSLMODES
from installer.errors import ConfigError, ExitCode, InstallerError, file_problem
from installer.mcp_server import command as mcp_server_command
from installer.pgadmin import command as pgadmin_command
from installer.wizard import profile_for_run

# Every command and the function that runs it. A new command: a sub-parser in build_parser()
# and one line here.
COMMANDS: dict[str, Command] = {
    "install": commands.cmd_install,
    "status": commands.cmd_status,
    "start": commands.cmd_start,
    "stop": commands.cmd_stop,
    "uninstall": commands.cmd_uninstall,
    "migrate": commands.cmd_migrate,
    "detect": commands.cmd_detect,
    "compose": commands.cmd_compose,
    "refresh": commands.cmd_refresh,
    "backup": lifecycle.cmd_backup,
    "restore": lifecycle.cmd_restore,
    "logs": lifecycle.cmd_logs,
    "doctor": lifecycle.cmd_doctor,
    "export": commands.cmd_export,
    "import": commands.cmd_import,
    "hooks": commands.cmd_hooks,
    "mcp-server": mcp_server_command.cmd_mcp_server,
    "pgadmin": pgadmin_command.cmd_pgadmin,
    "print-config": show_config.cmd_print_config,  # --print-config, with any command
}
# commands that change the server, the database or the checkout's files: one run at a time
_CHANGES_STATE = ("install", "start", "stop", "uninstall", "migrate", "import", "restore",
                  "refresh", "export")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors are configuration errors
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.CONFIG), f"error: {message}\n")


def _common_options() -> _Parser:
    common = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    out = common.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="one JSON document on stdout")
    out.add_argument("--quiet", "-q", action="store_true", help="errors only")
    out.add_argument("--verbose", "-v", action="store_true", help="more detail, tracebacks")
    where = common.add_argument_group("installation")
    where.add_argument("--project-dir", type=Path, help="the checkout (default: install.py's)")
    where.add_argument("--mode", choices=MODES)
    where.add_argument("--binaries", choices=("auto", "embedded", "system"),
                       help="native mode: which PostgreSQL binaries (auto: system if present)")
    where.add_argument("--data-dir", type=Path, help="native mode: instance directory")
    where.add_argument("--port", type=int,
                       help="server port (default 5432, docker 5433, or the next free one)")
    where.add_argument("--image", help="docker mode: image (default pgvector/pgvector:pg16)")
    where.add_argument("--database", help="learning database name (default learning_system)")
    where.add_argument("--env-file", type=Path, help="path of the .env file to write")
    where.add_argument("--health-timeout", type=float, help="seconds to wait for the server")
    where.add_argument("--mcp-clients", metavar="A,B",
                       help=f"MCP clients to configure: {', '.join(mcp_config.CLIENTS)} "
                       "(comma-separated; empty for none)")
    where.add_argument("--with-pgadmin", dest="pgadmin", action="store_true",
                       help="also run pgAdmin 4 on 127.0.0.1 (LEARNING_PGADMIN=1)")
    where.add_argument("--capture-agent-work", action=argparse.BooleanOptionalAction,
                       help="Claude Code hooks record sessions and sub-agent runs in the "
                       "learning tables (default on; --no-capture-agent-work removes them)")
    tls = common.add_argument_group("TLS (external mode; see docs/modes.md)")
    tls.add_argument("--sslmode", choices=SSLMODES,
                     help="libpq's sslmode for every connection (default: verify-full with a "
                     "root certificate, else require; LEARNING_SSLMODE)")
    tls.add_argument("--sslrootcert", type=Path, metavar="FILE",
                     help="CA certificate(s) that signed the server's (LEARNING_SSLROOTCERT)")
    tls.add_argument("--sslcert", type=Path, metavar="FILE",
                     help="client certificate, where the server asks for one (LEARNING_SSLCERT)")
    tls.add_argument("--sslkey", type=Path, metavar="FILE",
                     help="the client certificate's key (LEARNING_SSLKEY)")
    where.add_argument("--yes", "-y", action="store_true",
                       help="answer yes; never prompt (also LEARNING_YES=1)")
    where.add_argument("--profile", metavar="NAME|PATH",
                       help="settings from profiles/NAME.yaml or a YAML file (LEARNING_PROFILE)")
    where.add_argument("--print-config", action="store_true",
                       help="show the effective settings and where each came from, then exit")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(prog=program.name(), parents=[common],
                     description="Install, repair and sync the PostgreSQL learning database.")
    parser.add_argument("--full", action="store_true",
                        help="install or repair everything (the default command)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan and change nothing (exit 2 when changes are due)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    install = sub.add_parser("install", parents=[common], help="same as --full")
    install.add_argument("--dry-run", action="store_true", help="print the plan only")
    sub.add_parser("status", parents=[common], help="check every part of the installation")
    sub.add_parser("start", parents=[common], help="start the database server")
    sub.add_parser("stop", parents=[common], help="stop the database server")
    uninstall = sub.add_parser("uninstall", parents=[common],
                               help="stop and remove the server; data kept unless --purge")
    uninstall.add_argument("--purge", action="store_true", help="also delete the data")
    migrate = sub.add_parser("migrate", parents=[common], help="apply or inspect migrations")
    migrate.add_argument("--status", dest="list_only", action="store_true",
                         help="list applied and pending migrations")
    migrate.add_argument("--allow-out-of-order", action="store_true",
                         help="apply files numbered below the last applied one")
    migrate.add_argument("--accept-checksum", metavar="MODULE/NNN_name",
                         help="record the current checksum of an edited, applied file")
    migrate.add_argument("--rollback-to", metavar="MODULE/NNN",
                         help="revert what was applied after MODULE/NNN (000: the whole module) "
                         "with the files' down parts, after a backup")
    migrate.add_argument("--dry-run", action="store_true",
                         help="with --rollback-to: list what would be reverted, change nothing")
    sub.add_parser("detect", parents=[common], help="report what this machine offers")
    sub.add_parser("compose", parents=[common],
                   help="write compose.yaml for the docker-mode container (no password in it)")
    sub.add_parser("refresh", parents=[common],
                   help="refresh materialised views; create the coming months' partitions")
    sub.add_parser("backup", parents=[common],
                   help="pg_dump the learning database into backups/ (custom format)")
    restore = sub.add_parser("restore", parents=[common],
                             help="replace the learning database's content with a backup")
    restore.add_argument("file", type=Path, help="a .dump file made by `backup`")
    logs = sub.add_parser("logs", parents=[common], help="the end of the server's log")
    logs.add_argument("--lines", "-n", type=int, default=50, help="how many lines (default 50)")
    sub.add_parser("doctor", parents=[common], help="every check, with how to fix what fails")
    sub.add_parser("export", parents=[common], help="write the learning data to exports/")
    imports = sub.add_parser("import", parents=[common],
                             help="load exports/ (or --from DIR) into the learning database")
    imports.add_argument("--from", dest="from_dir", type=Path, metavar="DIR",
                         help="an export folder, or a folder of legacy CSV files")
    imports.add_argument("--force", action="store_true",
                         help="import files that do not match manifest.json")
    hooks = sub.add_parser("hooks", parents=[common],
                           help="install or remove the git pre-push hook that exports on push")
    hooks.add_argument("action", metavar="{install,uninstall}",
                       choices=("install", "uninstall", "run-pre-push", "follow-up-push"))
    hooks.add_argument("--remote", default="origin", help=argparse.SUPPRESS)
    hooks.add_argument("--refspec", action="append", default=[], help=argparse.SUPPRESS)
    hooks.add_argument("--git-pid", type=int, default=0, help=argparse.SUPPRESS)
    mcp = sub.add_parser("mcp-server", parents=[common],
                         help="serve the learning database to one MCP client on stdio (the "
                         "client configs start it)")
    mcp.add_argument("--url", help="the agent role's postgresql:// URL, without a password "
                     "(default: from .env)")
    mcp.add_argument("--timeout", type=float, default=30.0,
                     help="seconds a statement may run (default 30)")
    mcp.add_argument("--max-rows", type=int, default=500,
                     help="rows returned by one query at most (default 500)")
    pgadmin = sub.add_parser("pgadmin", parents=[common],
                             help="pgAdmin 4 on 127.0.0.1 with the learning server registered")
    pgadmin.add_argument("action", nargs="?", default="start", choices=pgadmin_command.ACTIONS,
                         help="start (default), stop, status or logs")
    pgadmin.add_argument("--lines", "-n", type=int, default=50, help="logs: how many lines")
    return parser


def _flags_from(args: argparse.Namespace) -> dict[str, Any]:
    names = ("mode", "binaries", "data_dir", "port", "database", "env_file", "health_timeout",
             "image", "mcp_clients", "pgadmin", "capture_agent_work", *TLS_SETTINGS)
    return {name: getattr(args, name, None) for name in names}


def _changes_state(command: str, args: argparse.Namespace) -> bool:
    return command in _CHANGES_STATE and not getattr(args, "dry_run", False) \
        and not getattr(args, "list_only", False)


def _context(args: argparse.Namespace, project_dir: Path, console: Console,
             locks: locking.RunLocks | None) -> RunContext:
    if not (project_dir / "sql").is_dir():
        raise ConfigError(f"{project_dir} is not a learning-installer checkout (no sql/)",
                          hint="run install.py from the repository, or pass --project-dir")
    if os.environ.get("LEARNING_YES", "").lower() in ("1", "true", "yes"):
        args.yes = True
    flags = _flags_from(args)
    return RunContext(project_dir=project_dir, args=args, flags=flags, console=console,
                      profile=profile_for_run(project_dir, args, flags, console), locks=locks)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "print-config" if getattr(args, "print_config", False) else (
        args.command or "install")
    console = Console(json_mode=getattr(args, "json", False), quiet=getattr(args, "quiet", False),
                      verbose=getattr(args, "verbose", False), command=command)
    project_dir = Path(getattr(args, "project_dir", None)
                       or os.environ.get("LEARNING_PROJECT_DIR") or Path.cwd()).resolve()
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as held:
            locks = None
            if _changes_state(command, args):
                shown = program.command("--full" if command == "install" else command)
                locks = held.enter_context(locking.run_locked(console, project_dir, shown))
            code = COMMANDS[command](_context(args, project_dir, console, locks))
        console.detail(f"{command} took {time.monotonic() - started:.2f} s")
        return int(code)
    except InstallerError as exc:
        return _failed(exc, console, args)
    except psycopg.Error as exc:  # the server refused, or was not there, outside any step
        if console.verbose:
            console.err.print(traceback.format_exc())
        console.error(db.refused(exc))
        return int(ExitCode.FAILED if getattr(args, "dry_run", False) else ExitCode.SERVER)
    except OSError as exc:
        if exc.filename is None:  # not about a file: let the last resort report it
            return _unexpected(exc, console)
        return _failed(file_problem(exc), console, args)
    except KeyboardInterrupt:
        console.err.print("interrupted")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:
        return _unexpected(exc, console)


def _failed(exc: InstallerError, console: Console, args: argparse.Namespace) -> int:
    if console.verbose:
        console.err.print(traceback.format_exc())
    console.error(exc)
    if getattr(args, "dry_run", False):  # a plan's exit codes: 0 none, 2 changes, 1 error
        return int(ExitCode.FAILED)
    return int(exc.exit_code)


def _unexpected(exc: Exception, console: Console) -> int:
    """The last resort: one clear line, the traceback only on request."""
    if console.verbose:
        console.err.print(traceback.format_exc())
    console.error(InstallerError(f"unexpected error: {type(exc).__name__}: {exc}",
                                 hint="re-run with --verbose for the traceback, and report it "
                                 "with that output"))
    return int(ExitCode.FAILED)
