"""`install.py mcp-server`: serve MCP on stdio for one client (the clients start it).

Writes nothing to stdout but the protocol. The connection comes from `--url` (no password in
it); the password from ~/.pgpass (libpq) or, when it names the same role, the project's .env.
"""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from installer import credentials as cred
from installer.config import find_env_file
from installer.context import RunContext
from installer.credentials import ConnInfo, Tls
from installer.envfile import read_env
from installer.errors import ConfigError, ExitCode


def agent_from(url: str | None, recorded: dict[str, str]) -> ConnInfo:
    if url:
        try:
            parts = conninfo_to_dict(url)
        except Exception as exc:  # psycopg.ProgrammingError: its message says what is wrong
            raise ConfigError(f"--url is not a PostgreSQL URL: {exc}") from exc
        if parts.get("password"):
            raise ConfigError("--url holds a password",
                              hint="leave it out: the server reads ~/.pgpass or .env")
        agent = ConnInfo(str(parts.get("host", "127.0.0.1")), int(str(parts.get("port", 5432))),
                         str(parts.get("dbname", "")), str(parts.get("user", "")),
                         tls=Tls.checked(parts, "--url"))
    elif recorded.get("LEARNING_AGENT_USER"):
        agent = ConnInfo(recorded.get("PGHOST", "127.0.0.1"), int(recorded.get("PGPORT", 5432)),
                         recorded.get("PGDATABASE", "learning_system"),
                         recorded["LEARNING_AGENT_USER"], tls=Tls.from_env(recorded))
    else:
        raise ConfigError("no database to serve: pass --url, or install first",
                          hint="the MCP client configs the installer writes pass --url")
    if recorded.get("LEARNING_AGENT_USER") == agent.user and recorded.get(cred.AGENT_PASSWORD):
        agent = agent.to(password=recorded[cred.AGENT_PASSWORD])
    return agent


def cmd_mcp_server(ctx: RunContext) -> ExitCode:
    from installer.mcp_server.database import Limits
    from installer.mcp_server.tools import build_server

    args = ctx.args
    agent = agent_from(args.url, read_env(find_env_file(ctx.project_dir, ctx.settings)))
    limits = Limits(statement_timeout_ms=int(args.timeout * 1000), max_rows=args.max_rows)
    build_server(agent, limits).run("stdio")
    return ExitCode.OK
