"""Exit codes as the README's table says, for the faults that need no running server."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from installer import cli, lifecycle
from installer.console import Console
from installer.credentials import ConnInfo
from installer.errors import EnvironmentProblem, ExitCode, ServerError
from installer.steps import Check, Step, ok, run_steps

REPO = Path(__file__).resolve().parent.parent.parent


class _Refused(Step):
    """A step whose SQL the server refuses, as AgentGrantsStep's would without the right."""

    title = "Agent grants"

    def __init__(self, during: str):
        self.during = during

    def check(self) -> Check:
        if self.during == "check":
            raise psycopg.errors.InsufficientPrivilege("permission denied for schema public")
        return Check("change", "grants missing")

    def apply(self, check: Check) -> str:
        raise psycopg.errors.InsufficientPrivilege("permission denied for schema public")


@pytest.mark.parametrize("during", ["check", "apply"])
def test_a_server_error_escaping_a_step_is_exit_5_with_the_reason(during: str) -> None:
    with pytest.raises(ServerError) as caught:
        run_steps([_Refused(during)], Console(quiet=True))
    assert caught.value.exit_code == ExitCode.SERVER == 5
    assert "Agent grants" in caught.value.message
    assert "permission denied for schema public" in caught.value.message


def test_a_step_that_passes_is_untouched() -> None:
    class Fine(Step):
        title = "fine"

        def check(self) -> Check:
            return ok("all good")

        def apply(self, check: Check) -> str:
            raise AssertionError("never applied")

    assert [r.state for r in run_steps([Fine()], Console(quiet=True))] == ["ok"]


def test_a_missing_client_tool_is_an_environment_problem(tmp_path: Path) -> None:
    conn = ConnInfo("127.0.0.1", 5432, "db", "owner", "secret")
    with pytest.raises(EnvironmentProblem) as caught:
        lifecycle._run_tool(tmp_path / "bin" / "pg_dump", ["--version"], conn)
    assert caught.value.exit_code == ExitCode.ENVIRONMENT == 4
    assert "pg_dump" in caught.value.message


def test_cli_unreachable_docker_daemon_is_exit_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    code = cli.main(["status", "--project-dir", str(REPO), "--env-file", str(tmp_path / ".env"),
                     "--mode", "docker", "--yes"])
    assert code == ExitCode.ENVIRONMENT == 4
    assert "Traceback" not in capsys.readouterr().err


def test_cli_bad_profile_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: sideways\n")
    code = cli.main(["--print-config", "--project-dir", str(REPO), "--profile", str(bad),
                     "--env-file", str(tmp_path / ".env")])
    assert code == ExitCode.CONFIG == 3
    assert "sideways" in capsys.readouterr().err
