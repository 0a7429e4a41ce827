"""The backend registry: callers ask it, never compare mode strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer import backends
from installer.config import MODES
from installer.errors import ConfigError
from installer.show_config import effective_config


def test_every_backend_is_registered_in_the_order_users_see() -> None:
    assert backends.modes() == ("native", "docker", "external")
    assert MODES == ("auto", "native", "docker", "external")


def test_backends_answer_what_callers_ask() -> None:
    native, docker, external = (backends.backend_class(m) for m in backends.modes())
    assert (native.default_port, docker.default_port, external.default_port) == (5432, 5433, None)
    assert native.owns_admin_password and docker.owns_admin_password
    assert not external.owns_admin_password and not external.may_lock_other_databases
    assert docker.needs_docker and not native.needs_docker


def test_an_unknown_mode_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        backends.backend_class("ssh")
    assert "auto, native, docker, external" in (caught.value.hint or "")


def test_print_config_shows_where_the_admin_url_came_from_password_masked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEARNING_ADMIN_URL", "postgresql://dba:hunter22@db.example/postgres")
    config = effective_config(tmp_path, {"env_file": tmp_path / ".env"})
    assert config["admin_url"]["source"] == "environment LEARNING_ADMIN_URL"
    assert "hunter22" not in config["admin_url"]["value"]
    assert config["admin_url"]["value"].startswith("postgresql://dba:hu")
