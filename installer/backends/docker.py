"""Docker mode: PostgreSQL in one container managed through the Docker SDK.

One container (labelled as the installer's), one named volume for the data, the port published
on 127.0.0.1 only. The image initialises the data directory only on its first start, with the
POSTGRES_PASSWORD it is given then; afterwards the password lives in the volume, so the
installer never generates a new one while the volume exists (see DockerBackend.build).

Works against Docker and against podman's Docker-compatible API, which differs in ways handled
here: the health status may stay `starting` forever (podman without systemd runs no checks), so
readiness is always an authenticated connection and the health status only cuts a wait short
when it says `unhealthy`; a port clash is a 500 "address already in use" (Docker: "port is
already allocated"); a failed pull surfaces as ImageNotFound; image names come back fully
qualified, so images are compared by ID.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from requests import RequestException

from installer import db, program
from installer.backends.base import Backend, refuse_lost_admin_password, register
from installer.credentials import ADMIN_PASSWORD, ConnInfo, Passwords
from installer.errors import EnvironmentProblem, ServerError
from installer.health import wait_until_healthy
from installer.ports import decide_port
from installer.steps import Check, Step, ok

if TYPE_CHECKING:
    from installer.config import Settings

LABEL_MANAGED = "io.learning-installer.managed"
LABEL_PROJECT = "io.learning-installer.project"
DATA_PATH = "/var/lib/postgresql/data"
CONTAINER_PORT = "5432/tcp"
_PORT_CLASH = ("address already in use", "port is already allocated", "bind for")
_ALIVE = ("running", "restarting")
_SECOND = 1_000_000_000  # the engine API counts health check times in nanoseconds
HEALTH_TIMING = {"interval": 5, "timeout": 5, "retries": 6, "start_period": 30}  # s, count
PING_TIMEOUT = 3.0
_PROBE_API_VERSION = "1.24"  # any version will do for /_ping, which is not versioned
API_TIMEOUT = 120


@dataclass
class ContainerSpec:
    """Everything that defines the container; the SDK call and compose.yaml both come from it."""

    image: str
    name: str
    volume: str
    host: str
    port: int
    user: str
    project_dir: Path

    @property
    def network(self) -> str:
        """A network of its own: other containers (pgAdmin) reach the server by its name."""
        return f"{self.name}-net"

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_MANAGED: "true", LABEL_PROJECT: str(self.project_dir)}

    @property
    def health_test(self) -> list[str]:
        # over TCP: during first initialisation the image runs a socket-only temporary server;
        # exec form (CMD): the user name never reaches a shell
        return ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", self.user,
                "-d", "postgres"]

    def environment(self, password: str) -> dict[str, str]:
        return {"POSTGRES_USER": self.user, "POSTGRES_PASSWORD": password,
                "POSTGRES_DB": "postgres"}

    def run_kwargs(self, password: str) -> dict[str, Any]:
        return {
            "image": self.image, "name": self.name, "detach": True,
            "environment": self.environment(password), "labels": self.labels,
            "ports": {CONTAINER_PORT: (self.host, self.port)},
            "volumes": {self.volume: {"bind": DATA_PATH, "mode": "rw"}},
            "network": self.network,
            "restart_policy": {"Name": "unless-stopped"},
            "healthcheck": {"test": self.health_test, **{
                k: v if k == "retries" else v * _SECOND for k, v in HEALTH_TIMING.items()}},
        }

    def compose(self) -> dict[str, Any]:
        """The same container as a compose service; the password is read from .env."""
        environment = self.environment(f"${{{ADMIN_PASSWORD}:?run install.py compose first}}")
        return {
            "name": self.name,
            "services": {"postgres": {
                "image": self.image, "container_name": self.name,
                "restart": "unless-stopped", "environment": environment,
                "ports": [f"{self.host}:{self.port}:5432"],
                "volumes": [f"{self.volume}:{DATA_PATH}"], "labels": self.labels,
                "healthcheck": {"test": self.health_test, **{
                    k: v if k == "retries" else f"{v}s" for k, v in HEALTH_TIMING.items()}},
            }},
            "volumes": {self.volume: {"name": self.volume}},
            "networks": {"default": {"name": self.network}},
        }


DEFAULT_PORT = 5433  # beside a native server's 5432


def docker_spec(settings: Settings) -> ContainerSpec:
    """The container the settings describe (the install may move the port, see choose_port)."""
    return ContainerSpec(
        image=settings.image, name=settings.container_name,
        volume=settings.volume_name or f"{settings.container_name}-data", host=settings.host,
        port=settings.port or DEFAULT_PORT, user=settings.admin_user,
        project_dir=settings.project_dir.resolve())


def open_engine(timeout: float = PING_TIMEOUT) -> tuple[docker.DockerClient, str]:
    """A client for the engine DOCKER_HOST (or the default socket) names, and the engine's
    name. Both come from `/_ping`'s headers: podman takes over a second to answer `/version`,
    which the SDK's own API negotiation calls. Raises DockerException or RequestException."""
    probe = docker.from_env(version=_PROBE_API_VERSION, timeout=timeout)
    try:
        response = probe.api.get(probe.api.base_url + "/_ping")
        response.raise_for_status()
    finally:
        probe.close()
    client = docker.from_env(version=response.headers.get("Api-Version") or "auto",
                             timeout=API_TIMEOUT)
    return client, response.headers.get("Server") or "unknown engine"


