"""`python install.py --full` end to end against real clusters, and every repair case."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from installer.service_user import running_as_root
from tests.conftest import Project, wait_gone

pytestmark = pytest.mark.parametrize("binaries", ["system", "embedded"])


def _status(project: Project) -> dict:
    return json.loads(project.run("status", "--json").stdout)


def _install(project: Project, binaries: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = project.install("--binaries", binaries, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _postmaster_pid(project: Project) -> int:
    return int((project.data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])


def _listen_on(port: int) -> socket.socket:
    """Another program holding the port (SO_REUSEADDR: our own TIME_WAITs must not block it)."""
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    return squatter


def test_first_install_gives_healthy_migrated_database(project: Project, binaries: str) -> None:
    result = _install(project, binaries)
    env = project.read_env()
    assert env["PGPORT"] == str(project.port)
    assert env["PGHOST"] == "127.0.0.1"
    assert env["LEARNING_MODE"] == "native"
    assert env["LEARNING_PG_BINARIES"] == binaries
    assert stat.S_IMODE((project.path / ".env").stat().st_mode) == 0o600
    status = _status(project)
    assert status["healthy"] is True
    assert status["mode"] == "native"
    assert status["pending_migrations"] == []
    assert set(status["tables"]) >= {"agent_metrics", "interaction_logs", "learning_feedback",
                                     "model_performance", "task_embeddings"}
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                     "VALUES ('a', 'b', true)")
        ledger = conn.execute("SELECT module, version, checksum, duration_ms "
                              "FROM installer.schema_migrations").fetchall()
    assert ("learning", 1) in {(m, v) for m, v, _, _ in ledger}
    assert all(len(checksum) == 64 for _, _, checksum, _ in ledger)
    assert _status(project)["tables"]["agent_metrics"] == 1
    pgdata = project.data_dir / "pgdata"
    hba_rules = [line for line in (pgdata / "pg_hba.conf").read_text().splitlines()
                 if line and not line.startswith("#")]
    assert hba_rules and all(line.split()[-1] == "scram-sha-256" for line in hba_rules)
    assert "listen_addresses = '127.0.0.1'" in (pgdata / "learning_installer.conf").read_text()
    # the data directory is outside the project, and no password reaches the output
    assert not project.data_dir.is_relative_to(project.path)
    for secret in (env["PGPASSWORD"], env["LEARNING_ADMIN_PASSWORD"],
                   env["LEARNING_AGENT_PASSWORD"]):
        assert secret not in result.stdout + result.stderr
        assert secret not in (project.path / ".mcp.json").read_text()


def test_rerun_on_healthy_install_changes_nothing(project: Project, binaries: str) -> None:
    _install(project, binaries)
    files = [project.path / ".env", project.path / ".mcp.json", project.home / ".pgpass"]
    before = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in files}
    pid = _postmaster_pid(project)
    result = _install(project, binaries)
    assert "Nothing to do" in result.stdout
    assert "changed" not in result.stdout.lower().replace("unchanged", "")
    assert {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in files} == before
    assert _postmaster_pid(project) == pid  # not restarted


def test_rerun_starts_a_stopped_server(project: Project, binaries: str) -> None:
    _install(project, binaries)
    assert project.run("stop").returncode == 0
    assert _status(project)["healthy"] is False
    result = _install(project, binaries)
    assert "started on 127.0.0.1" in result.stdout
    assert _status(project)["healthy"] is True


def test_lost_data_directory_is_rebuilt_with_same_credentials(project: Project,
                                                              binaries: str) -> None:
    _install(project, binaries)
    env_before = project.read_env()
    assert project.run("stop").returncode == 0
    shutil.rmtree(project.data_dir)
    result = _install(project, binaries)
    assert "data directory was missing" in result.stdout
    assert "credentials from .env" in result.stdout
    assert project.read_env() == env_before
    with psycopg.connect(env_before["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM agent_metrics").fetchone() == (0,)


def test_crash_with_stale_pid_file_is_repaired(project: Project, binaries: str) -> None:
    _install(project, binaries)
    pid = _postmaster_pid(project)
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    time.sleep(1.5)  # the children notice the postmaster's death and exit
    # After a reboot the PID in the stale file often belongs to another program.
    impostor = subprocess.Popen(["sleep", "60"])
    try:
        pidfile = project.data_dir / "pgdata" / "postmaster.pid"
        lines = pidfile.read_text().split("\n")
        pidfile.write_text("\n".join([str(impostor.pid), *lines[1:]]))
        result = _install(project, binaries)
        assert "stale postmaster.pid" in result.stdout
        assert _status(project)["healthy"] is True
    finally:
        impostor.kill()


def test_recorded_port_taken_by_another_program_moves_on(project: Project,
                                                         binaries: str) -> None:
    _install(project, binaries)
    assert project.run("stop").returncode == 0
    squatter = _listen_on(project.port)
    try:
        result = project.run("--full", "--binaries", binaries)  # the port comes from .env
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"port {project.port} recorded in .env is now taken" in result.stderr
        new_port = int(project.read_env()["PGPORT"])
        assert new_port != project.port
        assert f":{new_port}/" in (project.path / ".mcp.json").read_text()
        assert _status(project)["healthy"] is True
    finally:
        squatter.close()


def test_explicit_port_in_use_is_a_clear_error(project: Project, binaries: str) -> None:
    squatter = _listen_on(project.port)
    try:
        result = project.install("--binaries", binaries)
    finally:
        squatter.close()
    assert result.returncode == 4
    assert f"port {project.port} on 127.0.0.1 is in use" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project.data_dir / "pgdata").exists()


def test_env_and_mcp_config_are_merged_not_clobbered(project: Project, binaries: str) -> None:
    user_env = "# my settings\nAPI_KEY=abc123\n\nexport EDITOR=vim\nPGPORT=1\n"
    (project.path / ".env").write_text(user_env)
    other = {"command": "uvx", "args": ["other-server"], "env": {"TOKEN": "${TOKEN}"}}
    (project.path / ".mcp.json").write_text(json.dumps(
        {"mcpServers": {"other": other}, "someSetting": True}))
    _install(project, binaries)
    text = (project.path / ".env").read_text()
    assert text.startswith("# my settings\nAPI_KEY=abc123\n\nexport EDITOR=vim\n")
    assert f"PGPORT={project.port}" in text and "PGPORT=1\n" not in text
    config = json.loads((project.path / ".mcp.json").read_text())
    assert config["mcpServers"]["other"] == other
    assert config["someSetting"] is True
    entry = config["mcpServers"]["learning-db"]
    assert entry["args"][-1] == (f"postgresql://learning_agent@127.0.0.1:{project.port}"
                                 "/learning_system")


def test_owner_password_drift_is_repaired(project: Project, binaries: str) -> None:
    _install(project, binaries)
    env = project.read_env()
    admin = dict(host="127.0.0.1", port=project.port, dbname="postgres", user="postgres",
                 password=env["LEARNING_ADMIN_PASSWORD"])
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute("ALTER ROLE learning PASSWORD 'changed-by-hand'")
    assert _status(project)["healthy"] is False
    result = _install(project, binaries)
    assert "does not accept the password" in result.stdout
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.skipif(not running_as_root(), reason="only root runs the server as a service user")
def test_as_root_the_server_runs_as_an_unprivileged_user(project: Project,
                                                         binaries: str) -> None:
    _install(project, binaries)
    status = Path(f"/proc/{_postmaster_pid(project)}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert uid != 0
    assert (project.data_dir / "pgdata").stat().st_uid == uid


def test_uninstall_keeps_data_unless_purged(project: Project, binaries: str) -> None:
    _install(project, binaries)
    result = project.run("uninstall")
    assert result.returncode == 0, result.stderr
    assert (project.data_dir / "pgdata" / "PG_VERSION").exists()
    assert "learning-db" not in (project.path / ".mcp.json").read_text()
    refused = project.run("uninstall", "--purge")  # no terminal and no --yes: refuse
    assert refused.returncode == 3
    assert "--yes" in refused.stderr
    assert (project.data_dir / "pgdata" / "PG_VERSION").exists()
    _install(project, binaries)  # everything comes back
    assert _status(project)["healthy"] is True
    assert project.run("uninstall", "--purge", "--yes").returncode == 0
    assert not project.data_dir.exists()
    assert "PGPASSWORD" not in (project.path / ".env").read_text()


def test_server_that_cannot_start_shows_its_log_and_keeps_the_data(project: Project,
                                                                    binaries: str) -> None:
    _install(project, binaries)
    assert project.run("stop").returncode == 0
    conf = project.data_dir / "pgdata" / "postgresql.conf"
    conf.write_text(conf.read_text() + "\nshared_buffers = 'plenty'\n")
    result = project.run("--full", "--health-timeout", "10")
    assert result.returncode == 5, result.stdout + result.stderr
    assert "PostgreSQL cannot start: its configuration has an error" in result.stderr
    assert "shared_buffers" in result.stderr  # the server's own words
    assert "hint:" in result.stderr and "Traceback" not in result.stderr
    assert (project.data_dir / "pgdata" / "PG_VERSION").exists()


def test_lost_env_with_cluster_present_is_refused_with_a_way_out(project: Project,
                                                                 binaries: str) -> None:
    _install(project, binaries)
    (project.path / ".env").unlink()
    result = project.install("--binaries", binaries)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "holds no admin password" in result.stderr
    assert (project.data_dir / "pgdata" / "PG_VERSION").exists()  # nothing deleted
    hint = result.stderr.split("hint:", 1)[1].replace("\n", " ")
    stop = hint.split("`")[1]
    assert subprocess.run(stop, shell=True, capture_output=True).returncode == 0
    shutil.rmtree(project.data_dir)
    _install(project, binaries)
    assert _status(project)["healthy"] is True


def test_data_dir_holding_other_files_is_never_taken_or_purged(project: Project,
                                                               binaries: str) -> None:
    project.data_dir.mkdir()
    notes = project.data_dir / "notes.txt"
    notes.write_text("mine")
    refused = project.install("--binaries", binaries)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "already holds other files" in refused.stderr
    assert not (project.data_dir / "pgdata").exists()
    notes.unlink()
    _install(project, binaries)
    notes.write_text("added later")
    assert project.run("uninstall", "--purge", "--yes").returncode == 0
    assert notes.read_text() == "added later"
    assert not (project.data_dir / "pgdata").exists()
