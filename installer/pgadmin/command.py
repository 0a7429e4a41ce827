"""`pgadmin [start|stop|status|logs]`: pgAdmin 4 for the installation, in every mode."""

from __future__ import annotations

from installer import program
from installer.context import RunContext
from installer.envfile import write_env
from installer.errors import ExitCode
from installer.pgadmin.registration import EMAIL
from installer.pgadmin.runner import report

ACTIONS = ("start", "stop", "status", "logs")


def cmd_pgadmin(ctx: RunContext) -> ExitCode:
    action = getattr(ctx.args, "action", None) or "start"
    installation = ctx.installation()
    pgadmin = installation.pgadmin
    if action == "start":
        if EMAIL not in installation.recorded or pgadmin.port != installation.settings.pgadmin_port:
            write_env(installation.settings.env_path, pgadmin.login.env_values(pgadmin.port))
        ctx.console.step("pgAdmin 4", "changed", pgadmin.start())
        report(pgadmin, ctx.console)
    elif action == "stop":
        ctx.console.step("pgAdmin 4", "changed", pgadmin.stop())
    elif action == "logs":
        ctx.console.info(pgadmin.log_tail(getattr(ctx.args, "lines", 50)))
    else:
        report(pgadmin, ctx.console)
        if not pgadmin.is_running():
            ctx.console.info(f"  start it with {program.command('pgadmin start')}")
    ctx.console.emit_json({"ok": True, "pgadmin": pgadmin.describe()})
    return ExitCode.OK
