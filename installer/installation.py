"""One installation: its settings, credentials, backend and the ordered list of install steps.

`Installation.load()` resolves everything from flags, environment, `.env` and detection without
changing anything, so `--dry-run` and `status` can use it as well as a real install.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer import credentials as cred
from installer.backends.base import Backend
from installer.backends.native import NativeBackend, default_instance_dir
from installer.binaries import PgBinaries, choose_binaries, embedded_binaries, system_binaries
from installer.config import DEFAULT_NATIVE_PORT, Settings, resolve_settings
from installer.console import Console
from installer.credentials import ConnInfo, Passwords
from installer.detect import Detection, detect
from installer.envfile import read_env
from installer.errors import ConfigError, EnvironmentProblem
from installer.mcp_config import clients_named
from installer.ports import next_free_port, port_is_free
from installer.project_steps import EnvFileStep, McpConfigStep, MigrationsStep, PgpassStep
from installer.provision import AgentGrantsStep, Roles, RolesAndDatabaseStep, VectorExtensionStep
from installer.steps import Step

_EXPLICIT = ("command line", "environment", "profile")


@dataclass
class Installation:
    settings: Settings
    recorded: dict[str, str]
    passwords: Passwords
    backend: Backend
    detection: Detection
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, project_dir: Path, cli: dict[str, Any], console: Console,
             profile: dict[str, Any] | None = None, probe_docker: bool = True) -> Installation:
        cli = dict(cli)
        chosen = cli.pop("profile", None)  # the run's Profile: --profile or the wizard (cli.py)
        if profile is None and chosen is not None:
            profile = chosen.values
        env_file = cli.get("env_file") or (profile or {}).get("env_file")
        env_path = Path(env_file) if env_file else project_dir / ".env"
        recorded = read_env(env_path)
        settings = resolve_settings(project_dir, cli, profile=profile, recorded=recorded)
        detection = detect(probe_docker=probe_docker and settings.mode in ("auto", "docker"))
        passwords = Passwords.from_env(recorded)
        mode = choose_mode(settings, detection, console)
        notes: list[str] = []
        if mode != "native":
            raise ConfigError(f"{mode} mode is not available yet",
                              hint="use --mode native (the default when no Docker daemon answers)")
        backend = build_native(settings, recorded, passwords, notes)
        settings.mode = mode
        return cls(settings, recorded, passwords, backend, detection, notes)

    # -- connections -------------------------------------------------------------------------
    def owner_conn(self) -> ConnInfo:
        s = self.settings
        admin = self.backend.admin_conn()
        return ConnInfo(admin.host, admin.port, s.database, s.owner_role, self.passwords.owner)

    def agent_conn(self) -> ConnInfo:
        return self.owner_conn().to(user=self.settings.agent_role,
                                    password=self.passwords.agent)

    def env_values(self) -> dict[str, str]:
        """Every key the installer owns in .env."""
        owner = self.owner_conn()
        return {
            "LEARNING_MODE": self.settings.mode,
            **self.backend.recorded(),
            "DATABASE_URL": owner.url(),
            "PGHOST": owner.host,
            "PGPORT": str(owner.port),
            "PGDATABASE": owner.dbname,
            "PGUSER": owner.user,
            cred.OWNER_PASSWORD: self.passwords.owner,
            "LEARNING_ADMIN_USER": self.backend.admin_conn().user,
            cred.ADMIN_PASSWORD: self.passwords.admin,
            "LEARNING_AGENT_USER": self.settings.agent_role,
            cred.AGENT_PASSWORD: self.passwords.agent,
            "LEARNING_MCP_CLIENTS": ",".join(self.settings.mcp_clients) or "none",
            "LEARNING_IMPORT_EXPORTS": str(self.settings.import_exports).lower(),
            "LEARNING_INSTALL_HOOKS": str(self.settings.install_hooks).lower(),
        }

    def steps(self) -> list[Step]:
        """The whole install, in order. Credentials reach .env before any server uses them."""
        s = self.settings
        admin = self.backend.admin_conn()
        roles = Roles(database=s.database, owner=s.owner_role, owner_password=self.passwords.owner,
                      agent=s.agent_role, agent_password=self.passwords.agent,
                      lock_other_databases=self.backend.mode == "native")
        return [
            EnvFileStep(s.env_path, self.env_values()),
            *self.backend.server_steps(),
            RolesAndDatabaseStep(admin, roles),
            VectorExtensionStep(admin, s.database),
            MigrationsStep(self.owner_conn(), s.sql_dir),
            AgentGrantsStep(self.owner_conn(), s.agent_role),
            PgpassStep(self.agent_conn()),
            *(McpConfigStep(client, s.project_dir, self.agent_conn())
              for client in clients_named(s.mcp_clients)),
        ]


def choose_mode(settings: Settings, detection: Detection, console: Console) -> str:
    if settings.mode != "auto":
        return settings.mode
    if detection.docker_daemon is None:
        console.detail(f"no Docker daemon answered ({detection.docker_problem}); using native")
    return "native"


def _binaries(settings: Settings, recorded: dict[str, str]) -> PgBinaries:
    kind = recorded.get("LEARNING_PG_BINARIES") if settings.sources["binaries"] in (
        "default", ".env (recorded)") else None
    if kind == "embedded" and (found := embedded_binaries()):
        return found
    if kind == "system" and (found := system_binaries()):
        return found
    return choose_binaries(settings.binaries)


def build_native(settings: Settings, recorded: dict[str, str], passwords: Passwords,
                 notes: list[str]) -> NativeBackend:
    instance_dir = (settings.data_dir or default_instance_dir(settings.project_dir)).absolute()
    if instance_dir.resolve().is_relative_to(settings.project_dir.resolve()):
        raise ConfigError(f"data directory {instance_dir} is inside the project",
                          hint="a cluster must never be committed; choose a --data-dir outside "
                          f"{settings.project_dir}")
    backend = NativeBackend(
        instance_dir=instance_dir, binaries=_binaries(settings, recorded), port=0,
        host=settings.host, admin_user=settings.admin_user, admin_password=passwords.admin,
        service_user_name=settings.service_user, health_timeout=settings.health_timeout,
        rebuilt_from_env=cred.ADMIN_PASSWORD in recorded)
    if backend.is_initialised() and "admin" in passwords.generated:
        raise ConfigError(
            f"a cluster exists in {backend.pgdata} but {settings.env_path} holds no admin password "
            "for it (was .env deleted?)",
            hint="restore .env from a backup; or, to start over and delete that cluster's data, "
            "run `python install.py uninstall --purge`")
    backend.port = _decide_port(settings, backend, notes)
    return backend


def _decide_port(settings: Settings, backend: NativeBackend, notes: list[str]) -> int:
    running = backend.running_port()
    wanted = settings.port or DEFAULT_NATIVE_PORT
    if running == wanted or port_is_free(wanted):
        return wanted
    if settings.sources["port"] in _EXPLICIT:
        raise EnvironmentProblem(f"port {wanted} on {settings.host} is in use by another program",
                                 hint="stop that program, or choose another port with --port")
    chosen = next_free_port(wanted + 1)
    if settings.sources["port"] == ".env (recorded)":
        notes.append(f"port {wanted} recorded in .env is now taken by another program; "
                     f"moving to {chosen} (.env and MCP config follow)")
    else:
        notes.append(f"port {wanted} is in use; using the next free port, {chosen}")
    return chosen
