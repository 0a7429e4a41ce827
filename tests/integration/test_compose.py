"""compose.yaml run by a real compose implementation (podman-compose against the podman
engine of the docker-mode tests): up, healthy, installed into, down, up, every row still there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
import yaml

from installer.pgadmin.registration import wait_until_up
from tests.conftest import free_port
from tests.integration.test_docker_mode import (  # noqa: F401 - fixtures
    DockerProject,
    dproject,
    engine,
    insert_row,
)
from tests.integration.test_pgadmin import pgadmin_image  # noqa: F401 - fixture

pytestmark = pytest.mark.required_area("docker-mode")
HEALTH_WAIT = 120.0


def compose(proj: DockerProject, *args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("podman-compose") or str(Path(sys.executable).parent / "podman-compose")
    if not Path(tool).exists():
        pytest.skip("podman-compose is not installed (it is in the test extra)")
    env = {**os.environ, **proj.engine.exports}
    return subprocess.run([tool, "--profile", "tools", *args], cwd=proj.project.path,
                          env=env, capture_output=True, text=True, timeout=600, check=False)


def wait_healthy(proj: DockerProject) -> None:
    deadline = time.monotonic() + HEALTH_WAIT
    while time.monotonic() < deadline:
        try:
            container = proj.container()
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                return
        except docker.errors.NotFound:  # not created yet
            pass
        time.sleep(1)
    pytest.fail(f"{proj.name} did not become healthy within {HEALTH_WAIT:.0f} s")


def table_rows(proj: DockerProject) -> dict[str, int]:
    code, status = proj.status()
    assert code == 0, status
    return status["tables"]


def test_compose_up_install_down_up_keeps_every_row(dproject: DockerProject,  # noqa: F811
                                                    pgadmin_image: None) -> None:  # noqa: F811
    port = str(dproject.project.port)
    web_port = str(free_port())
    written = dproject.run("compose", "--port", port, LEARNING_PGADMIN_PORT=web_port)
    assert written.returncode == 0, written.stdout + written.stderr
    env = dproject.env()
    text = (dproject.project.path / "compose.yaml").read_text()
    for key in ("LEARNING_ADMIN_PASSWORD", "PGPASSWORD", "LEARNING_AGENT_PASSWORD",
                "PGADMIN_PASSWORD"):
        assert env[key] and env[key] not in text, key
    document = yaml.safe_load(text)
    assert set(document["services"]) == {"postgres", "pgadmin"}
    assert document["services"]["pgadmin"]["profiles"] == ["tools"]
    for service in document["services"].values():
        assert all(p.startswith("127.0.0.1:") for p in service["ports"])

    try:
        up = compose(dproject, "up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        wait_healthy(dproject)
        first = dproject.container().id

        installed = dproject.install("--port", port)  # docker mode adopts the running stack
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert dproject.container().id == first, "the installer re-created the container"
        insert_row(dproject, "written-before-down")
        before = table_rows(dproject)
        assert before["agent_metrics"] >= 1

        down = compose(dproject, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert not dproject.engine.client.containers.list(all=True,
                                                          filters={"name": dproject.name})
        again = compose(dproject, "up", "-d")
        assert again.returncode == 0, again.stdout + again.stderr
        wait_healthy(dproject)
        assert table_rows(dproject) == before

        pgadmin = dproject.engine.client.containers.get(f"{dproject.name}-pgadmin")
        assert pgadmin.attrs["HostConfig"]["PortBindings"]["80/tcp"] == [
            {"HostIp": "127.0.0.1", "HostPort": web_port}]
        wait_until_up(f"http://127.0.0.1:{web_port}", lambda: True,
                      lambda: pgadmin.logs(tail=30).decode(errors="replace"))
    finally:
        compose(dproject, "down", "-v")