def connect() -> docker.DockerClient:
    """A client for the daemon; a clear error when none answers."""
    try:
        return open_engine()[0]
    except (DockerException, RequestException) as exc:
        raise EnvironmentProblem(
            f"docker mode needs a Docker daemon, and none answers ({_first_line(exc)})",
            hint="start Docker (or podman's API service: `podman system service`) and check "
            "DOCKER_HOST; or use --mode native") from exc


@register
class DockerBackend(Backend):
    mode = "docker"
    summary = "a container managed through the Docker daemon"
    default_port = DEFAULT_PORT
    needs_docker = True

    def __init__(self, *, client: docker.DockerClient, spec: ContainerSpec, password: str,
                 health_timeout: float):
        self.client = client
        self.spec = spec
        self.password = password
        self.health_timeout = health_timeout
        self.fresh_volume = False  # created in this run: a missing container is then no repair

    @classmethod
    def build(cls, settings: Settings, recorded: Mapping[str, str], passwords: Passwords,
              notes: list[str]) -> Self:
        backend = cls(client=connect(), spec=docker_spec(settings), password=passwords.admin,
                      health_timeout=settings.health_timeout)
        # the image set the password when it first initialised the volume
        refuse_lost_admin_password(
            settings, passwords,
            f"the data volume {backend.spec.volume}" if backend.volume_exists() else None,
            hint=lambda: "restore .env from a backup; or, to start over and delete that "
            f"volume's data, run `docker rm -f {backend.spec.name}; docker volume rm "
            f"{backend.spec.volume}`")
        return backend

    def choose_port(self, settings: Settings, notes: list[str]) -> None:
        self.spec.port = decide_port(settings, self.running_port(), self.default_port, notes)

    # -- state ------------------------------------------------------------------------------
    def container(self) -> Container | None:
        try:
            return self.client.containers.get(self.spec.name)
        except NotFound:
            return None

    def volume_exists(self) -> bool:
        try:
            self.client.volumes.get(self.spec.volume)
            return True
        except NotFound:
            return False

    def image_id(self) -> str | None:
        try:
            image_id: str | None = self.client.images.get(self.spec.image).id
            return image_id
        except (ImageNotFound, NotFound):
            return None

    def is_running(self) -> bool:
        found = self.container()
        return found is not None and found.status == "running"

    def running_port(self) -> int | None:
        found = self.container()
        if found is None or found.status != "running":
            return None
        return _published_port(found)

    def health(self, found: Container | None = None) -> str | None:
        """The engine's health status (`starting`, `healthy`, `unhealthy`) or None."""
        found = found or self.container()
        return ((found.attrs.get("State") or {}).get("Health") or {}).get("Status") \
            if found else None

    def _alive(self) -> bool:
        found = self.container()
        return found is not None and found.status in _ALIVE and self.health(found) != "unhealthy"

    def drift(self, found: Container) -> list[str]:
        """How the existing container differs from the spec (each difference needs a re-create)."""
        differences = []
        if (image := self.image_id()) and _bare_id(found.attrs.get("Image", "")) != _bare_id(image):
            differences.append(f"image is not {self.spec.image}")
        if _published_port(found) != self.spec.port:
            differences.append(f"port {_published_port(found)} → {self.spec.port}")
        mounts = {m.get("Name") for m in found.attrs.get("Mounts", [])
                  if m.get("Destination") == DATA_PATH}
        if self.spec.volume not in mounts:
            differences.append(f"data not on volume {self.spec.volume}")
        if self.spec.network not in ((found.attrs.get("NetworkSettings") or {})
                                     .get("Networks") or {}):
            differences.append(f"not on network {self.spec.network}")
        return differences

    def admin_conn(self, dbname: str = "postgres") -> ConnInfo:
        s = self.spec
        return ConnInfo(s.host, s.port, dbname, s.user, self.password)

    def recorded(self) -> dict[str, str]:
        return {"LEARNING_IMAGE": self.spec.image, "LEARNING_CONTAINER": self.spec.name,
                "LEARNING_VOLUME": self.spec.volume}

    def describe(self) -> dict[str, Any]:
        found = self.container()
        return {"mode": self.mode, "binaries": f"container image {self.spec.image}",
                "container": self.spec.name, "data_dir": f"volume {self.spec.volume}",
                "status": found.status if found else "missing", "health": self.health(found),
                "running": bool(found and found.status == "running"), "port": self.spec.port}

    def log_tail(self, lines: int = 30) -> str:
        found = self.container()
        if found is None:
            return f"(no container {self.spec.name})"
        text = found.logs(tail=lines).decode(errors="replace").rstrip()
        return f"last lines of `docker logs {self.spec.name}`:\n{text}"

    # -- actions ------------------------------------------------------------------------------
    def pull_image(self) -> str:
        try:
            self.client.images.pull(self.spec.image)
        except (ImageNotFound, NotFound, APIError) as exc:
            raise EnvironmentProblem(
                f"the image {self.spec.image} is not on this machine and could not be pulled "
                f"({_first_line(exc)})",
                hint=f"on a machine with registry access run `docker save {self.spec.image} -o "
                "pg.tar`, copy the file here and run `docker load -i pg.tar`; or choose an image "
                "you have with --image (or LEARNING_IMAGE)") from exc
        return f"pulled {self.spec.image}"

    def network_exists(self) -> bool:
        try:
            self.client.networks.get(self.spec.network)
            return True
        except NotFound:
            return False

    def create_network(self) -> str:
        self.client.networks.create(self.spec.network, driver="bridge", labels=self.spec.labels)
        return f"created network {self.spec.network}"

    def create_volume(self) -> str:
        self.client.volumes.create(self.spec.volume, labels=self.spec.labels)
        self.fresh_volume = True
        return f"created volume {self.spec.volume}"

    def create_container(self) -> str:
        """(Re)create the container on the volume and wait until it answers; the data is kept."""
        found = self.container()
        if found is not None:
            found.remove(force=True)  # never v=True: the data volume stays
        try:
            self.client.containers.run(**self.spec.run_kwargs(self.password))
        except APIError as exc:
            details = self.log_tail()
            if (leftover := self.container()) is not None:
                leftover.remove(force=True)  # a failed start leaves it `created`, holding the name
            self._raise_port_clash(exc)
            raise ServerError(f"the engine refused to run {self.spec.name}: {_first_line(exc)}",
                              details=details) from exc
        waited = self.wait_ready()
        return f"{self.spec.name} on {self.spec.host}:{self.spec.port} (ready after {waited:.1f} s)"

    def _raise_port_clash(self, exc: APIError) -> None:
        if not any(marker in str(exc).lower() for marker in _PORT_CLASH):
            return
        raise EnvironmentProblem(
            f"port {self.spec.port} on {self.spec.host} is taken by another program",
            hint="stop that program, or choose another port with --port; without --port the "
            "installer takes the next free one") from exc

    def wait_ready(self) -> float:
        return wait_until_healthy(self.admin_conn(), self.health_timeout,
                                  process_alive=self._alive, log_tail=self.log_tail,
                                  what=f"PostgreSQL in container {self.spec.name}")

    def start(self) -> str:
        found = self.container()
        if found is None:
            raise ServerError(f"there is no container {self.spec.name}",
                              hint=f"run {program.command('--full')} to re-create it (the data "
                              "volume is kept)")
        if found.status != "running":
            try:
                found.start()
            except APIError as exc:
                self._raise_port_clash(exc)
                raise ServerError(f"{self.spec.name} did not start: {_first_line(exc)}",
                                  details=self.log_tail()) from exc
        waited = self.wait_ready()
        return f"{self.spec.name} running on {self.spec.host}:{self.spec.port} " \
            f"(ready after {waited:.1f} s)"

    def restart(self) -> str:
        found = self.container()
        if found is None:
            return self.start()  # raises the clear "no container" error
        found.restart(timeout=30)
        return f"restarted {self.spec.name}; ready after {self.wait_ready():.1f} s"

    def stop(self) -> str:
        found = self.container()
        if found is None or found.status not in _ALIVE:
            return "not running"
        found.stop(timeout=30)
        return f"stopped {self.spec.name}"

    def remove(self, purge: bool) -> str:
        message = self.stop()
        found = self.container()
        if found is not None:
            found.remove(force=True)
            message += f"; removed container {self.spec.name}"
        if self.network_exists():
            with contextlib.suppress(APIError):  # still used by another container: keep it
                self.client.networks.get(self.spec.network).remove()
        if purge and self.volume_exists():
            self.client.volumes.get(self.spec.volume).remove(force=True)
            return f"{message}; deleted volume {self.spec.volume}"
        return f"{message}; data kept in volume {self.spec.volume}"

    def server_steps(self) -> list[Step]:
        return [ImageStep(self), VolumeStep(self), NetworkStep(self), ContainerStep(self),
                ServerStep(self)]


