"""One installation: its settings, credentials, backend and the ordered list of install steps.

`Installation.load()` resolves everything from flags, environment, `.env` and detection without
changing anything, so `--dry-run` and `status` can use it as well as a real install.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer import credentials as cred
from installer.agent_guard import AgentGuardStep, functions_we_create
from installer.backends import docker as docker_backend
from installer.backends.base import Backend
from installer.backends.docker import ContainerSpec, DockerBackend
from installer.backends.external import ADMIN_URL, ExternalBackend, admin_from
from installer.backends.native import NativeBackend, default_instance_dir
from installer.binaries import PgBinaries, choose_binaries, embedded_binaries, system_binaries
from installer.config import (
    DEFAULT_DOCKER_PORT,
    DEFAULT_NATIVE_PORT,
    Settings,
    resolve_settings,
    split_profile,
)
from installer.console import Console
from installer.credentials import ConnInfo, Passwords
from installer.detect import Detection, detect
from installer.envfile import read_env
from installer.errors import ConfigError, EnvironmentProblem
from installer.exchange.steps import ImportExportsStep, PrePushHookStep
from installer.mcp_config import ServerChoice, clients_named
from installer.ports import next_free_port, port_is_free
from installer.project_steps import EnvFileStep, McpConfigStep, MigrationsStep, PgpassStep
from installer.provision import AgentGrantsStep, Roles, RolesAndDatabaseStep, VectorExtensionStep
from installer.schema_maintenance import maintenance_steps
from installer.service_user import running_as_root
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
        cli, profile = split_profile(cli, profile)
        env_file = cli.get("env_file") or (profile or {}).get("env_file")
        env_path = Path(env_file) if env_file else project_dir / ".env"
        recorded = read_env(env_path)
        settings = resolve_settings(project_dir, cli, profile=profile, recorded=recorded)
        detection = detect(probe_docker=probe_docker and settings.mode in ("auto", "docker"))
        passwords = Passwords.from_env(recorded)
        mode = choose_mode(settings, detection, console)
        notes: list[str] = []
        backend: Backend
        if mode == "docker":
            backend = build_docker(settings, recorded, passwords, notes)
        elif mode == "external":
            backend = build_external(settings, recorded, passwords, profile)
        else:
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
        values = {
            "LEARNING_MODE": self.settings.mode,
            "DATABASE_URL": owner.url(),
            "PGHOST": owner.host,
            "PGPORT": str(owner.port),
            "PGDATABASE": owner.dbname,
            "PGUSER": owner.user,
            cred.OWNER_PASSWORD: self.passwords.owner,
            "LEARNING_ADMIN_USER": self.backend.admin_conn().user,
            cred.ADMIN_PASSWORD: self.passwords.admin,
            "LEARNING_AGENT_USER": self.settings.agent_role,
            "LEARNING_MODULES": "all" if self.settings.modules is None else ",".join(
                self.settings.modules),
            cred.AGENT_PASSWORD: self.passwords.agent,
            "LEARNING_MCP_CLIENTS": ",".join(self.settings.mcp_clients) or "none",
            "LEARNING_MCP_SERVER": self.settings.mcp_server,
            "LEARNING_MCP_TIMEOUT": f"{self.settings.mcp_timeout:g}",
            "LEARNING_MCP_MAX_ROWS": str(self.settings.mcp_max_rows),
            "LEARNING_IMPORT_EXPORTS": str(self.settings.import_exports).lower(),
            "LEARNING_INSTALL_HOOKS": str(self.settings.install_hooks).lower(),
        } | self.backend.recorded()
        if self.backend.mode == "external":  # an external server's admin password is not ours
            del values[cred.ADMIN_PASSWORD]
        return values

    def agent_steps(self) -> list[Step]:
        """The agent role's grants, then the removal of anything beyond them."""
        s = self.settings
        ours = functions_we_create(s.sql_dir)
        return [AgentGrantsStep(self.owner_conn(), s.agent_role, ours),
                AgentGuardStep(self.backend.admin_conn(), self.owner_conn(), s.agent_role, ours)]

    def steps(self, console: Console | None = None) -> list[Step]:
        """The whole install, in order. Credentials reach .env before any server uses them."""
        s = self.settings
        admin = self.backend.admin_conn()
        roles = Roles(database=s.database, owner=s.owner_role, owner_password=self.passwords.owner,
                      agent=s.agent_role, agent_password=self.passwords.agent,
                      lock_other_databases=self.backend.mode != "external")
        exchange: list[Step] = []
        if s.import_exports:
            exchange.append(ImportExportsStep(self.owner_conn(), s.exports_dir,
                                              console or Console(quiet=True)))
        hooks: list[Step] = [PrePushHookStep(s.project_dir)] if s.install_hooks else []
        return [
            EnvFileStep(s.env_path, self.env_values()),
            *self.backend.server_steps(),
            RolesAndDatabaseStep(admin, roles),
            VectorExtensionStep(admin, s.database),
            MigrationsStep(self.owner_conn(), s.sql_dir, s.modules),
            *maintenance_steps(self.owner_conn()),
            *self.agent_steps(),
            *exchange,
            PgpassStep(self.agent_conn()),
            *(McpConfigStep(client, s.project_dir, self.agent_conn(), ServerChoice(
                s.mcp_server, s.mcp_timeout, s.mcp_max_rows))
              for client in clients_named(s.mcp_clients)),
            *hooks,
        ]


