"""Faults and hostile input on a real native installation (system PostgreSQL, the fastest).

Each case ends in a healthy re-run or a clear message naming what is wrong, and keeps every
row: concurrent runs, SIGINT and kill -9 during initdb, a half-built cluster, a deleted
postmaster.pid, squatted and raced ports, files in the wrong state, hostile paths and a
duplicate `.env` key.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from installer.envfile import read_env
from tests.conftest import Project, free_port, stop_instance, wait_gone

BINARIES = ("--binaries", "system")
STAGING = ".pgdata-initdb"


def _install(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    result = project.install(*BINARIES, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _status(project: Project) -> dict:
    return json.loads(project.run("status", "--json").stdout)


def _insert(project: Project, name: str) -> None:
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                     "VALUES (%s, 't', true)", (name,))


def _rows(project: Project) -> list[str]:
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        return [row[0] for row in conn.execute(
            "SELECT agent_name FROM agent_metrics ORDER BY agent_name")]


def _healthy_with(project: Project, rows: list[str]) -> None:
    status = _status(project)
    assert status["healthy"] is True, status
    assert _rows(project) == rows


def _listen_on(port: int) -> socket.socket:
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    return squatter


def _clear(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    """Exit `code`, a message with `words`, a hint, and no crash."""
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    for word in words:
        assert word in output, output
    assert "hint:" in result.stderr, output
    assert "Traceback" not in output and "unexpected error" not in output, output


def _spawn(project: Project, *args: str) -> subprocess.Popen[str]:
    """An install in its own process group, as a terminal would run it."""
    command = [sys.executable, str(project.path / "install.py"), "--full", "--mode", "native",
               "--data-dir", str(project.data_dir), "--port", str(project.port), *BINARIES,
               *args]
    return subprocess.Popen(command, cwd=project.path, env=project.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


# -- concurrent runs ------------------------------------------------------------------------
def test_two_full_runs_at_once_make_one_installation(project: Project) -> None:
    runs = [_spawn(project) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out + err
    waited = [err for _, err in outputs if "holds the lock" in err]
    assert len(waited) == 1 and "waiting" in waited[0]
    assert "Nothing to do" in next(out for out, err in outputs if "holds the lock" in err)
    assert len(list(project.path.glob(".env*"))) == 2  # .env and its lock, nothing else
    _insert(project, "after the race")
    _install(project)
    _healthy_with(project, ["after the race"])


# -- interrupted initdb --------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "kill-9"])
def test_interrupted_initdb_is_healed_by_a_rerun(project: Project, sig: signal.Signals) -> None:
    run = _spawn(project)
    _wait_for(project.data_dir / STAGING / "base")  # initdb is writing the cluster
    os.killpg(run.pid, sig)
    out, err = run.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert run.returncode == 130, out + err
        assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    else:
        assert run.returncode == -signal.SIGKILL
    assert not (project.data_dir / "pgdata" / "PG_VERSION").exists()  # never a fake cluster
    env = project.read_env()
    _install(project)
    assert project.read_env() == env  # the credentials written before initdb are kept
    assert not (project.data_dir / STAGING).exists()
    _insert(project, "after the interruption")
    _healthy_with(project, ["after the interruption"])


def _make_half_built(project: Project, keep_user_databases: bool) -> None:
    """What an interrupted initdb of an older installer left: no `postgres` database."""
    base = project.data_dir / "pgdata" / "base"
    for database in base.iterdir():
        if database.name == "5" or (int(database.name) >= 16384 and not keep_user_databases):
            shutil.rmtree(database)


def test_half_built_cluster_without_data_is_rebuilt(project: Project) -> None:
    _install(project)
    env = project.read_env()
    assert project.run("stop").returncode == 0
    _make_half_built(project, keep_user_databases=False)
    status = project.run("status")
    assert "half-built" in status.stdout and status.returncode != 0
    result = _install(project)
    assert "rebuilt the half-built cluster" in result.stdout
    assert project.read_env() == env
    _insert(project, "in the rebuilt cluster")
    _healthy_with(project, ["in the rebuilt cluster"])


def test_half_built_cluster_with_data_is_kept_and_explained(project: Project) -> None:
    _install(project)
    assert project.run("stop").returncode == 0
    _make_half_built(project, keep_user_databases=True)
    result = project.install(*BINARIES)
    _clear(result, 5, "half-built", "holds databases", "mv ")
    assert any(int(p.name) >= 16384 for p in (project.data_dir / "pgdata" / "base").iterdir())


# -- our own server without its postmaster.pid -----------------------------------------------
def test_server_without_postmaster_pid_is_still_ours(project: Project) -> None:
    _install(project)
    _insert(project, "kept")
    pidfile = project.data_dir / "pgdata" / "postmaster.pid"
    pid = int(pidfile.read_text().split("\n", 1)[0])
    pidfile.unlink()
    status = _status(project)
    assert status["healthy"] is True and status["server"]["running"] is True
    assert status["server"]["pid"] == pid
    result = _install(project)
    assert "Nothing to do" in result.stdout, result.stdout + result.stderr
    assert "another program" not in result.stdout + result.stderr
    assert project.read_env()["PGPORT"] == str(project.port)
    stopped = project.run("stop")
    assert stopped.returncode == 0 and "postmaster.pid was missing" in stopped.stdout
    wait_gone(pid)
    assert project.run("start").returncode == 0
    _healthy_with(project, ["kept"])


# -- ports ---------------------------------------------------------------------------------
def test_start_with_its_port_taken_fails_clearly_and_moves_nothing(project: Project) -> None:
    _install(project)
    _insert(project, "kept")
    assert project.run("stop").returncode == 0
    env = (project.path / ".env").read_text()
    conf = (project.data_dir / "pgdata" / "learning_installer.conf").read_text()
    squatter = _listen_on(project.port)
    try:
        _clear(project.run("start"), 4, f"port {project.port}", "another program", "--full")
    finally:
        squatter.close()
    assert (project.path / ".env").read_text() == env  # only install moves ports
    assert (project.data_dir / "pgdata" / "learning_installer.conf").read_text() == conf
    assert project.run("start").returncode == 0
    _healthy_with(project, ["kept"])


def test_port_taken_while_installing_moves_to_the_next_free_one(project: Project) -> None:
    squatted: list[socket.socket] = []

    def squat_when_initdb_runs() -> None:  # after the port was checked, before the start
        _wait_for(project.data_dir / STAGING)
        squatted.append(_listen_on(int(read_env(project.path / ".env")["PGPORT"])))

    racer = threading.Thread(target=squat_when_initdb_runs, daemon=True)
    racer.start()
    try:  # no --port: the installer chose it, so it may move it
        result = project.run("--full", "--mode", "native", "--data-dir", str(project.data_dir),
                             *BINARIES)
        racer.join(timeout=10)
        assert result.returncode == 0, result.stdout + result.stderr
        taken = squatted[0].getsockname()[1]
        assert f"port {taken} was taken by another program during the install" in result.stderr
        port = int(project.read_env()["PGPORT"])
        assert port != taken
        assert f":{port}/" in (project.path / ".mcp.json").read_text()
        _healthy_with(project, [])
    finally:
        for sock in squatted:
            sock.close()


# -- files in the wrong state ----------------------------------------------------------------
def test_pgpass_that_is_a_directory_is_named(project: Project) -> None:
    _install(project)
    pgpass = project.home / ".pgpass"
    pgpass.unlink()
    pgpass.mkdir()
    _clear(project.install(*BINARIES), 4, str(pgpass), "not a file")
    _clear(project.run("uninstall"), 4, str(pgpass))
    pgpass.rmdir()
    _install(project)
    _healthy_with(project, [])


def test_immutable_env_is_named(project: Project) -> None:
    _install(project)
    env = project.path / ".env"
    env.write_text(env.read_text().replace("LEARNING_INSTALL_HOOKS=true\n", ""))
    if subprocess.run(["chattr", "+i", str(env)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        _clear(project.install(*BINARIES), 4, str(env), "chattr -i")
    finally:
        subprocess.run(["chattr", "-i", str(env)], check=True)
    _install(project)
    _healthy_with(project, [])


def test_instance_dir_out_of_the_servers_reach_is_named(project: Project) -> None:
    _install(project)
    _insert(project, "kept")
    assert project.run("stop").returncode == 0
    project.data_dir.chmod(0)
    try:
        _clear(project.run("start"), 4, str(project.data_dir), "chmod 700")
        doctor = project.run("doctor")
        assert str(project.data_dir) in doctor.stdout and "chmod 700" in doctor.stdout
        assert "repairs exactly this" not in doctor.stdout
        _clear(project.install(*BINARIES), 4, str(project.data_dir))
    finally:
        project.data_dir.chmod(0o700)
    assert project.run("start").returncode == 0
    _healthy_with(project, ["kept"])


def test_garbage_in_auto_conf_shows_the_servers_words(project: Project) -> None:
    _install(project)
    _insert(project, "kept")
    assert project.run("stop").returncode == 0
    auto_conf = project.data_dir / "pgdata" / "postgresql.auto.conf"
    original = auto_conf.read_text()
    auto_conf.write_text(original + "this is = not ' valid\n")
    _clear(project.run("start"), 5, "configuration has an error", "postgresql.auto.conf")
    doctor = project.run("doctor")
    assert "postgresql.auto.conf" in doctor.stdout
    assert "repairs exactly this" not in doctor.stdout
    _clear(project.install(*BINARIES), 5, "postgresql.auto.conf")
    auto_conf.write_text(original)
    _install(project)
    _healthy_with(project, ["kept"])


# -- hostile input ---------------------------------------------------------------------------
@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "a command hidden in a setting ran"


@pytest.mark.parametrize("template", ["{base} $(touch {mark})", "{base} `touch {mark}`",
                                      "{base}'\nlisten_addresses = '*"])
def test_data_dir_a_shell_or_config_would_read_as_code_is_refused(
        project: Project, marker: Path, template: str) -> None:
    hostile = template.format(base=project.data_dir, mark=marker)
    result = project.run("--full", "--mode", "native", "--data-dir", hostile, *BINARIES)
    _clear(result, 3, "data directory", "nothing was changed")
    from_env = project.run("--full", "--mode", "native", *BINARIES, LEARNING_DATA_DIR=hostile)
    _clear(from_env, 3, "data directory (from environment)")
    assert not Path(hostile).exists() and not project.data_dir.exists()
    assert not (project.path / ".env").exists()


def test_data_dir_with_a_quote_and_spaces_is_quoted_safely(project: Project,
                                                           shared_tmp: Path) -> None:
    project.data_dir = shared_tmp / f"o'brien's data {free_port()}"
    try:
        _install(project)
        with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        _healthy_with(project, [])
    finally:
        stop_instance(project.data_dir)


def test_hostile_host_never_reaches_the_server_config(project: Project) -> None:
    for host in ("127.0.0.1,0.0.0.0", "127.0.0.1'\nlisten_addresses='*"):
        _clear(project.install(*BINARIES, LEARNING_HOST=host), 3, "host")
    assert not project.data_dir.exists()


def test_duplicate_installer_key_in_env_is_refused(project: Project) -> None:
    _install(project)
    env = project.path / ".env"
    text = env.read_text()
    env.write_text(text + "PGPORT=1\n")
    first = next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith("PGPORT="))
    last = len(text.splitlines()) + 1
    for args in (("status",), ("--full",)):
        _clear(project.run(*args), 3, "PGPORT is set twice", f"{env}:{first}", f"{env}:{last}")
    assert env.read_text() == text + "PGPORT=1\n"  # nothing rewritten
    env.write_text(text)
    _healthy_with(project, [])
