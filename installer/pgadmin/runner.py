"""Which pgAdmin an installation gets, and the install step that starts it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from installer.backends.docker import DockerBackend
from installer.console import Console
from installer.pgadmin.container import PgadminContainer
from installer.pgadmin.native import NativePgadmin
from installer.pgadmin.registration import Login
from installer.steps import Check, Step

if TYPE_CHECKING:
    from installer.installation import Installation

Pgadmin = PgadminContainer | NativePgadmin


def pgadmin_for(installation: Installation, login: Login) -> Pgadmin:
    """A container beside a docker-mode server; a process of its own for any other server."""
    s = installation.settings
    folder = s.project_dir / ".pgadmin"
    if isinstance(installation.backend, DockerBackend):
        return PgadminContainer(installation.backend, s.pgadmin_image, login,
                                installation.owner_conn(), folder, s.pgadmin_port)
    return NativePgadmin(login, installation.owner_conn(), folder, s.pgadmin_port)


class PgadminStep(Step):
    title = "pgAdmin 4"

    def __init__(self, pgadmin: Pgadmin):
        self.pgadmin = pgadmin

    def check(self) -> Check:
        return self.pgadmin.check()

    def apply(self, check: Check) -> str:
        return self.pgadmin.start()


def report(pgadmin: Pgadmin, console: Console) -> None:
    state = "running" if pgadmin.is_running() else "stopped"
    console.info(f"  pgAdmin: {pgadmin.url} ({state}); log in as {pgadmin.login.email}, "
                 f"password PGADMIN_PASSWORD in .env")
