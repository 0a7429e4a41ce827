"""Docker mode against a real container engine: podman's Docker-compatible API.

The session fixture sets the engine up from scratch with scripts/dockermode.sh (podman + runc
from apt when missing, a locally built PostgreSQL 16 + pgvector image tagged with the official
names, the API service on a private socket, a health pump) and tears it down at the end. When
the engine cannot be set up, every test here is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import psycopg
import pytest

from installer.backends.docker import LABEL_MANAGED
from tests.conftest import REPO, Project, free_port

pytestmark = pytest.mark.required_area("docker-mode")

HARNESS = REPO / "scripts" / "dockermode.sh"
DEAD_SOCKET = "unix:///nonexistent/docker.sock"


@dataclass
class Engine:
    docker_host: str
    client: docker.DockerClient
    prefix: str  # every container and volume the tests make is named with it
    exports: dict[str, str]  # DOCKER_HOST and CONTAINERS_CONF, for the podman CLI too


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("docker-mode tests set up podman and need root")
    if not shutil.which("podman") and not shutil.which("apt-get"):
        pytest.skip("docker-mode tests need podman, or apt-get to install it")
    state = Path(tempfile.mkdtemp(prefix="learning-dockermode-"))
    env = {**os.environ, "STATE": str(state), "PYTHON": sys.executable}

    def down() -> None:
        subprocess.run(["bash", str(HARNESS), "down"], env=env, capture_output=True,
                       timeout=120, check=False)
        shutil.rmtree(state, ignore_errors=True)

    try:
        up = subprocess.run(["bash", str(HARNESS), "up"], env=env, capture_output=True,
                            text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        down()
        pytest.fail("scripts/dockermode.sh up did not finish within 15 minutes")
    if up.returncode != 0:  # our own set-up scripts failed: a failure, never a skip
        down()
        pytest.fail(f"scripts/dockermode.sh up exited {up.returncode}:\n"
                    + "\n".join((up.stdout + up.stderr).strip().splitlines()[-20:]))
    exports = dict(line.removeprefix("export ").split("=", 1)
                   for line in up.stdout.splitlines() if line.startswith("export "))
    client = docker.DockerClient(base_url=exports["DOCKER_HOST"], timeout=120)
    prefix = f"lt{uuid.uuid4().hex[:6]}"
    try:
        yield Engine(exports["DOCKER_HOST"], client, prefix, exports)
    finally:
        remove_named(client, prefix)
        client.close()
        down()


def remove_named(client: docker.DockerClient, prefix: str) -> None:
    """Remove the installer's containers and volumes whose names start with `prefix`."""
    for container in client.containers.list(all=True, filters={"label": LABEL_MANAGED}):
        if container.name.startswith(prefix):
            container.remove(force=True)
    for volume in client.volumes.list(filters={"label": LABEL_MANAGED}):
        if volume.name.startswith(prefix):
            volume.remove(force=True)
    for network in client.networks.list():
        if network.name.startswith(prefix):
            network.remove()


