"""pgAdmin 4 as a container beside the docker-mode database (image dpage/pgadmin4).

On the database container's network, so the server is registered under the container's name;
its own volume for pgAdmin's data; published on 127.0.0.1 only. servers.json and the pgpass
file are bind-mounted read-only from `.pgadmin/`: the password is in neither the image, the
container's configuration nor servers.json. The container runs as the calling user (group
0, which the image's directories allow), so it can read the 0600 pgpass file it is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container

from installer.backends.docker import LABEL_MANAGED, ContainerSpec, DockerBackend
from installer.credentials import ConnInfo
from installer.errors import EnvironmentProblem, ServerError
from installer.pgadmin.registration import (
    EMAIL,
    FIRST_PORT,
    PASSWORD,
    PORT,
    Login,
    choose_port,
    wait_until_up,
    write_files,
)
from installer.steps import Check, ok

HTTP_PORT = "80/tcp"
DATA_PATH = "/var/lib/pgadmin"
SERVERS_PATH = "/pgadmin4/servers.json"


class PgadminContainer:
    def __init__(self, db: DockerBackend, image: str, login: Login, conn: ConnInfo,
                 folder: Path, wanted_port: int | None):
        self.db = db
        self.client = db.client
        self.image = image
        self.login = login
        self.conn = conn  # the learning database as seen from the host
        self.folder = folder
        self.name = f"{db.spec.name}-pgadmin"
        self.volume = f"{self.name}-data"
        self.port = choose_port(wanted_port, self._published_port())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- state ------------------------------------------------------------------------------
    def container(self) -> Container | None:
        try:
            return self.client.containers.get(self.name)
        except NotFound:
            return None

    def _published_port(self) -> int | None:
        found = self.container()
        bindings = ((found.attrs.get("HostConfig") or {}).get("PortBindings") or {}) \
            if found else {}
        try:
            return int(bindings[HTTP_PORT][0]["HostPort"])
        except (KeyError, IndexError, TypeError, ValueError):
            return None

    def is_running(self) -> bool:
        found = self.container()
        return found is not None and found.status == "running"

    def check(self) -> Check:
        found = self.container()
        if found is None:
            return Check("create", f"{self.image} as {self.name} on {self.url}")
        if found.labels.get(LABEL_MANAGED) != "true":
            raise EnvironmentProblem(
                f"a container named {self.name} exists but was not made by this installer",
                hint="remove or rename it")
        if self._published_port() != self.port:
            return Check("change", f"port {self._published_port()} → {self.port}")
        if found.status != "running":
            return Check("repair", f"container is {found.status}; start it")
        return ok(self.url)

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "running": self.is_running(), "container": self.name,
                "email": self.login.email}

    def log_tail(self, lines: int = 30) -> str:
        found = self.container()
        if found is None:
            return f"(no container {self.name})"
        logs: bytes = found.logs(tail=lines)
        return logs.decode(errors="replace").rstrip()

    # -- actions ----------------------------------------------------------------------------
    def start(self) -> str:
        """Create (or re-create) the container when needed and wait until pgAdmin answers."""
        check = self.check()
        if check.state in ("create", "change"):
            self._create()
        elif check.state == "repair":
            found = self.container()
            assert found is not None
            found.start()
        waited = wait_until_up(self.url, self.is_running, self.log_tail)
        return f"pgAdmin on {self.url} (ready after {waited:.1f} s)"

    def _create(self) -> None:
        if (found := self.container()) is not None:
            found.remove(force=True)  # its volume (pgAdmin's settings) stays
        try:
            self.client.images.get(self.image)
        except (ImageNotFound, NotFound):
            try:
                self.client.images.pull(self.image)
            except (ImageNotFound, NotFound, APIError) as exc:
                raise EnvironmentProblem(
                    f"the image {self.image} is not on this machine and could not be pulled",
                    hint=f"`docker pull {self.image}` on a machine with registry access, then "
                    "`docker save`/`docker load`; or set LEARNING_PGADMIN_IMAGE") from exc
        try:
            self.client.volumes.get(self.volume)
        except NotFound:
            self.client.volumes.create(self.volume, labels=self.db.spec.labels)
        servers, pgpass = write_files(self.folder, self.db.spec.name, 5432, self.conn)
        try:
            self.client.containers.run(**self._run_kwargs(servers, pgpass))
        except APIError as exc:
            if (leftover := self.container()) is not None:
                leftover.remove(force=True)
            raise ServerError(f"the engine refused to run {self.name}: {exc.explanation}",
                              hint="another program may hold the port; set "
                              "LEARNING_PGADMIN_PORT") from exc

    def _run_kwargs(self, servers: Path, pgpass: Path) -> dict[str, Any]:
        return {
            "image": self.image, "name": self.name, "detach": True,
            **({"user": user} if (user := _user()) else {}),
            "environment": _environment(self.login.email, self.login.password),
            "labels": self.db.spec.labels, "network": self.db.spec.network,
            "ports": {HTTP_PORT: ("127.0.0.1", self.port)},
            "volumes": {self.volume: {"bind": DATA_PATH, "mode": "rw"}} | {
                str(source): {"bind": target, "mode": "ro"}
                for source, target in _mounts(self.login, servers, pgpass).items()},
            "restart_policy": {"Name": "unless-stopped"},
        }

    def stop(self) -> str:
        found = self.container()
        if found is None or found.status != "running":
            return "pgAdmin is not running"
        found.stop(timeout=10)
        return f"stopped {self.name}"

    def remove(self, purge: bool) -> str:
        found = self.container()
        message = "no pgAdmin container"
        if found is not None:
            found.remove(force=True)
            message = f"removed container {self.name}"
        if purge:
            try:
                self.client.volumes.get(self.volume).remove(force=True)
                message += f"; deleted volume {self.volume}"
            except NotFound:
                pass
        return message


def _user() -> str | None:
    """The caller's uid (group 0), so the container can read the 0600 pgpass file; None where
    there are no uids (Windows: the image's own user reads what Docker Desktop mounts)."""
    return f"{os.getuid()}:0" if hasattr(os, "getuid") else None


def _environment(email: str, password: str) -> dict[str, str]:
    return {"PGADMIN_DEFAULT_EMAIL": email, "PGADMIN_DEFAULT_PASSWORD": password,
            "PGADMIN_SERVER_JSON_FILE": SERVERS_PATH,
            "PGADMIN_CONFIG_UPGRADE_CHECK_ENABLED": "False",
            "PGADMIN_CONFIG_SHOW_GRAVATAR_IMAGE": "False"}


def _mounts(login: Login, servers: Path, pgpass: Path) -> dict[Path, str]:
    """Host file -> read-only path inside; pgAdmin reads the passfile in the user's storage."""
    return {servers: SERVERS_PATH,
            pgpass: f"{DATA_PATH}/storage/{login.storage_dir}/pgpass"}


def compose_service(db: ContainerSpec, image: str, login: Login, folder: Path
                    ) -> tuple[dict[str, Any], str]:
    """The same container as a compose service in the `tools` profile, and its volume's name;
    the login and port are interpolated from .env."""
    name = f"{db.name}-pgadmin"
    volume = f"{name}-data"
    mounts = _mounts(login, folder / "servers.json", folder / "pgpass")
    return {
        "image": image, "container_name": name, "profiles": ["tools"],
        **({"user": user} if (user := _user()) else {}),
        "restart": "unless-stopped", "depends_on": ["postgres"],
        "environment": _environment(f"${{{EMAIL}:?run install.py compose first}}",
                                    f"${{{PASSWORD}:?run install.py compose first}}"),
        "ports": [f"127.0.0.1:${{{PORT}:-{FIRST_PORT}}}:80"],
        "volumes": [f"{volume}:{DATA_PATH}",
                    *(f"{source}:{target}:ro" for source, target in mounts.items())],
        "labels": db.labels,
    }, volume
