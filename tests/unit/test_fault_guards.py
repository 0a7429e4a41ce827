"""The small guards behind the fault suite: quoting, refusals, the lock, file errors."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from installer import locking
from installer.backends.native import conf_string, refuse_shell_active, socket_fits
from installer.console import Console
from installer.envfile import read_env
from installer.errors import ConfigError, ExitCode, file_problem


def test_conf_string_uses_postgresqls_own_quoting() -> None:
    assert conf_string("/tmp/o'brien", "x") == "'/tmp/o''brien'"
    assert conf_string("a\\b", "x") == "'a\\\\b'"
    with pytest.raises(ConfigError, match="control character"):
        conf_string("/tmp/x'\nlisten_addresses = '*", "unix_socket_directories")


@pytest.mark.parametrize("path", ["/tmp/x $(id)", "/tmp/`id`", '/tmp/a"b', "/tmp/a\\b",
                                  "/tmp/a\nb", "/tmp/a\tb"])
def test_paths_a_shell_would_read_as_code_are_refused(path: str) -> None:
    with pytest.raises(ConfigError, match="passes to a shell") as refused:
        refuse_shell_active(Path(path), "data directory")
    assert refused.value.exit_code == ExitCode.CONFIG


def test_paths_with_spaces_and_single_quotes_are_fine() -> None:
    refuse_shell_active(Path("/tmp/o'brien's data"), "data directory")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's sun_path: 108 bytes")
def test_a_socket_path_must_fit_in_sun_path_with_its_file_name() -> None:
    """The socket's whole path, `.s.PGSQL.PORT` included, and a NUL fit in 108 bytes; a
    directory of 93 bytes with port 5432 is 107 (the longest), 94 is one too many."""
    assert socket_fits(Path("/" + "d" * 92), 5432)
    assert not socket_fits(Path("/" + "d" * 93), 5432)
    assert not socket_fits(Path("/" + "d" * 92), 54321)  # a longer port, a longer name


def test_duplicate_installer_key_names_both_lines(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("MINE=1\nMINE=2\nPGPORT=5432\n# note\nexport PGPORT=1\n")
    with pytest.raises(ConfigError) as refused:
        read_env(env)
    assert f"{env}:3" in refused.value.message and f"{env}:5" in refused.value.message
    env.write_text("MINE=1\nMINE=2\nPGPORT=5432\n")  # the user's own keys are theirs
    assert read_env(env)["PGPORT"] == "5432"


def test_file_problems_name_the_path_and_the_way_out(tmp_path: Path) -> None:
    try:
        tmp_path.read_text()
    except OSError as exc:
        problem = file_problem(exc)
    assert problem.exit_code == ExitCode.ENVIRONMENT
    assert str(tmp_path) in problem.message and "move it away" in (problem.hint or "")


def test_a_second_run_waits_for_the_lock_and_says_who_holds_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sql").mkdir()
    order: list[str] = []
    with locking.run_locked(Console(), tmp_path, "`python install.py --full`"):
        def second() -> None:
            with locking.run_locked(Console(), tmp_path, "`python install.py start`"):
                order.append("second")

        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.5)
        order.append("first")
    waiter.join(timeout=5)
    assert order == ["first", "second"]
    err = capsys.readouterr().err
    assert "another run of `python install.py --full` (pid" in err and "waiting" in err
