"""External mode against a server set up like a managed one: TLS required by pg_hba.conf
(`hostssl` only), a certificate from a self-made CA, a non-superuser admin and an application
database beside ours. Every connection the installer, its tools and the MCP entry make must
use TLS and verify the server (verify-full); a wrong CA makes `doctor` fail, naming it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from installer.credentials import ConnInfo, Tls
from tests.conftest import Cluster, Project, start_cluster
from tests.integration.cli_helpers import Names
from tests.integration.test_mcp_readonly import _ask as npx_ask
from tests.integration.test_mcp_readonly import _npx_ready

CLIENT_CERT_DATABASE = "learn_clientcert"  # its connections must show a client certificate
HBA_TLS_ONLY = f"""\
local     all  all                scram-sha-256
hostssl   {CLIENT_CERT_DATABASE}  all  127.0.0.1/32  scram-sha-256  clientcert=verify-ca
hostssl   all  all  127.0.0.1/32  scram-sha-256
hostssl   all  all  ::1/128       scram-sha-256
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return cert, key


def make_cert(directory: Path, ca: tuple[Path, Path], name: str, extensions: str
              ) -> tuple[Path, Path]:
    """A certificate and key (mode 0600) signed by `ca`."""
    cert, key, csr = directory / f"{name}.crt", directory / f"{name}.key", directory / "x.csr"
    (directory / "x.ext").write_text(extensions)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}", cwd=directory)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile",
             str(directory / "x.ext"), cwd=directory)
    key.chmod(0o600)
    return cert, key


@dataclass
class TlsServer:
    cluster: Cluster
    superuser: ConnInfo  # over TLS (the server accepts nothing else on TCP)
    ca: Path
    wrong_ca: Path  # another CA's certificate: it did not sign the server's
    client: tuple[Path, Path]  # a client certificate and key the CA signed

    @property
    def port(self) -> int:
        return self.superuser.port