@dataclass
class DockerProject:
    project: Project
    engine: Engine
    name: str

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        env = {"DOCKER_HOST": self.engine.docker_host, "LEARNING_CONTAINER": self.name, **env}
        return self.project.run(*args, **env)

    def install(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("--full", "--mode", "docker", *args, **env)

    def container(self) -> docker.models.containers.Container:
        return self.engine.client.containers.get(self.name)

    def env(self) -> dict[str, str]:
        return self.project.read_env()

    def status(self) -> tuple[int, dict]:
        result = self.run("status", "--json")
        return result.returncode, json.loads(result.stdout)


@pytest.fixture
def dproject(project: Project, engine: Engine) -> Iterator[DockerProject]:
    proj = DockerProject(project, engine, f"{engine.prefix}-{uuid.uuid4().hex[:6]}")
    yield proj
    remove_named(engine.client, proj.name)


def installed(dproject: DockerProject) -> DockerProject:
    result = dproject.install("--port", str(dproject.project.port))
    assert result.returncode == 0, result.stdout + result.stderr
    return dproject


def insert_row(dproject: DockerProject, agent: str) -> None:
    with psycopg.connect(dproject.env()["DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                     "VALUES (%s, 'test', true)", (agent,))


def rows(dproject: DockerProject) -> list[str]:
    with psycopg.connect(dproject.env()["DATABASE_URL"]) as conn:
        return [r[0] for r in conn.execute("SELECT agent_name FROM agent_metrics ORDER BY 1")]


def test_first_install_then_noop_rerun_and_compose(dproject: DockerProject) -> None:
    port = dproject.project.port
    result = dproject.install("--port", str(port))
    assert result.returncode == 0, result.stdout + result.stderr
    env = dproject.env()
    assert env["LEARNING_MODE"] == "docker"
    assert env["PGPORT"] == str(port)
    assert env["LEARNING_CONTAINER"] == dproject.name
    for secret in (env["PGPASSWORD"], env["LEARNING_ADMIN_PASSWORD"]):
        assert secret not in result.stdout + result.stderr
    container = dproject.container()
    assert container.status == "running"
    assert container.labels[LABEL_MANAGED] == "true"
    assert container.attrs["HostConfig"]["PortBindings"]["5432/tcp"] == [
        {"HostIp": "127.0.0.1", "HostPort": str(port)}]
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    code, status = dproject.status()
    assert code == 0 and status["healthy"] is True, status
    assert status["pending_migrations"] == []
    assert status["server"]["container"] == dproject.name
    with psycopg.connect(env["DATABASE_URL"]) as conn:  # pgvector from the image is used
        assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                            "attrelid = 'task_embeddings'::regclass AND attname = 'embedding'"
                            ).fetchone()[0] == "vector(768)"
    insert_row(dproject, "first")

    again = dproject.run("--full", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["changes"] == 0
    assert rows(dproject) == ["first"]

    compose = dproject.run("compose")
    assert compose.returncode == 0, compose.stderr
    text = (dproject.project.path / "compose.yaml").read_text()
    assert env["LEARNING_ADMIN_PASSWORD"] not in text
    assert "${LEARNING_ADMIN_PASSWORD" in text
    assert f"127.0.0.1:{port}:5432" in text
    assert f"container_name: {dproject.name}" in text
    assert f"{dproject.name}-data:/var/lib/postgresql/data" in text

    # the engine's own health check (run by the harness's pump) agrees
    deadline = time.monotonic() + 30
    while dproject.container().attrs["State"]["Health"]["Status"] != "healthy":
        assert time.monotonic() < deadline, dproject.container().attrs["State"]["Health"]
        time.sleep(0.5)

    removed = dproject.run("uninstall", "--purge", "--yes")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    with pytest.raises(docker.errors.NotFound):
        dproject.container()
    with pytest.raises(docker.errors.NotFound):
        dproject.engine.client.volumes.get(f"{dproject.name}-data")


def test_stopped_container_is_started_with_data(dproject: DockerProject) -> None:
    installed(dproject)
    insert_row(dproject, "before-stop")
    dproject.container().stop()
    code, status = dproject.status()
    assert code != 0 and status["healthy"] is False
    result = dproject.run("--full")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is exited; start it" in result.stdout or "running on" in result.stdout
    assert dproject.container().status == "running"
    assert rows(dproject) == ["before-stop"]


def test_removed_container_is_recreated_on_same_volume(dproject: DockerProject) -> None:
    installed(dproject)
    insert_row(dproject, "kept")
    password = dproject.env()["LEARNING_ADMIN_PASSWORD"]
    dproject.container().remove(force=True)

    # without the password the volume was initialised with, nothing is touched
    env_file = dproject.project.path / ".env"
    saved = env_file.read_text()
    env_file.unlink()
    refused = dproject.install()
    assert refused.returncode == 3
    assert "holds no admin password" in refused.stderr
    env_file.write_text(saved)
    env_file.chmod(0o600)

    result = dproject.install()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "re-create it on volume" in result.stdout or "on 127.0.0.1" in result.stdout
    assert dproject.env()["LEARNING_ADMIN_PASSWORD"] == password
    assert rows(dproject) == ["kept"]


def test_port_taken_moves_to_next_free_or_fails_when_explicit(dproject: DockerProject) -> None:
    installed(dproject)
    insert_row(dproject, "moved")
    port = dproject.project.port
    dproject.container().stop()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        explicit = dproject.install("--port", str(port))
        assert explicit.returncode == 4
        assert f"port {port}" in explicit.stderr and "in use" in explicit.stderr

        moved = dproject.install()
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "now taken by another program" in moved.stderr
    new_port = int(dproject.env()["PGPORT"])
    assert new_port != port
    binding = dproject.container().attrs["HostConfig"]["PortBindings"]["5432/tcp"][0]
    assert binding["HostPort"] == str(new_port)
    assert rows(dproject) == ["moved"]
    assert f":{new_port}/" in json.loads(
        (dproject.project.path / ".mcp.json").read_text())["mcpServers"]["learning-db"]["args"][-1]


def test_missing_image_fails_clearly(dproject: DockerProject) -> None:
    result = dproject.install("--port", str(dproject.project.port),
                              "--image", "pgvector/pgvector:pg99")
    assert result.returncode == 4
    assert "pgvector/pgvector:pg99" in result.stderr
    assert "docker load" in result.stderr and "--image" in result.stderr
    with pytest.raises(docker.errors.NotFound):
        dproject.container()


def test_daemon_gone(dproject: DockerProject, tmp_path: Path) -> None:
    asked = dproject.install("--port", str(dproject.project.port), DOCKER_HOST=DEAD_SOCKET)
    assert asked.returncode == 4
    assert "no" in asked.stderr and "Docker daemon" in asked.stderr
    assert "--mode native" in asked.stderr

    # auto falls back to native and says why
    native = dproject.project
    fallback = native.run("--full", "--data-dir", str(native.data_dir), "--port",
                          str(free_port()), DOCKER_HOST=DEAD_SOCKET)
    assert fallback.returncode == 0, fallback.stdout + fallback.stderr
    assert "native mode" in fallback.stdout
    assert native.read_env()["LEARNING_MODE"] == "native"


def test_dry_run_creates_no_container_volume_or_file(dproject: DockerProject) -> None:
    result = dproject.run("--dry-run", "--json", "--mode", "docker", "--port",
                          str(dproject.project.port))
    assert result.returncode == 2, result.stdout + result.stderr
    plan = json.loads(result.stdout)
    assert plan["mode"] == "docker" and plan["changes"] > 0
    client = dproject.engine.client
    assert not client.containers.list(all=True, filters={"name": dproject.name})
    assert not [v for v in client.volumes.list() if v.name.startswith(dproject.name)]
    assert not (dproject.project.path / ".env").exists()
    assert not (dproject.project.path / ".mcp.json").exists()
