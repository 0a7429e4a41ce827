"""The effective settings of one run, and where each value came from.

Precedence, highest first: command-line flags, environment (LEARNING_*), profile, what the
installation recorded in `.env` on an earlier run, detected defaults. Secrets are never part of
the settings: they live in `.env` (see credentials.py) or in environment variables.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from installer import backends
from installer.credentials import Tls
from installer.errors import ConfigError

MODES = (backends.AUTO, *backends.modes())
BINARIES = ("auto", "embedded", "system")
MCP_SERVERS = ("builtin", "npx")


@dataclass
class Settings:
    project_dir: Path
    mode: str = "auto"
    binaries: str = "auto"
    data_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int | None = None  # None: the mode's default, or the next free port
    database: str = "learning_system"
    owner_role: str = "learning"
    agent_role: str = "learning_agent"
    admin_user: str = "postgres"
    service_user: str = "learning-pg"
    image: str = "pgvector/pgvector:pg16"  # docker mode
    container_name: str = "learning-postgres"
    volume_name: str | None = None  # None: "<container_name>-data"
    admin_url: str | None = None  # external mode: LEARNING_ADMIN_URL or a profile (no password)
    admin_password_env: str | None = None  # the variable holding its password (default below)
    env_file: Path | None = None
    mcp_clients: list[str] = field(default_factory=lambda: ["claude-code"])
    mcp_server: str = "builtin"  # builtin (installer/mcp_server/) | npx (server-postgres)
    mcp_timeout: float = 30.0  # builtin server: seconds a statement may run
    mcp_max_rows: int = 500  # builtin server: rows one query returns at most
    import_exports: bool = True
    install_hooks: bool = True
    capture_agent_work: bool = True  # Claude Code hooks record sessions and sub-agent runs
    health_timeout: float = 60.0
    pgadmin: bool = False  # run pgAdmin 4 beside the database (--with-pgadmin)
    pgadmin_image: str = "dpage/pgadmin4"  # docker mode
    pgadmin_port: int | None = None  # None: the next free port from 5050
    modules: list[str] | None = None  # schema modules (sql/<name>/); None: all of them
    # external mode: PUBLIC loses CONNECT on the admin's other databases (other_databases.py)
    protect_other_databases: bool = True
    # TLS, libpq's keywords (credentials.Tls); external mode defaults to require/verify-full
    sslmode: str | None = None
    sslrootcert: Path | None = None
    sslcert: Path | None = None
    sslkey: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def tls(self) -> Tls:
        """The TLS settings, checked: a known sslmode, certificate files that exist."""
        return Tls.checked({name: getattr(self, name) for name in TLS_SETTINGS},
                           {name: self.sources.get(name, "the settings") for name in TLS_SETTINGS})

    @property
    def env_path(self) -> Path:
        return self.env_file or self.project_dir / ".env"

    @property
    def sql_dir(self) -> Path:
        return self.project_dir / "sql"

    @property
    def exports_dir(self) -> Path:
        return self.project_dir / "exports"


# setting name -> (environment variable, .env key recorded by an earlier run)
_ENVIRONMENT = {
    "mode": ("LEARNING_MODE", "LEARNING_MODE"),
    "binaries": ("LEARNING_PG_BINARIES", "LEARNING_PG_BINARIES"),
    "data_dir": ("LEARNING_DATA_DIR", "LEARNING_DATA_DIR"),
    "host": ("LEARNING_HOST", "PGHOST"),
    "port": ("LEARNING_PORT", "PGPORT"),
    "database": ("LEARNING_DATABASE", "PGDATABASE"),
    "owner_role": ("LEARNING_OWNER_ROLE", "PGUSER"),
    "agent_role": ("LEARNING_AGENT_ROLE", "LEARNING_AGENT_USER"),
    "admin_user": ("LEARNING_ADMIN_USER", "LEARNING_ADMIN_USER"),
    "service_user": ("LEARNING_SERVICE_USER", None),
    "image": ("LEARNING_IMAGE", "LEARNING_IMAGE"),
    "container_name": ("LEARNING_CONTAINER", "LEARNING_CONTAINER"),
    "volume_name": ("LEARNING_VOLUME", "LEARNING_VOLUME"),
    "health_timeout": ("LEARNING_HEALTH_TIMEOUT", None),
    "admin_url": ("LEARNING_ADMIN_URL", None),  # may hold a password: never recorded, masked
    "modules": ("LEARNING_MODULES", "LEARNING_MODULES"),
    "mcp_clients": ("LEARNING_MCP_CLIENTS", "LEARNING_MCP_CLIENTS"),
    "mcp_server": ("LEARNING_MCP_SERVER", "LEARNING_MCP_SERVER"),
    "mcp_timeout": ("LEARNING_MCP_TIMEOUT", "LEARNING_MCP_TIMEOUT"),
    "mcp_max_rows": ("LEARNING_MCP_MAX_ROWS", "LEARNING_MCP_MAX_ROWS"),
    "import_exports": ("LEARNING_IMPORT_EXPORTS", "LEARNING_IMPORT_EXPORTS"),
    "install_hooks": ("LEARNING_INSTALL_HOOKS", "LEARNING_INSTALL_HOOKS"),
    "pgadmin": ("LEARNING_PGADMIN", "LEARNING_PGADMIN"),
    "pgadmin_image": ("LEARNING_PGADMIN_IMAGE", "LEARNING_PGADMIN_IMAGE"),
    "pgadmin_port": ("LEARNING_PGADMIN_PORT", "PGADMIN_PORT"),
    "capture_agent_work": ("LEARNING_CAPTURE_AGENT_WORK", "LEARNING_CAPTURE_AGENT_WORK"),
    "protect_other_databases": ("LEARNING_PROTECT_OTHER_DATABASES",
                                "LEARNING_PROTECT_OTHER_DATABASES"),
    # recorded under libpq's own names, so psql, pg_dump and the hooks read them from .env too
    "sslmode": ("LEARNING_SSLMODE", "PGSSLMODE"),
    "sslrootcert": ("LEARNING_SSLROOTCERT", "PGSSLROOTCERT"),
    "sslcert": ("LEARNING_SSLCERT", "PGSSLCERT"),
    "sslkey": ("LEARNING_SSLKEY", "PGSSLKEY"),
}
TLS_SETTINGS = ("sslmode", "sslrootcert", "sslcert", "sslkey")

# Role-name prefixes PostgreSQL (pg_) or a managed service keeps for its own roles: creating
# one fails, or the provider may change or drop it.
RESERVED_ROLE_PREFIXES = ("pg_", "rds_", "rdsadmin", "rdsrepl", "cloudsql", "alloydb",
                          "azure_", "azuresu", "supabase_", "neon_")


def recorded_keys() -> set[str]:
    """The .env keys a run reads its settings back from."""
    return {key for _, key in _ENVIRONMENT.values() if key}


def environment_variables() -> set[str]:
    """The environment variables that set a setting."""
    return {var for var, _ in _ENVIRONMENT.values()}


def environment_variable(name: str) -> str | None:
    """The environment variable that sets the setting `name`, if any."""
    return _ENVIRONMENT.get(name, (None, None))[0]


# The mode recorded in .env is where the installation lives; re-runs go back to it.
_RECORDED_ONLY_WHEN_AUTO = {"mode"}


def _convert(name: str, raw: Any, origin: str) -> Any:
    kind = {f.name: f.type for f in dataclasses.fields(Settings)}[name]
    try:
        if "list" in str(kind) and isinstance(raw, str):  # "a,b"; "all": None; "none": []
            names = [name.strip() for name in raw.split(",") if name.strip()]
            return None if names == ["all"] else [] if names == ["none"] else names
        if "int" in str(kind):
            value: Any = int(raw)
            if not 1 <= value <= 65535:
                raise ValueError("out of range 1-65535")
            return value
        if "float" in str(kind):
            return float(raw)
        if "Path" in str(kind):
            return Path(str(raw)).expanduser()
        if "bool" in str(kind) and isinstance(raw, str):
            return raw.strip().lower() in ("1", "true", "yes", "on")
    except ValueError as exc:
        raise ConfigError(f"{name} from {origin} is invalid: {raw!r} ({exc})") from exc
    return raw


def split_profile(cli: Mapping[str, Any], profile: Mapping[str, Any] | None = None
                  ) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """cli.py passes the run's profile (--profile or the wizard's answers) under "profile"
    in the command-line dict; returns the flags alone and the profile's values."""
    flags = {key: value for key, value in cli.items() if key != "profile"}
    chosen = cli.get("profile")
    return flags, profile if profile is not None or chosen is None else chosen.values


