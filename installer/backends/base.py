"""The small interface every backend (native, docker, external) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from installer.credentials import ConnInfo
from installer.steps import Step


class Backend(ABC):
    mode: str

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

    def lock_file(self) -> Path | None:
        """A file that commands changing this server lock (see locking.py); None: the
        checkout's lock is enough."""
        return None
