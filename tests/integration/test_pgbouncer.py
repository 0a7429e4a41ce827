"""External mode through a real PgBouncer in transaction mode (Debian's pgbouncer package).

PgBouncer ends TLS itself (its certificate is what the installer verifies) and talks to the
server in clear text on 127.0.0.1. The server's own defaults differ from the exchange's fixed
text forms (time zone, float digits), so a setting lost between transactions on the pooler
shows as changed rows.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from installer import db
from installer.credentials import ConnInfo, Tls
from installer.mcp_server.database import Limits, read
from installer.migrations import Migrator
from installer.modules import select_modules
from installer.service_user import ensure_service_user
from tests.conftest import REPO, SERVICE_USER, Cluster, Project, free_port, start_cluster
from tests.integration.exchange_helpers import export, migrate, seed
from tests.integration.test_external_tls import make_ca, make_cert

pytestmark = pytest.mark.required_area("pgbouncer")

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
TABLES = ("agent_metrics", "interaction_logs", "model_performance", "task_embeddings")


@dataclass
class Pooler:
    port: int
    log: Path
    ca: Path  # signed PgBouncer's certificate

    def via(self, info: ConnInfo) -> ConnInfo:
        return info.to(port=self.port, tls=Tls(sslmode="verify-full", sslrootcert=str(self.ca)))

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


@pytest.fixture(scope="module")
def server(shared_tmp: Path) -> Iterator[Cluster]:
    """Its own cluster, whose defaults are not the exchange's (UTC, shortest exact floats)."""
    cluster = start_cluster(shared_tmp, "embedded")
    with psycopg.connect(**cluster.admin.kwargs(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET timezone = 'Pacific/Chatham'")
        conn.execute("ALTER SYSTEM SET extra_float_digits = -3")
        conn.execute("SELECT pg_reload_conf()")
    yield cluster
    cluster.backend.stop()


@pytest.fixture(scope="module")
def pooler(server: Cluster, shared_tmp: Path) -> Iterator[Pooler]:
    """PgBouncer in front of `server`: pool_mode = transaction, every database through the
    `*` fallback, SCRAM for every role looked up with auth_query as the superuser."""
    if not os.access(PGBOUNCER, os.X_OK) or shutil.which("openssl") is None:
        pytest.skip("pgbouncer or openssl is not installed (scripts/test.sh installs them as "
                    "root with apt)")
    user = ensure_service_user(SERVICE_USER)  # PgBouncer refuses to run as root
    folder = shared_tmp / f"pgbouncer-{uuid.uuid4().hex[:6]}"
    folder.mkdir(mode=0o700)
    ca = make_ca(folder, "pooler-ca")
    make_cert(folder, ca, "pooler", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    port = free_port()
    admin = server.admin
    (folder / "userlist.txt").write_text(f'"{admin.user}" "{admin.password}"\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n* = host={admin.host} port={admin.port}\n\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {folder}/userlist.txt\n"
        f"auth_user = {admin.user}\nadmin_users = {admin.user}\n"
        "pool_mode = transaction\ndefault_pool_size = 5\n"
        "ignore_startup_parameters = extra_float_digits\n"
        f"client_tls_sslmode = require\nclient_tls_cert_file = {folder}/pooler.crt\n"
        f"client_tls_key_file = {folder}/pooler.key\n"
        f"logfile = {folder}/pgbouncer.log\n")
    for path in (folder, *folder.iterdir()):
        user.own(path)
    (folder / "pgbouncer.log").touch()
    user.own(folder / "pgbouncer.log")
    as_user = {"user": user.uid, "group": user.gid, "extra_groups": []} if user.name else {}
    process = subprocess.Popen([PGBOUNCER, str(folder / "pgbouncer.ini")], cwd="/",
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **as_user)
    started = Pooler(port, folder / "pgbouncer.log", ca[0])
    try:
        _wait_listening(port, process, started)
        yield started
    finally:
        process.terminate()
        process.wait(10)


def _wait_listening(port: int, process: subprocess.Popen[bytes], pooler: Pooler) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pgbouncer exited {process.returncode}:\n{pooler.log_tail()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"pgbouncer did not listen on {port}:\n{pooler.log_tail()}")


@pytest.fixture
def admin_env(server: Cluster, pooler: Pooler) -> dict[str, str]:
    """A non-superuser admin (CREATEDB, CREATEROLE) whose URL names the pooler."""
    name, password = f"dba_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    with psycopg.connect(**server.admin.kwargs(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)))
    tag = uuid.uuid4().hex[:8]
    return {"LEARNING_ADMIN_URL": f"postgresql://{name}@127.0.0.1:{pooler.port}/postgres"
                                  f"?sslmode=verify-full&sslrootcert={pooler.ca}",
            "LEARNING_ADMIN_PASSWORD": password, "LEARNING_DATABASE": f"learn_{tag}",
            "LEARNING_OWNER_ROLE": f"owner_{tag}", "LEARNING_AGENT_ROLE": f"agent_{tag}"}


def _exact_rows(info: ConnInfo, table: str) -> list[tuple[object, ...]]:
    """The rows in binary form (floats to the last bit, whatever the server's text settings),
    an embedding as real[] whether it is vector or the fallback."""
    with psycopg.connect(**info.kwargs()) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = %s ORDER BY ordinal_position", (table,))]
        columns = sql.SQL(", ").join(
            sql.SQL("{}::real[]").format(sql.Identifier(n)) if n == "embedding"
            else sql.Identifier(n) for n in names)
        with conn.cursor(binary=True) as cur:
            return cur.execute(sql.SQL("SELECT {} FROM {} ORDER BY id").format(
                columns, sql.Identifier(table))).fetchall()


def _advisory_locks(server: Cluster) -> int:
    with psycopg.connect(**server.admin.kwargs()) as conn:
        return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                            ).fetchone()[0]


def test_install_import_and_rerun_through_pgbouncer(
        project: Project, server: Cluster, pooler: Pooler, admin_env: dict[str, str],
        tmp_path: Path) -> None:
    # another machine's export, made through the pooler too
    source = pooler.via(server.create_database())
    seed(migrate(source, server), n=10)
    export(source, tmp_path / "exports")
    shutil.copytree(tmp_path / "exports", project.path / "exports")
    assert "2025-01-02 02:04:05.123456+00" in (  # UTC, not the server's Pacific/Chatham
        project.path / "exports" / "csv" / "agent_metrics.csv").read_text()

    first = project.run("--full", "--mode", "external", **admin_env)
    assert first.returncode == 0, first.stdout + first.stderr + pooler.log_tail()
    assert "Importing agent_metrics — 10 rows: 10 imported, 0 already present" in first.stdout
    dotenv = project.read_env()
    assert dotenv["PGPORT"] == str(pooler.port)  # clients go through the pooler too
    assert dotenv["PGSSLMODE"] == "verify-full"  # checking the pooler's certificate
    learning = ConnInfo("127.0.0.1", server.admin.port, dotenv["PGDATABASE"],
                        dotenv["PGUSER"], dotenv["PGPASSWORD"])
    for table in TABLES:  # every value arrived as it was, floats to the last bit
        assert _exact_rows(learning, table) == _exact_rows(source, table), table

    again = project.run("--full", "--json", **admin_env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["changes"] == 0
    imported = project.run("import", **admin_env)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "10 rows: 0 imported, 10 already present" in imported.stdout
    exported = project.run("export", "--json", **admin_env)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert json.loads(exported.stdout)["changed_files"] == []  # the same bytes as the source's
    status = project.run("status", "--json", **admin_env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["healthy"] is True
    assert _advisory_locks(server) == 0  # no lock left behind on a pooled server connection

    # the agent role's settings (ALTER ROLE … SET) hold on every pooled server connection
    agent = pooler.via(learning.to(user=admin_env["LEARNING_AGENT_ROLE"],
                                   password=dotenv["LEARNING_AGENT_PASSWORD"]))
    clients = [db.connect(agent, autocommit=True) for _ in range(3)]
    try:
        for conn in clients:
            conn.execute("BEGIN")  # three transactions at once: three server connections
            assert db.one(conn, "SELECT current_setting('statement_timeout'), "
                                "current_setting('default_transaction_read_only')") == ("30s", "on")
        for conn in clients:
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                             "VALUES ('agent', 'write', true)")
            conn.execute("ROLLBACK")
    finally:
        for conn in clients:
            conn.close()
    answer = read(agent, Limits(), "SELECT count(*) AS n FROM agent_metrics")  # the MCP server
    assert answer.rows == [{"n": 10}]
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
        psycopg.connect(**agent.kwargs(options="-c lock_timeout=2s"))  # the pre-push hook's way

    # the pooler keeps the agent's server connections; a non-superuser admin may not end them
    refused = project.run("uninstall", "--purge", "--yes", **admin_env)
    assert refused.returncode == 5 and "permission denied to terminate" in refused.stderr
    with psycopg.connect(**pooler.via(server.admin).to(dbname="pgbouncer").kwargs(),
                         autocommit=True) as console:  # what modes.md says to do
        console.execute(f"KILL {dotenv['PGDATABASE']}")
    purged = project.run("uninstall", "--purge", "--yes", **admin_env)
    assert purged.returncode == 0, purged.stdout + purged.stderr
    with psycopg.connect(**server.admin.kwargs()) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                            (dotenv["PGDATABASE"],)).fetchone() == (0,)


def test_concurrent_migrations_through_pgbouncer_apply_each_file_once(
        server: Cluster, pooler: Pooler, tmp_path: Path) -> None:
    (tmp_path / "sql" / "m").mkdir(parents=True)
    (tmp_path / "sql" / "m" / "module.yaml").write_text("description: test\n")
    for number in range(1, 4):  # enough statements to spread over the pool's connections
        (tmp_path / "sql" / "m" / f"00{number}_step.sql").write_text(
            f"SELECT pg_sleep(0.5);\nCREATE TABLE once_{number} (id int);\n")
    database = pooler.via(server.create_database())

    def migrate(_: int) -> int:
        with db.connect(database, autocommit=True) as conn:
            return len(Migrator(conn, select_modules(tmp_path / "sql", None)).migrate())

    with ThreadPoolExecutor(2) as pool:  # a run that fails (both applied a file) raises here
        applied = sorted(pool.map(migrate, range(2)))
    assert applied == [0, 3], pooler.log_tail()  # the other waited, then found nothing to do
    with psycopg.connect(**database.kwargs()) as conn:
        assert conn.execute("SELECT version FROM installer.schema_migrations ORDER BY 1"
                            ).fetchall() == [(1,), (2,), (3,)]
    assert _advisory_locks(server) == 0


_MIGRATE = """
import json, sys
from pathlib import Path
from installer.credentials import ConnInfo, Tls
from installer.migrations import migrate_all
login = json.loads(sys.argv[1])
migrate_all(ConnInfo(**login, tls=Tls("verify-full", sys.argv[3])), Path(sys.argv[2]))
"""


def test_a_killed_migration_run_leaves_no_lock_behind_on_the_pooler(
        server: Cluster, pooler: Pooler, tmp_path: Path) -> None:
    module = tmp_path / "sql" / "m"
    module.mkdir(parents=True)
    (module / "module.yaml").write_text("description: test\n")
    (module / "001_slow.sql").write_text("SELECT pg_sleep(20);\nCREATE TABLE t (id int);\n")
    database = pooler.via(server.create_database())
    login = {"host": database.host, "port": database.port, "dbname": database.dbname,
             "user": database.user, "password": database.password}
    run = subprocess.Popen([sys.executable, "-c", _MIGRATE, json.dumps(login),
                            str(tmp_path / "sql"), str(pooler.ca)], cwd=REPO)
    try:
        deadline = time.monotonic() + 15
        while _advisory_locks(server) == 0:  # the run holds the lock, then sleeps
            assert run.poll() is None and time.monotonic() < deadline, pooler.log_tail()
            time.sleep(0.1)
    finally:
        run.kill()
        run.wait(10)
    deadline = time.monotonic() + 10
    while _advisory_locks(server):  # PgBouncer closes the killed client's server connections
        assert time.monotonic() < deadline, "the killed run's lock is still held"
        time.sleep(0.1)
    (module / "001_slow.sql").write_text("CREATE TABLE t (id int);\n")  # never applied: editable
    with db.connect(database, autocommit=True) as conn:
        applied = Migrator(conn, select_modules(tmp_path / "sql", None)).migrate()
    assert [m.id for m in applied] == ["m/001_slow"]