def find_env_file(project_dir: Path, cli: Mapping[str, Any]) -> Path:
    """The run's .env: --env-file, else the profile's env_file, else the checkout's .env."""
    flags, profile = split_profile(cli)
    chosen = flags.get("env_file") or (profile or {}).get("env_file")
    return Path(chosen).expanduser() if chosen else project_dir / ".env"


def _tls_from_admin_url(settings: Settings, sources: dict[str, str]) -> None:
    """The admin URL's sslmode/sslrootcert/sslcert/sslkey count as settings given where the
    URL was given; a TLS setting given on its own (flag, LEARNING_SSL*, profile) wins."""
    try:
        parts = conninfo_to_dict(str(settings.admin_url))
    except psycopg.ProgrammingError:
        return  # backends.external.admin_from says what is wrong with it
    origin = "LEARNING_ADMIN_URL" if sources["admin_url"] == "environment" else (
        "the profile's admin_url")
    for name in TLS_SETTINGS:
        if parts.get(name) and sources[name] in ("default", ".env (recorded)"):
            setattr(settings, name, _convert(name, parts[name], origin))
            sources[name] = origin


def resolve_settings(
    project_dir: Path,
    cli: Mapping[str, Any],
    environ: Mapping[str, str] = os.environ,
    profile: Mapping[str, Any] | None = None,
    recorded: Mapping[str, str] | None = None,
) -> Settings:
    cli, profile = split_profile(cli, profile)
    settings = Settings(project_dir=project_dir)
    sources = {f.name: "default" for f in dataclasses.fields(Settings) if f.name != "sources"}
    layers: list[tuple[str, Mapping[str, Any]]] = []
    recorded = recorded or {}
    layers.append((".env (recorded)", {
        name: recorded[key] for name, (_, key) in _ENVIRONMENT.items()
        if key and recorded.get(key) and name not in _RECORDED_ONLY_WHEN_AUTO
    }))
    layers.append(("profile", dict(profile or {})))
    layers.append(("environment", {
        name: environ[var] for name, (var, _) in _ENVIRONMENT.items() if environ.get(var)
    }))
    layers.append(("command line", {k: v for k, v in cli.items() if v is not None}))
    for origin, values in layers:
        for name, raw in values.items():
            setattr(settings, name, _convert(name, raw, origin))
            sources[name] = origin
    if settings.admin_url:
        _tls_from_admin_url(settings, sources)
    if settings.mode == "auto" and recorded.get("LEARNING_MODE") in MODES[1:]:
        settings.mode = recorded["LEARNING_MODE"]
        sources["mode"] = ".env (recorded)"
    if settings.mode not in MODES:
        raise ConfigError(f"unknown mode {settings.mode!r} (from {sources['mode']})",
                          hint=f"use one of: {', '.join(MODES)}")
    if settings.binaries not in BINARIES:
        raise ConfigError(f"unknown binaries {settings.binaries!r} (from {sources['binaries']})",
                          hint=f"use one of: {', '.join(BINARIES)}")
    if settings.mcp_server not in MCP_SERVERS:
        raise ConfigError(f"unknown MCP server {settings.mcp_server!r} (from "
                          f"{sources['mcp_server']})", hint=f"use one of: {', '.join(MCP_SERVERS)}")
    for name in ("owner_role", "agent_role"):
        _refuse_reserved(name, getattr(settings, name), sources[name])
    settings.sources = sources
    return settings


def _refuse_reserved(setting: str, role: str, origin: str) -> None:
    reserved = next((p for p in RESERVED_ROLE_PREFIXES if role.lower().startswith(p)), None)
    if reserved:
        variable = environment_variable(setting)
        raise ConfigError(
            f"{setting} {role!r} (from {origin}) starts with {reserved!r}, a prefix PostgreSQL "
            "or a managed service (RDS, Cloud SQL, AlloyDB, Azure, Supabase, Neon) keeps for "
            "its own roles", hint=f"choose another name ({variable} or the profile's {setting})")
