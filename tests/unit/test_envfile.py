from __future__ import annotations

import stat
from pathlib import Path

from installer.envfile import MARKER, merge_env_text, read_env, remove_env_keys, write_env


def test_merge_keeps_user_lines_and_updates_managed_keys_in_place() -> None:
    existing = "# mine\nA=1\nexport PGPORT=1\n\nB='two words'\n"
    merged = merge_env_text(existing, {"PGPORT": "5432", "PGHOST": "127.0.0.1"})
    assert merged == ("# mine\nA=1\nPGPORT=5432\n\nB='two words'\n\n"
                      f"{MARKER}\nPGHOST=127.0.0.1\n")


def test_merge_is_stable() -> None:
    once = merge_env_text("A=1\n", {"K": "v"})
    assert merge_env_text(once, {"K": "v"}) == once


def test_duplicate_managed_key_is_collapsed() -> None:
    merged = merge_env_text("K=old\nK=older\n", {"K": "new"})
    assert merged.count("K=") == 1


def test_values_needing_quotes_round_trip(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    write_env(path, {"X": 'a b"c\\d#e', "URL": "postgresql://u:p@h:1/db"})
    assert read_env(path) == {"X": 'a b"c\\d#e', "URL": "postgresql://u:p@h:1/db"}


def test_written_with_mode_0600_and_unchanged_file_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert write_env(path, {"K": "v"}) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert write_env(path, {"K": "v"}) is False


def test_remove_keys_keeps_the_users_own(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("MINE=1\n")
    write_env(path, {"K": "v"})
    assert remove_env_keys(path, {"K": "v"}) == 1
    assert path.read_text() == "MINE=1\n"
