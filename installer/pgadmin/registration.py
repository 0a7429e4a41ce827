"""What every pgAdmin gets: a login, the learning server in servers.json and its password in
a pgpass file, and a port on 127.0.0.1. The files live in `<checkout>/.pgadmin/` (0700)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from installer.credentials import TLS_FILES, ConnInfo, Tls, new_password
from installer.errors import ServerError
from installer.fileutil import write_atomic
from installer.pgpass import pgpass_line
from installer.ports import next_free_port, port_is_free

EMAIL = "PGADMIN_EMAIL"
PASSWORD = "PGADMIN_PASSWORD"
PORT = "PGADMIN_PORT"
FIRST_PORT = 5050
SERVER_NAME = "learning"
PASSFILE = "/pgpass"  # in server mode pgAdmin reads it relative to the user's storage dir
START_TIMEOUT = 240.0  # the first start creates pgAdmin's configuration database: slow


@dataclass(frozen=True)
class Login:
    email: str
    password: str

    @classmethod
    def from_env(cls, recorded: Mapping[str, str]) -> Login:
        """The login .env holds, or a new one (the caller writes it to .env)."""
        return cls(recorded.get(EMAIL) or f"learner-{secrets.token_hex(3)}@example.com",
                   recorded.get(PASSWORD) or new_password())

    def env_values(self, port: int) -> dict[str, str]:
        return {EMAIL: self.email, PASSWORD: self.password, PORT: str(port)}

    @property
    def storage_dir(self) -> str:
        """pgAdmin's per-user storage folder name (its preprocess_username)."""
        name = self.email if self.email and not self.email[0].isdigit() \
            else "pga_user_" + self.email
        return name.replace("@", "_").replace("/", "slash").replace("\\", "slash")


def choose_port(wanted: int | None, ours_running_on: int | None) -> int:
    """The recorded port while it is ours or free, else the first free one from 5050."""
    if wanted and (wanted == ours_running_on or port_is_free(wanted)):
        return wanted
    return next_free_port(FIRST_PORT)


def tls_copies(tls: Tls) -> dict[str, Path]:
    """Name in pgAdmin's storage folder -> the TLS file (root certificate, client certificate,
    key) it gets a copy of. In server mode pgAdmin reads a file parameter inside the user's
    storage folder, as it does the pgpass file, so a path of this machine would not be found;
    libpq's sslrootcert `system` is no file and pgAdmin passes it on as it is."""
    return {name: Path(value) for name, value in tls.params().items()
            if name in TLS_FILES and value != "system"}


def servers_json(host: str, port: int, conn: ConnInfo, tls_in_storage: bool) -> str:
    """The learning server for `setup.py load-servers`; no password in it. Its libpq
    parameters: the connection's sslmode, `prefer` where it sets none (native and docker
    modes, whose server offers no TLS); the TLS files only when `tls_in_storage` (copied
    there by write_files): a container sees only what is mounted."""
    params = {"sslmode": conn.tls.sslmode or "prefer", "passfile": PASSFILE}
    if conn.tls.sslrootcert == "system":
        params["sslrootcert"] = "system"
    if tls_in_storage:
        params |= {name: f"/{name}" for name in tls_copies(conn.tls)}
    server = {"Name": SERVER_NAME, "Group": "Servers", "Host": host, "Port": port,
              "MaintenanceDB": conn.dbname, "Username": conn.user,
              "ConnectionParameters": params, "DBRestriction": conn.dbname,
              "Comment": "registered by the learning installer"}
    return json.dumps({"Servers": {"1": server}}, indent=2) + "\n"


def write_files(folder: Path, host: str, port: int, conn: ConnInfo,
                storage: Path | None = None) -> tuple[Path, Path]:
    """servers.json and pgpass (0600) in `folder`; returns their paths. `storage`: the pgAdmin
    user's storage folder, where a pgAdmin on this machine reads the files servers.json names:
    the pgpass file and the TLS files are copied there (0600)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    servers, pgpass = folder / "servers.json", folder / "pgpass"
    write_atomic(servers, servers_json(host, port, conn, storage is not None).encode(),
                 mode=0o644)
    write_atomic(pgpass, (pgpass_line(host, port, "*", conn.user, conn.password or "") + "\n")
                 .encode(), mode=0o600)
    if storage is not None:
        storage.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(storage / "pgpass", pgpass.read_bytes(), mode=0o600)
        copies = tls_copies(conn.tls)
        for name in TLS_FILES:  # a key no longer in use does not stay behind
            if name not in copies:
                (storage / name).unlink(missing_ok=True)
        for name, source in copies.items():  # an unreadable one: the CLI names it (OSError)
            write_atomic(storage / name, source.read_bytes(), mode=0o600)
    return servers, pgpass


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/misc/ping", timeout=3) as response:
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_up(url: str, alive: Callable[[], bool], log_tail: Callable[[], str],
                  timeout: float = START_TIMEOUT) -> float:
    """Seconds until pgAdmin answers at `url`; ServerError when it stops or takes too long."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if answers(url):
            return time.monotonic() - started
        if not alive():
            raise ServerError("pgAdmin stopped while starting", details=log_tail())
        time.sleep(1)
    raise ServerError(f"pgAdmin did not answer at {url} within {timeout:.0f} s",
                      details=log_tail())
