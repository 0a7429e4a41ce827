"""Every key the installer reads from or writes to `.env`, with a line saying what it holds.

The one list of them: `.env.example` is checked against it (tests/unit/test_env_example.py),
and `Installation.env_values` refuses to write a key that is not here.
"""

from __future__ import annotations

from installer.errors import InstallerError

# key -> what it holds (one line, for .env.example)
ENV_KEYS: dict[str, str] = {
    "LEARNING_MODE": "where the server lives: native, docker or external",
    "DATABASE_URL": "the learning database as the owner role (a URL with its password)",
    "PGHOST": "server host (libpq's variable, also read by psql)",
    "PGPORT": "server port",
    "PGDATABASE": "the learning database's name",
    "PGUSER": "the owner role of the learning database",
    "PGPASSWORD": "the owner role's password (generated)",
    "LEARNING_ADMIN_USER": "the server's superuser (native, docker) or admin role (external)",
    "LEARNING_ADMIN_PASSWORD": "the admin's password (generated; docker compose reads it too)",
    "LEARNING_AGENT_USER": "the read-only role the MCP clients use",
    "LEARNING_AGENT_PASSWORD": "the agent role's password (generated; also in ~/.pgpass)",
    "LEARNING_MODULES": "schema modules installed from sql/ (comma-separated, or all)",
    "LEARNING_MCP_CLIENTS": "MCP clients configured (comma-separated, or none)",
    "LEARNING_MCP_SERVER": "MCP server the clients start: builtin or npx (server-postgres)",
    "LEARNING_MCP_TIMEOUT": "builtin MCP server: seconds one statement may run",
    "LEARNING_MCP_MAX_ROWS": "builtin MCP server: rows one query returns at most",
    "LEARNING_IMPORT_EXPORTS": "true: install imports exports/ into the database",
    "LEARNING_INSTALL_HOOKS": "true: install the git pre-push hook that exports",
    "LEARNING_CAPTURE_AGENT_WORK": "true: Claude Code hooks record sessions and sub-agent runs",
    "LEARNING_PROTECT_OTHER_DATABASES": "external mode, true: PUBLIC loses CONNECT on the "
                                        "admin's other databases (their users keep it)",
    "PGSSLMODE": "external mode: TLS of every connection (libpq's sslmode, e.g. verify-full)",
    "PGSSLROOTCERT": "external mode: the CA certificate that signed the server's (absolute path)",
    "PGSSLCERT": "external mode: the client certificate, where the server asks for one",
    "PGSSLKEY": "external mode: the client certificate's key",
    "LEARNING_DATA_DIR": "native mode: the instance directory (cluster, log, socket)",
    "LEARNING_PG_BINARIES": "native mode: embedded or system PostgreSQL binaries",
    "LEARNING_IMAGE": "docker mode: the PostgreSQL image",
    "LEARNING_CONTAINER": "docker mode: the container's name",
    "LEARNING_VOLUME": "docker mode: the data volume's name",
    "LEARNING_PGADMIN": "true: run pgAdmin 4 beside the database (--with-pgadmin)",
    "LEARNING_PGADMIN_IMAGE": "docker mode: the pgAdmin 4 image",
    "PGADMIN_PORT": "pgAdmin's port on 127.0.0.1 (first free from 5050)",
    "PGADMIN_EMAIL": "pgAdmin login: email (generated)",
    "PGADMIN_PASSWORD": "pgAdmin login: password (generated)",
}

SECRET_KEYS = frozenset({"DATABASE_URL", "PGPASSWORD", "LEARNING_ADMIN_PASSWORD",
                         "LEARNING_AGENT_PASSWORD", "PGADMIN_PASSWORD"})


def require_registered(keys: object) -> None:
    """Refuse to write keys missing from ENV_KEYS (a programming error: add them there and to
    .env.example)."""
    unknown = sorted(set(keys) - set(ENV_KEYS))  # type: ignore[call-overload]
    if unknown:
        raise InstallerError(f"internal: .env keys not in installer/envkeys.py: {unknown}")
