"""Shared fixtures: real PostgreSQL clusters (system 15 and embedded 16), temp projects, temp HOME.

Every cluster lives under a world-traversable temp directory (the server runs as an
unprivileged user when the tests run as root), listens on a free port, and is stopped at the
end of the session, or by the next session when this one is killed (tests/sessions.py).
Tests that need a database get a fresh one in a shared cluster.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from installer.backends.native import NativeBackend
from installer.binaries import PgBinaries, embedded_binaries, system_binaries
from installer.credentials import ConnInfo
from tests import sessions
from tests.sessions import wait_gone

pytest_plugins = ["tests.required_areas"]

REPO = Path(__file__).resolve().parent.parent
SERVICE_USER = "learning-pg"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def shared_tmp() -> Iterator[Path]:
    """A temp directory every user can traverse (pytest's tmp_path is private to root), marked
    as this session's; first, what sessions that died left running is stopped and removed."""
    sessions.sweep()
    path = Path(tempfile.mkdtemp(prefix=sessions.PREFIX))
    path.chmod(0o755)
    sessions.claim(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def binaries_for(kind: str) -> PgBinaries:
    found = system_binaries() if kind == "system" else embedded_binaries()
    if found is None:
        pytest.skip(f"no {kind} PostgreSQL binaries on this machine")
    return found


@dataclass
class Cluster:
    backend: NativeBackend
    admin: ConnInfo

    @property
    def has_pgvector(self) -> bool:
        return self.backend.binaries.has_pgvector

    def create_database(self) -> ConnInfo:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(**self.admin.kwargs(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.admin.to(dbname=name)

    def drop_database(self, conn: ConnInfo) -> None:
        with psycopg.connect(**self.admin.kwargs(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(conn.dbname)))


def start_cluster(base: Path, kind: str) -> Cluster:
    password = secrets.token_urlsafe(16)
    backend = NativeBackend(
        instance_dir=base / f"cluster-{kind}-{uuid.uuid4().hex[:6]}", binaries=binaries_for(kind),
        port=free_port(), host="127.0.0.1", admin_user="postgres", admin_password=password,
        service_user_name=SERVICE_USER, health_timeout=60, rebuilt_from_env=False)
    backend.initialise()
    backend.start()
    return Cluster(backend, backend.admin_conn())


@pytest.fixture(scope="session", params=["system", "embedded"])
def cluster(request: pytest.FixtureRequest, shared_tmp: Path) -> Iterator[Cluster]:
    """A running cluster of each kind: system PostgreSQL 15 (no pgvector), embedded 16."""
    started = start_cluster(shared_tmp, request.param)
    yield started
    started.backend.stop()


@pytest.fixture
def database(cluster: Cluster) -> Iterator[ConnInfo]:
    """A fresh, empty database in the session's cluster (admin credentials)."""
    conn = cluster.create_database()
    yield conn
    cluster.drop_database(conn)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp HOME, so ~/.pgpass and friends never touch the real one."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv("PGPASSFILE", raising=False)
    return path


@dataclass
class Project:
    """A copy of the checkout in a temp dir, with its own HOME, data dir and port."""

    path: Path
    home: Path
    data_dir: Path
    port: int

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LEARNING_", "PG", "DATABASE_URL"))}
        env.update(HOME=str(self.home), NO_COLOR="1", **extra)
        return env

    def run(self, *args: str, check: bool = False, timeout: float = 300,
            **env: str) -> subprocess.CompletedProcess[str]:
        """`python install.py ARGS` in this project, without a terminal on stdin."""
        result = subprocess.run(
            [sys.executable, str(self.path / "install.py"), *args], cwd=self.path,
            env=self.env(**env), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"install.py {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def install(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("--full", "--mode", "native", "--data-dir", str(self.data_dir),
                        "--port", str(self.port), *args, **env)

    def read_env(self) -> dict[str, str]:
        from installer.envfile import read_env

        return read_env(self.path / ".env")


def make_project(base: Path, shared_tmp: Path) -> Project:
    path = base / "project"
    path.mkdir()
    shutil.copy2(REPO / "install.py", path / "install.py")
    shutil.copy2(REPO / "pyproject.toml", path / "pyproject.toml")
    shutil.copy2(REPO / ".gitattributes", path / ".gitattributes")
    shutil.copytree(REPO / "installer", path / "installer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "sql", path / "sql")
    shutil.copytree(REPO / "profiles", path / "profiles")
    home = base / "home"
    home.mkdir(exist_ok=True)
    data_dir = shared_tmp / f"data-{uuid.uuid4().hex[:8]}"
    return Project(path, home, data_dir, free_port())


@pytest.fixture
def project(tmp_path: Path, shared_tmp: Path) -> Iterator[Project]:
    proj = make_project(tmp_path, shared_tmp)
    yield proj
    stop_instance(proj.data_dir)


def stop_instance(instance_dir: Path) -> None:
    """Stop whatever server a test left running in `instance_dir` (immediate shutdown)."""
    pid = sessions.stop_postmaster(instance_dir / "pgdata" / "postmaster.pid")
    if pid is not None:
        wait_gone(pid)
