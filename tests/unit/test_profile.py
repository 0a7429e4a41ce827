"""Profiles: every shipped profile loads; every kind of mistake names the file and line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from installer.config import Settings
from installer.errors import ConfigError
from installer.profile import load_profile, parse_profile, profile_fields, save_profile

REPO = Path(__file__).resolve().parents[2]


def _parse(text: str, tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return parse_profile(text, path, tmp_path)


def _error(text: str, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        _parse(text, tmp_path)
    return caught.value.message + " | " + (caught.value.hint or "")


@pytest.mark.parametrize("name", ["default", "native", "docker", "external", "ci"])
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(name, REPO)
    assert profile.description


def test_default_profile_spells_out_every_setting_with_its_default() -> None:
    profile = load_profile("default", REPO)
    defaults = Settings(project_dir=REPO)
    assert set(profile.lines) == set(profile_fields()), "profiles/default.yaml misses settings"
    for name, value in profile.values.items():
        assert getattr(defaults, name) == value, name
    nulls = set(profile.lines) - set(profile.values)
    assert all(getattr(defaults, name) is None for name in nulls)


def test_schema_follows_the_settings_dataclass() -> None:
    names = {f.name for f in dataclasses.fields(Settings)} - {"project_dir", "sources"}
    assert set(profile_fields()) == names


def test_unknown_key_names_the_closest_valid_one(tmp_path: Path) -> None:
    message = _error("mode: native\ndatabse: x\n", tmp_path)
    assert "p.yaml:2" in message and "'databse'" in message and "did you mean 'database'" in message


def test_wrong_type_names_file_and_line(tmp_path: Path) -> None:
    message = _error("mode: native\n\nport: fifty\n", tmp_path)
    assert "p.yaml:3" in message and "port must be a whole number" in message


def test_boolean_is_not_a_number(tmp_path: Path) -> None:
    assert "p.yaml:1" in _error("port: true\n", tmp_path)


def test_out_of_range_names_file_and_line(tmp_path: Path) -> None:
    message = _error("database: x\nport: 70000\n", tmp_path)
    assert "p.yaml:2" in message and "out of range" in message


def test_unknown_choice_suggests_one(tmp_path: Path) -> None:
    message = _error("mode: natve\n", tmp_path)
    assert "p.yaml:1" in message and "did you mean 'native'" in message


def test_list_item_error_points_at_the_item(tmp_path: Path) -> None:
    message = _error("mcp_clients:\n  - cursor\n  - vs-code\n", tmp_path)
    assert "p.yaml:3" in message and "did you mean 'vscode'" in message


def test_list_expected(tmp_path: Path) -> None:
    assert "p.yaml:1" in _error("mcp_clients: cursor\n", tmp_path)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = _error("mode: native\nport: [5432\ndatabase: x\n", tmp_path)
    assert "p.yaml:" in message and "not valid YAML" in message


def test_not_a_mapping(tmp_path: Path) -> None:
    assert "mapping" in _error("- native\n", tmp_path)


def test_duplicate_key(tmp_path: Path) -> None:
    message = _error("port: 1\nport: 2\n", tmp_path)
    assert "p.yaml:2" in message and "twice" in message
    assert "p.yaml:3" in _error("description: a\nport: 1\ndescription: b\n", tmp_path)


def test_key_that_is_not_a_name(tmp_path: Path) -> None:
    assert "p.yaml:2" in _error("port: 1\n5432: port\n", tmp_path)


def test_secret_in_clear_is_refused(tmp_path: Path) -> None:
    message = _error("host: x\nadmin_password: hunter2\n", tmp_path)
    assert "p.yaml:2" in message and "admin_password_env" in message
    assert "hunter2" not in message


def test_password_inside_a_url_is_refused(tmp_path: Path) -> None:
    message = _error("host: postgresql://u:hunter2@db/x\n", tmp_path)
    assert "password in a URL" in message and "hunter2" not in message


def test_empty_profile_and_nulls_are_defaults(tmp_path: Path) -> None:
    assert _parse("", tmp_path).values == {}
    assert _parse("port: null\n", tmp_path).values == {}


def test_relative_paths_are_relative_to_the_project(tmp_path: Path) -> None:
    assert _parse("env_file: conf/.env\n", tmp_path).values["env_file"] == tmp_path / "conf/.env"


def test_missing_profile_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile("nope", REPO)
    assert "ci" in (caught.value.hint or "")


def test_saved_answers_replay(tmp_path: Path) -> None:
    answers = {"mode": "native", "port": 6543, "mcp_clients": ["cursor", "codex"],
               "install_hooks": False}
    path = tmp_path / "profiles" / "mine.yaml"
    save_profile(path, answers, "mine")
    assert load_profile(str(path), tmp_path).values == answers


def test_modules_must_exist_in_sql() -> None:
    text = "modules:\n  - learning\n  - analytic\n"
    with pytest.raises(ConfigError, match=r"p.yaml:3.*did you mean 'analytics'"):
        parse_profile(text, Path("p.yaml"), REPO)
    assert parse_profile("modules: [learning]\n", Path("p.yaml"), REPO).values == {
        "modules": ["learning"]}
