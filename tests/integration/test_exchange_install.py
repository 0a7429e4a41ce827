"""`python install.py --full`, `import` and `export` as a user runs them, exit codes included."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from installer.credentials import ConnInfo
from installer.errors import ExitCode
from tests.conftest import Cluster, Project
from tests.integration.exchange_helpers import LEGACY_CSV, export, migrate, seed


@pytest.fixture
def exported(database: ConnInfo, cluster: Cluster, tmp_path: Path) -> Path:
    """An export of seeded data, made on another 'machine'."""
    seed(migrate(database, cluster), n=10)
    export(database, tmp_path / "exports")
    return tmp_path / "exports"


def _count(project: Project, table: str) -> int:
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_install_imports_exports_once_and_export_changes_nothing(project: Project,
                                                                 exported: Path) -> None:
    shutil.copytree(exported, project.path / "exports")
    first = project.install()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Importing agent_metrics — 10 rows: 10 imported, 0 already present" in first.stdout
    assert _count(project, "agent_metrics") == 10
    again = project.install()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Importing" not in again.stdout and "already imported" in again.stdout
    before = {p: p.read_bytes() for p in (project.path / "exports").rglob("*") if p.is_file()}
    result = project.run("export", "--json", check=True)
    assert json.loads(result.stdout)["changed_files"] == []
    assert {p: p.read_bytes() for p in (project.path / "exports").rglob("*")
            if p.is_file()} == before
    result = project.run("import", check=True)  # explicit import: all present, nothing added
    assert "10 rows: 0 imported, 10 already present" in result.stdout
    assert _count(project, "agent_metrics") == 10


def test_bad_file_fails_the_run_at_the_end_but_the_install_goes_on(project: Project,
                                                                   exported: Path) -> None:
    shutil.copytree(exported, project.path / "exports")
    bad = project.path / "exports" / "csv" / "interaction_logs.csv"
    bad.write_bytes(bad.read_bytes()[:-40])  # truncated
    result = project.install()
    assert result.returncode == ExitCode.DATA, result.stdout + result.stderr
    assert f"{bad} does not match its SHA-256" in result.stdout + result.stderr
    assert "interaction_logs.csv" in result.stderr and "not imported" in result.stderr
    assert _count(project, "interaction_logs") == 0  # nothing from the bad file
    assert _count(project, "agent_metrics") == 10  # the rest went in
    assert (project.path / ".mcp.json").exists()  # and the later steps ran
    forced = project.run("import", "--force")
    assert forced.returncode == ExitCode.DATA  # truncated mid-row: still refused, and why
    assert f"{bad}, line" in forced.stdout + forced.stderr
    assert _count(project, "interaction_logs") == 0


def test_no_exports_is_one_info_line_and_legacy_import_from_dir(project: Project) -> None:
    result = project.install()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no exports to import" in result.stdout
    assert not (project.path / "exports").exists()
    legacy = project.run("import", "--from", str(LEGACY_CSV))
    assert legacy.returncode == 0, legacy.stdout + legacy.stderr
    assert "Importing agent_metrics — 10 rows: 10 imported" in legacy.stdout
    again = project.run("import", "--from", str(LEGACY_CSV), "--json", check=True)
    assert json.loads(again.stdout)["tables"]["agent_metrics"]["present"] == 10
    assert _count(project, "agent_metrics") == 10
    nothing = project.run("import", "--from", str(project.path / "sql"))
    assert nothing.returncode == 0 and "no exports to import" in nothing.stdout


def test_export_of_an_installed_project_round_trips(project: Project) -> None:
    assert project.install().returncode == 0
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO learning_feedback (id, agent_name, feedback_type) "
                     "VALUES (%s, 'a', 'b')", (uuid.uuid4(),))
    result = project.run("export", check=True)
    assert "Export learning_feedback — 1 rows" in result.stdout
    text = (project.path / "exports" / "csv" / "learning_feedback.csv").read_text()
    assert project.read_env()["PGPASSWORD"] not in text
    assert "1 rows" in (project.path / "exports" / "EXPORT_SUMMARY.md").read_text()