def _published_port(found: Container) -> int | None:
    bindings = (found.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    try:
        return int(bindings[CONTAINER_PORT][0]["HostPort"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _bare_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")


def _first_line(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else type(exc).__name__


class ImageStep(Step):
    def __init__(self, backend: DockerBackend):
        self.backend = backend
        self.title = f"Container image {backend.spec.image}"

    def check(self) -> Check:
        image = self.backend.image_id()
        if image:
            return ok(_bare_id(image)[:12])
        return Check("create", f"pull {self.backend.spec.image}")

    def apply(self, check: Check) -> str:
        return self.backend.pull_image()


class VolumeStep(Step):
    def __init__(self, backend: DockerBackend):
        self.backend = backend
        self.title = f"Data volume {backend.spec.volume}"

    def check(self) -> Check:
        if self.backend.volume_exists():
            return ok()
        return Check("create", f"docker volume {self.backend.spec.volume}")

    def apply(self, check: Check) -> str:
        return self.backend.create_volume()


class NetworkStep(Step):
    def __init__(self, backend: DockerBackend):
        self.backend = backend
        self.title = f"Network {backend.spec.network}"

    def check(self) -> Check:
        if self.backend.network_exists():
            return ok()
        return Check("create", f"docker network {self.backend.spec.network}")

    def apply(self, check: Check) -> str:
        return self.backend.create_network()


class ContainerStep(Step):
    def __init__(self, backend: DockerBackend):
        self.backend = backend
        self.title = f"Container {backend.spec.name}"

    def check(self) -> Check:
        b = self.backend
        found = b.container()
        if found is None:
            if b.volume_exists() and not b.fresh_volume:
                return Check("repair", f"container is missing; re-create it on volume "
                             f"{b.spec.volume} with the credentials kept in .env")
            return Check("create", f"from {b.spec.image}, port {b.spec.host}:{b.spec.port}")
        if found.labels.get(LABEL_MANAGED) != "true":
            raise EnvironmentProblem(
                f"a container named {b.spec.name} exists but was not made by this installer",
                hint="remove or rename it, or choose another name with LEARNING_CONTAINER")
        if found.status == "created":
            return Check("repair", "left over from a failed start; re-create it")
        if differences := b.drift(found):
            return Check("change", "re-create (data kept): " + ", ".join(differences))
        return ok(found.status)

    def apply(self, check: Check) -> str:
        return self.backend.create_container()


class ServerStep(Step):
    title = "Server running and healthy"

    def __init__(self, backend: DockerBackend):
        self.backend = backend

    def check(self) -> Check:
        b = self.backend
        found = b.container()
        if found is None:
            return Check("blocked", "after the container exists")
        if found.status not in _ALIVE:
            return Check("repair", f"container is {found.status}; start it")
        health = b.health(found)
        if health == "unhealthy":
            return Check("repair", "the engine reports the container unhealthy")
        if not db.answers(b.admin_conn()):
            return Check("repair", "PostgreSQL does not answer yet; wait for it")
        return ok(f"{b.spec.host}:{b.spec.port}" + (f", {health}" if health else ""))

    def apply(self, check: Check) -> str:
        if "unhealthy" in check.detail:
            return self.backend.restart()
        return self.backend.start()