def choose_mode(settings: Settings, detection: Detection, console: Console) -> str:
    """auto: docker when a daemon answers and we are not inside a container, else native."""
    if settings.mode != "auto":
        return settings.mode  # docker without a daemon fails clearly in build_docker
    if detection.in_container:
        console.info("running inside a container: using native mode (no sibling containers; "
                     "--mode docker uses a mounted Docker socket)")
        return "native"
    if detection.docker_daemon is None:
        console.info(f"no Docker daemon answered ({detection.docker_problem}); using native mode")
        return "native"
    return "docker"


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
            hint="restore .env from a backup (the data is untouched); or, to start over and "
            f"DELETE that cluster's data: `{_stop_command(backend)}`, then "
            f"`rm -rf {backend.instance_dir}`")
    backend.port = _decide_port(settings, backend, notes, DEFAULT_NATIVE_PORT)
    return backend


def docker_spec(settings: Settings) -> ContainerSpec:
    """The container the settings describe (the port is decided later, see build_docker)."""
    return ContainerSpec(
        image=settings.image, name=settings.container_name,
        volume=settings.volume_name or f"{settings.container_name}-data", host=settings.host,
        port=settings.port or DEFAULT_DOCKER_PORT, user=settings.admin_user,
        project_dir=settings.project_dir.resolve())


def build_docker(settings: Settings, recorded: dict[str, str], passwords: Passwords,
                 notes: list[str]) -> DockerBackend:
    backend = DockerBackend(client=docker_backend.connect(), spec=docker_spec(settings),
                            password=passwords.admin, health_timeout=settings.health_timeout)
    if backend.volume_exists() and "admin" in passwords.generated:
        # the image set the password when it first initialised the volume; a new one never works
        raise ConfigError(
            f"the data volume {backend.spec.volume} exists but {settings.env_path} holds no admin "
            "password for it (was .env deleted?)",
            hint="restore .env from a backup; or, to start over and delete that volume's data, "
            f"run `docker rm -f {backend.spec.name}; docker volume rm {backend.spec.volume}`")
    backend.spec.port = _decide_port(settings, backend, notes, DEFAULT_DOCKER_PORT)
    return backend


def build_external(settings: Settings, recorded: dict[str, str], passwords: Passwords,
                   profile: dict[str, Any] | None) -> ExternalBackend:
    admin = admin_from(os.environ, profile)
    if admin is not None:
        host, port = admin.host, admin.port
    elif recorded.get("PGHOST") and recorded.get("PGPORT"):
        host, port = settings.host, settings.port or int(recorded["PGPORT"])
    else:
        raise ConfigError(
            "external mode needs the server's admin connection",
            hint=f"set {ADMIN_URL}=postgresql://USER@HOST:PORT/postgres in the environment "
            "(password in the URL, in LEARNING_ADMIN_PASSWORD or in ~/.pgpass; never on the "
            "command line); the user needs CREATEDB and CREATEROLE")
    owner = ConnInfo(host, port, settings.database, settings.owner_role, passwords.owner)
    roles = Roles(database=settings.database, owner=settings.owner_role,
                  owner_password=passwords.owner, agent=settings.agent_role,
                  agent_password=passwords.agent, lock_other_databases=False)
    new_roles = {"owner": settings.owner_role, "agent": settings.agent_role}
    return ExternalBackend(admin=admin, owner=owner, roles=roles,
                           recorded_admin_user=recorded.get("LEARNING_ADMIN_USER"),
                           unknown_passwords=[new_roles[name] for name in passwords.generated
                                              if name in new_roles])


def _stop_command(backend: NativeBackend) -> str:
    stop = f"{backend.binaries.tool('pg_ctl')} stop -D {backend.pgdata} -m fast"
    return f"runuser -u {backend.service_user_name} -- {stop}" if running_as_root() else stop


def _decide_port(settings: Settings, backend: NativeBackend | DockerBackend, notes: list[str],
                 default: int) -> int:
    running = backend.running_port()
    wanted = settings.port or default
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
