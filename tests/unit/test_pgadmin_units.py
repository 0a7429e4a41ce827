"""pgAdmin's registration and the compose file, without a server or an engine."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import yaml

from installer.backends.docker import docker_spec
from installer.compose import compose_env, render
from installer.config import resolve_settings
from installer.credentials import ConnInfo, Tls
from installer.pgadmin.registration import FIRST_PORT, Login, choose_port, write_files
from installer.ports import port_is_free


def test_login_is_generated_once_then_kept() -> None:
    new = Login.from_env({})
    assert new.email.endswith("@example.com") and len(new.password) >= 16
    kept = Login.from_env(new.env_values(5050))
    assert kept == new


def test_storage_dir_is_pgadmins_name_for_the_user() -> None:
    assert Login("learner-ab12@example.com", "x").storage_dir == "learner-ab12_example.com"
    assert Login("1st@example.com", "x").storage_dir == "pga_user_1st_example.com"


def test_port_is_the_first_free_from_5050_unless_the_recorded_one_is_ours_or_free() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        assert choose_port(taken, taken) == taken  # our own pgAdmin holds it
        moved = choose_port(taken, None)
        assert moved != taken and moved >= FIRST_PORT and port_is_free(moved)
    first = choose_port(None, None)
    assert first >= FIRST_PORT and all(not port_is_free(p) for p in range(FIRST_PORT, first))


def test_servers_json_has_no_password_and_pgpass_is_private(tmp_path: Path) -> None:
    conn = ConnInfo("db", 5432, "learning_system", "learning", "s3cret:pw")
    servers, pgpass = write_files(tmp_path / ".pgadmin", "db", 5432, conn)
    server = json.loads(servers.read_text())["Servers"]["1"]
    assert "s3cret" not in servers.read_text()
    assert server["MaintenanceDB"] == "learning_system"
    # no TLS configured (native and docker modes): libpq's prefer, as before TLS was a setting
    assert server["ConnectionParameters"] == {"sslmode": "prefer", "passfile": "/pgpass"}
    assert pgpass.read_text() == "db:5432:*:learning:s3cret\\:pw\n"
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600


def test_servers_json_follows_the_connections_tls(tmp_path: Path) -> None:
    """pgAdmin (server mode) reads file parameters inside the user's storage folder: a local
    pgAdmin gets copies there; a container, which sees only its mounts, gets the sslmode."""
    files = {name: tmp_path / f"{name}.pem" for name in ("sslrootcert", "sslcert", "sslkey")}
    for name, path in files.items():
        path.write_text(f"-----BEGIN {name}-----\n")
    tls = Tls("verify-full", *(str(path) for path in files.values()))
    conn = ConnInfo("db.example.com", 5432, "learning_system", "learning", "pw", tls)
    storage = tmp_path / "data" / "storage" / "learner_example.com"

    servers, _ = write_files(tmp_path / ".pgadmin", conn.host, conn.port, conn, storage)
    params = json.loads(servers.read_text())["Servers"]["1"]["ConnectionParameters"]
    assert params == {"sslmode": "verify-full", "passfile": "/pgpass",
                      "sslrootcert": "/sslrootcert", "sslcert": "/sslcert", "sslkey": "/sslkey"}
    for name, path in files.items():
        assert (storage / name).read_bytes() == path.read_bytes()
        assert stat.S_IMODE((storage / name).stat().st_mode) == 0o600
    assert (storage / "pgpass").read_text() == "db.example.com:5432:*:learning:pw\n"

    servers, _ = write_files(tmp_path / "container", conn.host, conn.port, conn)
    params = json.loads(servers.read_text())["Servers"]["1"]["ConnectionParameters"]
    assert params == {"sslmode": "verify-full", "passfile": "/pgpass"}

    # libpq's "system" is no file: passed as it is; the dropped client key leaves storage
    system = conn.to(tls=Tls("verify-full", "system"))
    for storage_dir in (storage, None):
        servers, _ = write_files(tmp_path / ".pgadmin", system.host, 5432, system, storage_dir)
        params = json.loads(servers.read_text())["Servers"]["1"]["ConnectionParameters"]
        assert params == {"sslmode": "verify-full", "passfile": "/pgpass",
                          "sslrootcert": "system"}
    assert sorted(p.name for p in storage.iterdir()) == ["pgpass"]


def test_compose_file_has_a_tools_profile_loopback_ports_and_no_secret(tmp_path: Path) -> None:
    settings = resolve_settings(tmp_path, {}, environ={})
    spec = docker_spec(settings)
    values, login = compose_env(spec, settings, {})
    text = render(spec, settings, login)
    for key in ("LEARNING_ADMIN_PASSWORD", "PGPASSWORD", "LEARNING_AGENT_PASSWORD",
                "PGADMIN_PASSWORD"):
        assert values[key] not in text, key
    document = yaml.safe_load(text)
    pgadmin = document["services"]["pgadmin"]
    assert pgadmin["profiles"] == ["tools"]
    assert "profiles" not in document["services"]["postgres"]
    assert pgadmin["environment"]["PGADMIN_DEFAULT_PASSWORD"].startswith("${PGADMIN_PASSWORD")
    assert all(port.startswith("127.0.0.1:") for service in document["services"].values()
               for port in service["ports"])
    assert document["networks"]["default"]["name"] == spec.network
