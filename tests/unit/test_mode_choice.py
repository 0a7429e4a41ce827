"""How `--mode auto` picks a backend, and what it tells the user."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.config import resolve_settings
from installer.console import Console
from installer.detect import Detection
from installer.installation import auto_mode, choose_mode


def detection(*, in_container: bool, daemon: str | None) -> Detection:
    return Detection(os="Linux", in_container=in_container, docker_daemon=daemon,
                     docker_problem=None if daemon else "connection refused", system_pg=None,
                     embedded_pg=None, free_ports={})


@pytest.mark.parametrize(("mode", "in_container", "daemon", "chosen", "says"), [
    ("auto", False, "Docker/27.0 (linux)", "docker", ""),
    ("auto", False, None, "native", "no Docker daemon answered (connection refused)"),
    ("auto", True, "Docker/27.0 (linux)", "native", "inside a container"),
    ("docker", True, "Docker/27.0 (linux)", "docker", ""),  # asked for, with a mounted socket
    ("external", False, None, "external", ""),
])
def test_choose_mode(mode: str, in_container: bool, daemon: str | None, chosen: str, says: str,
                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = resolve_settings(tmp_path, {"mode": mode}, environ={})
    assert choose_mode(settings, detection(in_container=in_container, daemon=daemon),
                       Console()) == chosen
    out = capsys.readouterr().out
    assert says in out if says else out == ""


@pytest.mark.parametrize(("in_container", "daemon", "recommended", "because"), [
    (False, "Docker/27.0 (linux)", "docker", "a Docker daemon answered (engine Docker/27.0"),
    (False, None, "native", "no Docker daemon answered (connection refused)"),
    (True, "Docker/27.0 (linux)", "native", "running inside a container"),
    (True, None, "native", "running inside a container"),
])
def test_the_wizard_recommends_what_auto_picks(in_container: bool, daemon: str | None,
                                               recommended: str, because: str,
                                               tmp_path: Path) -> None:
    found = detection(in_container=in_container, daemon=daemon)
    mode, why = auto_mode(found)
    assert (mode, why.startswith(because)) == (recommended, True)
    auto = resolve_settings(tmp_path, {"mode": "auto"}, environ={})
    assert choose_mode(auto, found, Console(quiet=True)) == mode


def test_admin_password_comes_from_the_variable_the_profile_names(tmp_path: Path) -> None:
    from installer.backends.external import admin_from

    profile = {"admin_url": "postgresql://admin@db.example:5432/postgres",
               "admin_password_env": "TEAM_PG_PASSWORD"}
    environ = {"TEAM_PG_PASSWORD": "s3cret", "LEARNING_ADMIN_PASSWORD": "other"}
    settings = resolve_settings(tmp_path, {}, environ={}, profile=profile)
    admin = admin_from(settings, environ)
    assert admin is not None and admin.password == "s3cret"
    settings = resolve_settings(tmp_path, {}, environ={},
                                profile={"admin_url": profile["admin_url"]})
    assert admin_from(settings, environ).password == "other"


def test_admin_url_from_the_environment_wins_over_the_profile(tmp_path: Path) -> None:
    from installer.backends.external import admin_from

    settings = resolve_settings(
        tmp_path, {}, environ={"LEARNING_ADMIN_URL": "postgresql://dba:pw@env.example/postgres"},
        profile={"admin_url": "postgresql://admin@profile.example:5432/postgres"})
    assert settings.sources["admin_url"] == "environment"
    admin = admin_from(settings, {})
    assert (admin.host, admin.user, admin.password) == ("env.example", "dba", "pw")
