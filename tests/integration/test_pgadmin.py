"""pgAdmin 4 beside the learning database, used through a real headless Chromium.

Docker mode runs the pgAdmin image (on this machine a stand-in built from PyPI by
scripts/dockermode.sh and tagged dpage/pgadmin4, as no registry is reachable); native mode
installs pgadmin4 from PyPI into .pgadmin/venv. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import psycopg
import pytest

from tests.conftest import REPO, Project, free_port
from tests.integration.pgadmin_browser import ARTIFACTS, browse_learning_server, require_chromium
from tests.integration.test_docker_mode import (  # noqa: F401 - fixtures
    DockerProject,
    dproject,
    engine,
    insert_row,
)
from tests.integration.test_external_tls import (  # noqa: F401 - fixtures
    CLIENT_CERT_DATABASE,
    Team,
    TlsServer,
    client_certificate_env,
    team,
    tls_server,
)

HARNESS = REPO / "scripts" / "dockermode.sh"


@pytest.fixture(scope="module")
def pgadmin_image(engine) -> None:  # noqa: F811
    """The pgAdmin image under its official name (built once per machine, ~1-3 min)."""
    state = tempfile.mkdtemp(prefix="learning-pgadmin-image-")
    env = {**os.environ, "STATE": state, "PYTHON": sys.executable}
    try:
        built = subprocess.run(["bash", str(HARNESS), "pgadmin"], env=env, capture_output=True,
                               text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("building the pgAdmin image took over 15 minutes")
    assert built.returncode == 0, built.stderr[-3000:]


@pytest.mark.required_area("docker-mode")  # a skip (no engine, no chromium) fails in CI
def test_docker_mode_pgadmin_in_chromium(dproject: DockerProject, pgadmin_image: None  # noqa: F811
                                         ) -> None:
    require_chromium()
    web_port = free_port()
    result = dproject.install("--port", str(dproject.project.port), "--with-pgadmin",
                              LEARNING_PGADMIN_PORT=str(web_port))
    assert result.returncode == 0, result.stdout + result.stderr
    env = dproject.env()
    assert env["LEARNING_PGADMIN"] == "true"
    assert env["PGADMIN_PORT"] == str(web_port)
    email, password = env["PGADMIN_EMAIL"], env["PGADMIN_PASSWORD"]
    output = result.stdout + result.stderr
    assert password not in output and env["PGPASSWORD"] not in output

    pgadmin = dproject.engine.client.containers.get(f"{dproject.name}-pgadmin")
    assert pgadmin.attrs["HostConfig"]["PortBindings"]["80/tcp"] == [
        {"HostIp": "127.0.0.1", "HostPort": str(web_port)}]
    assert f"{dproject.name}-net" in pgadmin.attrs["NetworkSettings"]["Networks"]
    configuration = json.dumps(pgadmin.attrs["Config"])
    assert env["PGPASSWORD"] not in configuration  # the server's password only in pgpass
    servers = (dproject.project.path / ".pgadmin" / "servers.json").read_text()
    assert env["PGPASSWORD"] not in servers and '"passfile": "/pgpass"' in servers

    insert_row(dproject, "seen-in-pgadmin")
    shots = browse_learning_server(
        f"http://127.0.0.1:{web_port}", email, password, "learning_system", "agent_metrics",
        "SELECT agent_name FROM agent_metrics ORDER BY 1", "seen-in-pgadmin",
        ARTIFACTS / "pgadmin-docker")
    assert all(shot.stat().st_size > 10_000 for shot in shots)

    code, status = dproject.status()
    assert code == 0, status
    assert status["pgadmin"]["url"] == f"http://127.0.0.1:{web_port}"
    assert status["pgadmin"]["running"] is True

    removed = dproject.run("uninstall")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not dproject.engine.client.containers.list(
        all=True, filters={"name": f"{dproject.name}-pgadmin"})


def test_native_pgadmin_command_in_chromium(project: Project) -> None:
    require_chromium()
    project.install(check=True)
    web_port = free_port()
    started = project.run("pgadmin", "start", LEARNING_PGADMIN_PORT=str(web_port), timeout=900)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        env = project.read_env()
        assert env["PGADMIN_PORT"] == str(web_port)
        assert env["PGADMIN_PASSWORD"] not in started.stdout + started.stderr
        venv = project.path / ".pgadmin" / "venv"
        assert (venv / "bin" / "python").exists()  # its own environment, not the installer's
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                         "VALUES ('seen-in-native-pgadmin', 'test', true)")
        shots = browse_learning_server(
            f"http://127.0.0.1:{web_port}", env["PGADMIN_EMAIL"], env["PGADMIN_PASSWORD"],
            "learning_system", "agent_metrics", "SELECT agent_name FROM agent_metrics",
            "seen-in-native-pgadmin", ARTIFACTS / "pgadmin-native")
        assert shots
        status = project.run("pgadmin", "status", "--json")
        assert json.loads(status.stdout)["pgadmin"]["running"] is True
    finally:
        stopped = project.run("pgadmin", "stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "(stopped)" in project.run("pgadmin", "status").stdout


def test_native_pgadmin_uses_the_external_tls_and_client_certificate(
        project: Project, tls_server: TlsServer, team: Team) -> None:  # noqa: F811
    """pgAdmin reaches a database whose pg_hba.conf line demands a client certificate, with
    verify-full: the certificates it was given are the ones the server saw."""
    require_chromium()
    names, env = client_certificate_env(tls_server, team)
    installed = project.run("--full", "--mode", "external", **env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    web_port = free_port()
    started = project.run("pgadmin", "start", LEARNING_PGADMIN_PORT=str(web_port), timeout=900,
                          **names)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        dotenv = project.read_env()
        shots = browse_learning_server(
            f"http://127.0.0.1:{web_port}", dotenv["PGADMIN_EMAIL"], dotenv["PGADMIN_PASSWORD"],
            CLIENT_CERT_DATABASE, "agent_metrics",
            "SELECT client_dn || ' seen' FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            "/CN=client seen", ARTIFACTS / "pgadmin-native-tls")
        assert shots
    finally:
        stopped = project.run("pgadmin", "stop", **names)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
