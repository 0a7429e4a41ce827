"""Passwords and connection details: generated once with `secrets`, kept in `.env`."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

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


@dataclass(frozen=True)
class ConnInfo:
    host: str
    port: int
    dbname: str
    user: str
    password: str | None = None

    def kwargs(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for psycopg.connect (the password never touches a command line)."""
        params: dict[str, Any] = {"host": self.host, "port": self.port, "dbname": self.dbname,
                                  "user": self.user, "connect_timeout": 5,
                                  "application_name": "learning-installer"}
        if self.password is not None:
            params["password"] = self.password
        return params | extra

    def url(self, with_password: bool = True) -> str:
        auth = quote(self.user, safe="")
        if with_password and self.password:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.dbname, safe='')}"

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