@pytest.fixture(scope="module")
def tls_server(shared_tmp: Path) -> Iterator[TlsServer]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make the test's CA")
    certs = shared_tmp / f"tls-{uuid.uuid4().hex[:6]}"
    certs.mkdir()
    ca = make_ca(certs, "test-ca")
    wrong_ca, _ = make_ca(certs, "other-ca")
    server_cert, server_key = make_cert(certs, ca, "server", (
        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n"))
    client = make_cert(certs, ca, "client", "extendedKeyUsage=clientAuth\n")
    cluster = start_cluster(shared_tmp, "system")
    try:
        pgdata = cluster.backend.pgdata
        owner = pgdata.stat()
        for source in (server_cert, server_key, ca[0]):
            target = pgdata / source.name
            shutil.copy(source, target)
            target.chmod(0o600)
            os.chown(target, owner.st_uid, owner.st_gid)
        with (pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                       "ssl_ca_file = 'test-ca.crt'\n")
        (pgdata / "pg_hba.conf").write_text(HBA_TLS_ONLY)
        with psycopg.connect(**cluster.admin.kwargs(), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
        superuser = cluster.admin.to(tls=Tls(sslmode="verify-full", sslrootcert=str(ca[0])))
        deadline = time.monotonic() + 10
        while True:  # the reload is asynchronous: wait until clear text is refused
            try:
                psycopg.connect(**cluster.admin.kwargs(sslmode="disable")).close()
            except psycopg.OperationalError as exc:
                assert "no encryption" in str(exc)
                break
            assert time.monotonic() < deadline, "the server still accepts clear text"
            time.sleep(0.1)
        psycopg.connect(**superuser.kwargs()).close()
        yield TlsServer(cluster, superuser, ca[0], wrong_ca, client)
    finally:
        cluster.backend.stop()


@dataclass
class Team:
    """A non-superuser admin and the names of this test's roles and database."""

    admin: str
    admin_password: str
    names: Names


@pytest.fixture
def team(tls_server: TlsServer) -> Team:
    tag = uuid.uuid4().hex[:8]
    made = Team(f"teamadmin_{tag}", secrets.token_urlsafe(16), Names.fresh())
    with psycopg.connect(**tls_server.superuser.kwargs(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
            sql.Identifier(made.admin), sql.Literal(made.admin_password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(  # the application's
            sql.Identifier(f"app_{tag}"), sql.Identifier(made.admin)))
    return made


def admin_url(server: TlsServer, team: Team, query: str) -> str:
    return f"postgresql://{team.admin}@127.0.0.1:{server.port}/postgres?{query}"


def client_certificate_env(server: TlsServer, team: Team) -> tuple[dict[str, str], dict[str, str]]:
    """The names of an install into the database that demands a client certificate, and the
    whole environment of its first run (verify-full, the client certificate and key)."""
    cert, key = server.client
    names = team.names.env() | {"LEARNING_DATABASE": CLIENT_CERT_DATABASE}
    return names, {"LEARNING_ADMIN_URL": admin_url(server, team, f"sslrootcert={server.ca}"),
                   "LEARNING_ADMIN_PASSWORD": team.admin_password,
                   "LEARNING_SSLCERT": str(cert), "LEARNING_SSLKEY": str(key), **names}


async def _mcp_query(project: Project, statement: str) -> tuple[bool, str]:
    """One `query` through the learning-db entry of .mcp.json, started as a client would."""
    entry = json.loads((project.path / ".mcp.json").read_text())["mcpServers"]["learning-db"]
    params = StdioServerParameters(
        command=entry["command"], args=entry["args"], cwd=str(project.home),
        env={"HOME": str(project.home), "PATH": os.environ["PATH"], **entry.get("env", {})})
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("query", {"sql": statement})
        return bool(result.is_error), "".join(getattr(p, "text", "") for p in result.content)


def mcp_query(project: Project, statement: str) -> tuple[bool, str]:
    return asyncio.run(asyncio.wait_for(_mcp_query(project, statement), 120))


def test_verify_full_reaches_env_mcp_tools_and_doctor_names_a_wrong_ca(
        project: Project, tls_server: TlsServer, team: Team) -> None:
    certs = project.path / "certs"
    certs.mkdir()
    ca = certs / "provider-ca.pem"
    shutil.copy(tls_server.ca, ca)
    env = {"LEARNING_ADMIN_URL": admin_url(
               tls_server, team, "sslmode=verify-full&sslrootcert=certs/provider-ca.pem"),
           "LEARNING_ADMIN_PASSWORD": team.admin_password, **team.names.env()}
    result = project.run("--full", "--mode", "external", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unencrypted" not in result.stdout + result.stderr  # no warning: TLS is verified
    assert ("TLS: sslmode verify-full: the server's certificate and host name are checked "
            f"against {certs / 'provider-ca.pem'}") in result.stdout

    # .env records TLS under libpq's names, the CA's path made absolute; DATABASE_URL has it
    dotenv = project.read_env()
    assert dotenv["PGSSLMODE"] == "verify-full"
    assert dotenv["PGSSLROOTCERT"] == str(ca)
    query = parse_qs(urlsplit(dotenv["DATABASE_URL"]).query)
    assert query == {"sslmode": ["verify-full"], "sslrootcert": [str(ca)]}
    with psycopg.connect(dotenv["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone() == (True,)

    # the MCP entry carries TLS and no password, and connects through a real MCP client
    text = (project.path / ".mcp.json").read_text()
    assert dotenv["LEARNING_AGENT_PASSWORD"] not in text
    url = json.loads(text)["mcpServers"]["learning-db"]["args"][-1]
    assert url.startswith(f"postgresql://{team.names.agent}@127.0.0.1:{tls_server.port}/")
    assert parse_qs(urlsplit(url).query) == query
    failed, answer = mcp_query(project, "SELECT ssl AS tls, current_user AS who FROM pg_stat_ssl "
                               "WHERE pid = pg_backend_pid()")
    assert not failed, answer
    assert "true" in answer.lower() and team.names.agent in answer

    # later runs need only .env: status, a re-run, backup (pg_dump), export and import
    status = project.run("status", "--json", **team.names.env())
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["healthy"] is True and report["server"]["tls"].startswith("sslmode verify-full")
    again = project.run("--full", "--json", **team.names.env())
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["changes"] == 0
    backup = project.run("backup", **team.names.env())
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert [p.suffix for p in (project.path / "backups").iterdir()] == [".dump"]
    exported = project.run("export", **team.names.env())
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert (project.path / "exports" / "manifest.json").exists()
    imported = project.run("import", **team.names.env())
    assert imported.returncode == 0, imported.stdout + imported.stderr

    healthy = project.run("doctor", **team.names.env())
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr

    # another CA's certificate in the file: doctor fails and says why
    shutil.copy(tls_server.wrong_ca, ca)
    doctor = project.run("doctor", **team.names.env())
    assert doctor.returncode != 0, doctor.stdout + doctor.stderr
    said = doctor.stdout + doctor.stderr
    assert "certificate verify failed" in said
    assert f"checks the server's certificate against the CA certificate(s) in {ca}" in said
    assert "run `python install.py --full`" not in said  # a repair would not help
    status = project.run("status", **team.names.env())
    assert status.returncode == 5 and "certificate verify failed" in status.stderr
    failed, answer = mcp_query(project, "SELECT 1")
    assert failed and "certificate verify failed" in answer, answer
    started = time.monotonic()
    repair = project.run("--full", **team.names.env())
    assert repair.returncode == 5 and "certificate verify failed" in repair.stderr
    assert time.monotonic() - started < 8  # stops at once: waiting would not help


def test_missing_root_certificate_is_refused_naming_the_path(
        project: Project, tls_server: TlsServer, team: Team) -> None:
    env = {"LEARNING_ADMIN_URL": admin_url(tls_server, team, "sslrootcert=certs/missing.pem"),
           "LEARNING_ADMIN_PASSWORD": team.admin_password, **team.names.env()}
    result = project.run("--full", "--mode", "external", **env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert str(project.path / "certs" / "missing.pem") in result.stderr
    assert "sslrootcert from LEARNING_ADMIN_URL" in result.stderr
    assert not (project.path / ".env").exists()


def test_clear_text_allowed_is_warned_about(
        project: Project, tls_server: TlsServer, team: Team) -> None:
    """sslmode prefer still uses TLS where the server has it, but could fall back to clear
    text and checks no certificate: the install says so."""
    env = {"LEARNING_ADMIN_URL": admin_url(tls_server, team, "sslmode=prefer"),
           "LEARNING_ADMIN_PASSWORD": team.admin_password, **team.names.env()}
    result = project.run("--full", "--mode", "external", "--mcp-clients", "", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sslmode prefer (from LEARNING_ADMIN_URL)" in result.stdout + result.stderr
    assert "verify-full" in result.stdout + result.stderr
    assert project.read_env()["PGSSLMODE"] == "prefer"


def test_client_certificate_reaches_pg_dump_and_the_mcp_entry(
        project: Project, tls_server: TlsServer, team: Team) -> None:
    """The learning database's pg_hba.conf line demands a client certificate, so every
    connection that works (the installer's, pg_dump's, the MCP entry's) presented it."""
    cert, key = tls_server.client
    names, env = client_certificate_env(tls_server, team)
    result = project.run("--full", "--mode", "external", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    dotenv = project.read_env()
    assert (dotenv["PGSSLMODE"], dotenv["PGSSLCERT"], dotenv["PGSSLKEY"]) == (
        "verify-full", str(cert), str(key))
    without = {k: v for k, v in conninfo_to_dict(dotenv["DATABASE_URL"]).items()
               if k not in ("sslcert", "sslkey")}
    with pytest.raises(psycopg.OperationalError, match="certificate"):
        psycopg.connect(**without, sslcert="/nonexistent.crt").close()  # not ~/.postgresql's
    with psycopg.connect(dotenv["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone() == (True, "/CN=client")

    backup = project.run("backup", **names)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    failed, answer = mcp_query(project, "SELECT client_dn FROM pg_stat_ssl "
                               "WHERE pid = pg_backend_pid()")
    assert not failed and "/CN=client" in answer, answer

    env_file = project.path / ".env"  # without the certificate, status says what is missing
    env_file.write_text("".join(line for line in env_file.read_text().splitlines(True)
                                if not line.startswith(("PGSSLCERT=", "PGSSLKEY="))))
    status = project.run("status", **names)
    assert status.returncode == 5, status.stdout + status.stderr
    assert "the server wants a client certificate" in status.stderr, status.stderr


@pytest.mark.required_area("mcp")
def test_npx_server_postgres_entry_verifies_the_server_too(
        project: Project, tls_server: TlsServer, team: Team) -> None:
    """node-postgres reads sslmode and sslrootcert from the URL the installer writes."""
    reason = _npx_ready()
    if reason:
        pytest.skip(reason)
    ca = project.path / "ca.pem"
    shutil.copy(tls_server.ca, ca)
    env = {"LEARNING_ADMIN_URL": admin_url(tls_server, team, f"sslrootcert={ca}"),
           "LEARNING_ADMIN_PASSWORD": team.admin_password, "LEARNING_MCP_SERVER": "npx",
           **team.names.env()}
    result = project.run("--full", "--mode", "external", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    ssl_query = "SELECT ssl, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    [(failed, text)] = asyncio.run(asyncio.wait_for(npx_ask(project, [ssl_query]), 120))
    assert not failed and "true" in text and team.names.agent in text, text

    shutil.copy(tls_server.wrong_ca, ca)
    [(failed, text)] = asyncio.run(asyncio.wait_for(npx_ask(project, [ssl_query]), 120))
    assert failed and "certificate" in text, text
