"""Passwords and connection details: generated once with `secrets`, kept in `.env`."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from installer.errors import ConfigError

# .env keys holding each role's password
ADMIN_PASSWORD = "LEARNING_ADMIN_PASSWORD"
OWNER_PASSWORD = "PGPASSWORD"
AGENT_PASSWORD = "LEARNING_AGENT_PASSWORD"


def new_password() -> str:
    return secrets.token_urlsafe(24)


def mask(secret: str | None) -> str:
    if not secret:
        return "(none)"
    return secret[:2] + "…" + "*" * 6


SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
UNVERIFIED_SSLMODES = ("disable", "allow", "prefer")  # may talk in clear text


@dataclass(frozen=True)
class Tls:
    """libpq's TLS parameters of a connection; None leaves one to libpq's default.

    The field names are libpq's keywords; each has its standard variable (PGSSLMODE, …), which
    is also its key in .env, so child processes (pg_dump, psql, hooks) get the same settings."""

    sslmode: str | None = None
    sslrootcert: str | None = None  # a file, or libpq's "system" (the OS's trusted CAs)
    sslcert: str | None = None  # a client certificate, where the server asks for one
    sslkey: str | None = None

    @classmethod
    def checked(cls, values: Mapping[str, Any],
                origin: str | Mapping[str, str] = "the settings") -> Tls:
        """From libpq keywords (empty ones ignored): sslmode must be libpq's, files must
        exist, and relative paths become absolute (.env and client configs are read from
        other directories). `origin`: where the values came from, or where each one did."""
        def where(name: str) -> str:
            return origin if isinstance(origin, str) else origin.get(name, "the settings")

        given = {f.name: str(values[f.name]) for f in fields(cls) if values.get(f.name)}
        mode = given.get("sslmode")
        if mode is not None and mode not in SSLMODES:
            raise ConfigError(f"unknown sslmode {mode!r} (from {where('sslmode')})",
                              hint=f"use one of: {', '.join(SSLMODES)}")
        for name in TLS_FILES:
            if name not in given or (name == "sslrootcert" and given[name] == "system"):
                continue
            path = Path(given[name]).expanduser().absolute()
            if not path.is_file():
                raise ConfigError(f"{name} from {where(name)} names no file: {path}",
                                  hint=f"give the path of the {TLS_FILES[name]} (a PEM file)")
            given[name] = str(path)
        return cls(**given)

    @classmethod
    def from_env(cls, values: Mapping[str, str]) -> Tls:
        """What .env (or a libpq environment) records, as it is."""
        return cls(**{name: values.get(key) or None for name, key in ENV_KEYS.items()})

    def params(self) -> dict[str, str]:
        """The libpq keywords that are set."""
        return {f.name: value for f, value in zip(fields(self), astuple(self), strict=True)
                if value is not None}

    def env(self) -> dict[str, str]:
        """libpq's variables (PGSSLMODE, …) for a child process or .env."""
        return {ENV_KEYS[name]: value for name, value in self.params().items()}


TLS_FILES = {"sslrootcert": "CA certificate(s) that signed the server's certificate",
             "sslcert": "client certificate", "sslkey": "client certificate's key"}
# Tls field -> libpq's environment variable, also its .env key
ENV_KEYS = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
            "sslkey": "PGSSLKEY"}


@dataclass(frozen=True)
class ConnInfo:
    host: str
    port: int
    dbname: str
    user: str
    password: str | None = None
    tls: Tls = field(default_factory=Tls)

    @classmethod
    def from_env(cls, values: Mapping[str, str]) -> ConnInfo:
        """The owner's connection as .env records it, TLS included. Raises KeyError or
        ValueError when .env lacks it."""
        return cls(values["PGHOST"], int(values["PGPORT"]), values["PGDATABASE"],
                   values["PGUSER"], values.get(OWNER_PASSWORD) or None, Tls.from_env(values))

    def kwargs(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for psycopg.connect (the password never touches a command line)."""
        params: dict[str, Any] = {"host": self.host, "port": self.port, "dbname": self.dbname,
                                  "user": self.user, "connect_timeout": 5,
                                  "application_name": "learning-installer", **self.tls.params()}
        if self.password is not None:
            params["password"] = self.password
        return params | extra

    def env(self) -> dict[str, str]:
        """libpq's variables for a child process (psql, pg_dump): server, role, password, TLS."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGDATABASE": self.dbname,
                "PGUSER": self.user, "PGPASSWORD": self.password or "", **self.tls.env()}

    def url(self, with_password: bool = True) -> str:
        auth = quote(self.user, safe="")
        if with_password and self.password:
            auth += ":" + quote(self.password, safe="")
        query = urlencode(self.tls.params(), quote_via=quote, safe="/")
        return (f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.dbname, safe='')}"
                + (f"?{query}" if query else ""))

    def masked_url(self) -> str:
        return self.url(with_password=False).replace("@", ":" + mask(self.password) + "@", 1) \
            if self.password else self.url(with_password=False)

    def to(self, **changes: Any) -> ConnInfo:
        return replace(self, **changes)


@dataclass(frozen=True)
class Passwords:
    admin: str
    owner: str
    agent: str
    generated: tuple[str, ...] = ()  # which ones are new in this run

    @classmethod
    def from_env(cls, recorded: Mapping[str, str]) -> Passwords:
        """Reuse what .env holds; generate only what is missing."""
        values, generated = {}, []
        for name, key in (("admin", ADMIN_PASSWORD), ("owner", OWNER_PASSWORD),
                          ("agent", AGENT_PASSWORD)):
            values[name] = recorded.get(key) or ""
            if not values[name]:
                values[name] = new_password()
                generated.append(name)
        return cls(**values, generated=tuple(generated))
