"""One installation: its settings, credentials, backend and the ordered list of install steps.

`Installation.load()` resolves everything from flags, environment, `.env` and detection without
changing anything, so `--dry-run` and `status` can use it as well as a real install.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from installer import backends, envkeys
from installer import credentials as cred
from installer.agent_guard import AgentGuardStep, functions_we_create
from installer.backends.base import Backend
from installer.backends.docker import DockerBackend
from installer.backends.native import NativeBackend, PortTaken
from installer.capture.steps import CaptureSpoolStep, ClaudeHooksStep
from installer.config import Settings, find_env_file, resolve_settings
from installer.console import Console
from installer.credentials import ConnInfo, Passwords
from installer.detect import Detection, detect
from installer.envfile import read_env
from installer.errors import ConfigError
from installer.exchange.steps import ImportExportsStep, PrePushHookStep
from installer.exchange.triggers import ExchangeTriggersStep
from installer.mcp_config import ServerChoice, clients_named
from installer.other_databases import OtherDatabasesStep
from installer.pgadmin.registration import EMAIL as PGADMIN_EMAIL
from installer.pgadmin.registration import Login
from installer.pgadmin.runner import Pgadmin, PgadminStep, pgadmin_for
from installer.project_steps import EnvFileStep, McpConfigStep, MigrationsStep, PgpassStep
from installer.provision import AgentGrantsStep, Roles, RolesAndDatabaseStep, VectorExtensionStep
from installer.schema_maintenance import maintenance_steps
from installer.steps import Step


@dataclass
class Installation:
    settings: Settings
    recorded: dict[str, str]
    passwords: Passwords
    backend: Backend
    detection: Detection
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, project_dir: Path, cli: Mapping[str, Any], console: Console,
             probe_docker: bool = True, choose_port: bool = False) -> Installation:
        """`cli`: the flags, and the run's profile under "profile" (see config.split_profile).
        `choose_port`: the install may move off a port another program took; every other
        command uses the recorded port as it is."""
        recorded = read_env(find_env_file(project_dir, cli))
        settings = resolve_settings(project_dir, cli, recorded=recorded)
        detection = detect(probe_docker=probe_docker and (
            settings.mode == backends.AUTO or backends.backend_class(settings.mode).needs_docker))
        passwords = Passwords.from_env(recorded)
        mode = choose_mode(settings, detection, console)
        notes: list[str] = []
        if not backends.backend_class(mode).offers_tls:
            refuse_tls(settings, mode)
        backend = backends.backend_class(mode).build(settings, recorded, passwords, notes)
        if choose_port:
            backend.choose_port(settings, notes)
        settings.mode = mode
        return cls(settings, recorded, passwords, backend, detection, notes)

    @cached_property
    def pgadmin(self) -> Pgadmin:
        """pgAdmin 4 for this installation (its login from .env, or a new one)."""
        return pgadmin_for(self, Login.from_env(self.recorded))

    # -- connections -------------------------------------------------------------------------
    def owner_conn(self) -> ConnInfo:
        s = self.settings
        admin = self.backend.admin_conn()
        return ConnInfo(admin.host, admin.port, s.database, s.owner_role, self.passwords.owner,
                        admin.tls)

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
            "LEARNING_CAPTURE_AGENT_WORK": str(self.settings.capture_agent_work).lower(),
            "LEARNING_PROTECT_OTHER_DATABASES": str(self.settings.protect_other_databases).lower(),
        } | owner.tls.env() | self.backend.recorded()
        if not self.backend.owns_admin_password:  # e.g. an external server's
            del values[cred.ADMIN_PASSWORD]
        if self.settings.pgadmin or PGADMIN_EMAIL in self.recorded:  # asked for, or run before
            values |= {"LEARNING_PGADMIN": str(self.settings.pgadmin).lower(),
                       "LEARNING_PGADMIN_IMAGE": self.settings.pgadmin_image,
                       } | self.pgadmin.login.env_values(self.pgadmin.port)
        # a backend's own keys are checked by tests/unit/test_env_example.py instead
        envkeys.require_registered(values.keys() - self.backend.recorded().keys())
        return values

    def move_off(self, taken: PortTaken, console: Console) -> None:
        """The install's answer to a port another program took after it was chosen: the next
        free one (an explicitly chosen port is never moved: the error stands)."""
        self.backend.choose_port(self.settings, [])
        if self.backend.admin_conn().port == taken.port:
            raise taken
        console.warn(f"port {taken.port} was taken by another program during the install; "
                     f"moving to {self.backend.admin_conn().port} (.env and MCP config follow)")

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
                      lock_other_databases=self.backend.may_lock_other_databases)
        exchange: list[Step] = []
        if s.import_exports:
            exchange.append(ImportExportsStep(self.owner_conn(), s.exports_dir,
                                              console or Console(quiet=True)))
        hooks: list[Step] = [PrePushHookStep(s.project_dir)] if s.install_hooks else []
        pgadmin: list[Step] = [PgadminStep(self.pgadmin)] if s.pgadmin else []
        others: list[Step] = [] if self.backend.may_lock_other_databases else [  # a shared server
            OtherDatabasesStep(admin, s.agent_role, s.owner_role, s.database, s.project_dir,
                               s.protect_other_databases)]
        return [
            EnvFileStep(s.env_path, self.env_values()),
            *self.backend.server_steps(),
            RolesAndDatabaseStep(admin, roles),
            *others,
            VectorExtensionStep(admin, s.database),
            MigrationsStep(self.owner_conn(), s.sql_dir, s.modules),
            *maintenance_steps(self.owner_conn()),
            *self.agent_steps(),
            ExchangeTriggersStep(self.owner_conn()),
            CaptureSpoolStep(s.project_dir, self.owner_conn()),
            *exchange,
            PgpassStep(self.agent_conn()),
            *pgadmin,
            *(McpConfigStep(client, s.project_dir, self.agent_conn(), ServerChoice(
                s.mcp_server, s.mcp_timeout, s.mcp_max_rows))
              for client in clients_named(s.mcp_clients)),
            *hooks,
            ClaudeHooksStep(s.project_dir, s.capture_agent_work, s.env_file),
        ]


def refuse_tls(settings: Settings, mode: str) -> None:
    """Native and docker servers listen on 127.0.0.1 without TLS: asking for it there is an
    error rather than a setting silently left unused (sslmode disable/allow/prefer is fine)."""
    tls = settings.tls()  # an unknown sslmode is named as such first
    asked = [f"{name} (from {settings.sources[name]})" for name, value in tls.params().items()
             if not (name == "sslmode" and value in cred.UNVERIFIED_SSLMODES)]
    if asked:
        raise ConfigError(f"TLS is not offered in {mode} mode (its server listens on "
                          f"127.0.0.1 without TLS), but {', '.join(asked)} asked for it",
                          hint="leave the TLS settings out, or use --mode external for a server "
                          "that has TLS")


def auto_mode(detection: Detection) -> tuple[str, str]:
    """What `--mode auto` picks, and why: docker when a daemon answers and we are not inside a
    container, else native."""
    if detection.in_container:
        return NativeBackend.mode, ("running inside a container (no sibling containers; "
                                    "--mode docker uses a mounted Docker socket)")
    if detection.docker_daemon is None:
        return NativeBackend.mode, f"no Docker daemon answered ({detection.docker_problem})"
    return DockerBackend.mode, f"a Docker daemon answered (engine {detection.docker_daemon})"


def choose_mode(settings: Settings, detection: Detection, console: Console) -> str:
    """The mode asked for; for auto, `auto_mode`'s choice, saying why when it is native."""
    if settings.mode != backends.AUTO:
        return settings.mode  # docker without a daemon fails clearly in DockerBackend.build
    mode, why = auto_mode(detection)
    if mode == NativeBackend.mode:
        console.info(f"{why}: using native mode")
    return mode
