"""The small interface every backend (native, docker, external) implements, and the registry
that finds a backend by its mode name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from installer.credentials import ConnInfo, Passwords
from installer.errors import ConfigError
from installer.steps import Step

if TYPE_CHECKING:
    from installer.binaries import PgBinaries
    from installer.config import Settings


class Backend(ABC):
    mode: ClassVar[str]  # its name: --mode, LEARNING_MODE, profiles
    summary: ClassVar[str]  # one line for the wizard's choice
    default_port: ClassVar[int | None]  # None: the port is the server's, not the installer's
    owns_admin_password: ClassVar[bool] = True  # False: the admin password is not ours to keep
    may_lock_other_databases: ClassVar[bool] = True  # False: a shared server; hands off the rest
    needs_docker: ClassVar[bool] = False  # detection probes the Docker daemon for this mode
    offers_tls: ClassVar[bool] = False  # False: its server listens on loopback, without TLS

    @classmethod
    @abstractmethod
    def build(cls, settings: Settings, recorded: Mapping[str, str], passwords: Passwords,
              notes: list[str]) -> Self:
        """The backend the settings describe; `notes` collects warnings for the user (a port
        moved). Changes nothing; raises ConfigError/EnvironmentProblem when it cannot be."""

    @abstractmethod
    def server_steps(self) -> list[Step]:
        """Steps that bring a healthy server up (or confirm one is there)."""

    @abstractmethod
    def admin_conn(self, dbname: str = "postgres") -> ConnInfo:
        """A connection with the rights to create roles and the learning database."""

    @abstractmethod
    def recorded(self) -> dict[str, str]:
        """Backend-specific keys for `.env`, so a re-run finds this installation again."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Facts for `status`: where the server is and whether it runs."""

    @abstractmethod
    def is_running(self) -> bool: ...

    @abstractmethod
    def start(self) -> str: ...

    @abstractmethod
    def stop(self) -> str: ...

    @abstractmethod
    def remove(self, purge: bool) -> str:
        """Stop and remove the server; data is kept unless `purge`."""

    @abstractmethod
    def log_tail(self, lines: int = 30) -> str: ...

    def client_tools(self) -> PgBinaries | None:
        """The pg_dump/psql that belong to this server, or None: the newest on the machine."""
        return None

    def choose_port(self, settings: Settings, notes: list[str]) -> None:
        """Only the install calls this: keep the wanted port when it is free or ours, else
        move to the next free one (`notes` says so). Every other command uses the recorded
        port as it is. A server the installer does not run keeps its port."""
        return None

    def lock_file(self) -> Path | None:
        """A file that commands changing this server lock (see locking.py); None: the
        checkout's lock is enough."""
        return None


def refuse_lost_admin_password(settings: Settings, passwords: Passwords, data: str | None,
                               hint: Callable[[], str]) -> None:
    """`data` (a cluster, a volume) exists, None when it does not: when `.env` holds no admin
    password for it, a new one would never work; `hint()` says how to restore or start over
    (asked only then: it may look at the machine)."""
    if data is not None and "admin" in passwords.generated:
        raise ConfigError(f"{data} exists but {settings.env_path} holds no admin password for it "
                          "(was .env deleted?)", hint=hint())


_REGISTRY: dict[str, type[Backend]] = {}
B = TypeVar("B", bound=type[Backend])


def register(cls: B) -> B:
    """Class decorator: makes a backend available under its `mode` name."""
    _REGISTRY[cls.mode] = cls
    return cls


def registered() -> dict[str, type[Backend]]:
    """Mode name -> backend class, in the order they were registered."""
    return dict(_REGISTRY)
