"""`migrate --rollback-to`, drift repair by `--full`, `status` size and binaries, and doctor's
separation check, through the real CLI on a real native installation."""

from __future__ import annotations

import json

import psycopg

from installer.binaries import system_binaries
from tests.conftest import Project

DEMO = {
    "001_notes.sql": "CREATE TABLE notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
                     "body text NOT NULL);\n-- migrate:down\nDROP TABLE notes;\n",
}


def _owner(project: Project) -> psycopg.Connection:
    return psycopg.connect(project.read_env()["DATABASE_URL"], autocommit=True)


def _notes(project: Project) -> list[str] | None:
    with _owner(project) as conn:
        if conn.execute("SELECT to_regclass('notes')").fetchone() == (None,):
            return None
        return [r[0] for r in conn.execute("SELECT body FROM notes ORDER BY body")]


def _status(project: Project) -> dict:
    return json.loads(project.run("status", "--json").stdout)


def test_rollback_backup_reapply_restore_and_drift(project: Project) -> None:
    demo = project.path / "sql" / "demo"
    demo.mkdir()
    (demo / "module.yaml").write_text("description: demo\nrequires: [learning]\n")
    for name, text in DEMO.items():
        (demo / name).write_text(text)
    installed = project.install("--database", "ai_agent_persistence", check=True)
    with _owner(project) as conn:
        conn.execute("INSERT INTO notes (body) VALUES ('first'), ('second')")

    first, second = _status(project), _status(project)
    assert first["size"]["bytes"] > 0 and first["size"]["growth_bytes"] is None
    assert second["size"]["growth_bytes"] is not None
    system = system_binaries()
    if system and not system.has_pgvector:  # pgvector by default: the embedded binaries
        assert "the system's PostgreSQL has no pgvector" in installed.stdout
        assert second["server"]["binaries"].startswith("embedded")
        assert "embedded binaries (with pgvector)" in second["server"]["binaries_why"]
        assert "binaries: recorded in .env" in project.run("detect").stdout

    doctor = json.loads(project.run("doctor", "--json").stdout)
    separation = [c for c in doctor["checks"] if "can connect to" in c["check"]]
    assert separation[0]["check"].endswith("can connect to ai_agent_persistence only")
    assert separation[0]["state"] == "ok"
    assert "ai_agent_persistence" in first["database"]
    env = project.read_env()
    with psycopg.connect(host=env["PGHOST"], port=env["PGPORT"], dbname="postgres",
                         user=env["LEARNING_ADMIN_USER"],
                         password=env["LEARNING_ADMIN_PASSWORD"], autocommit=True) as admin:
        admin.execute("GRANT CONNECT ON DATABASE postgres TO PUBLIC")
    opened = project.run("doctor")
    assert opened.returncode == 1 and "it connected to postgres" in opened.stdout
    project.install(check=True)  # the roles step closes it again
    assert project.run("doctor").returncode == 0

    refused = project.run("migrate", "--rollback-to", "learning/000", "--dry-run")
    assert refused.returncode == 1 and "no down part" in refused.stderr
    plan = project.run("migrate", "--rollback-to", "demo/000", "--dry-run")
    assert plan.returncode == 2 and "demo/001_notes" in plan.stdout
    assert _notes(project) == ["first", "second"]
    assert not (project.path / "backups").exists()

    done = project.run("migrate", "--rollback-to", "demo/000", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["reverted"] == ["demo/001_notes"] and result["backup"]
    assert _notes(project) is None

    project.install(check=True)  # re-applies the module
    assert _notes(project) == []
    restored = project.run("restore", result["backup"], "--yes")
    assert restored.returncode == 0, restored.stderr
    assert _notes(project) == ["first", "second"]

    # drift: a table of an applied migration dropped by hand
    with _owner(project) as conn:
        conn.execute("DROP TABLE learning_queue CASCADE")
    sick = project.run("status", "--json")
    assert sick.returncode == 5 and "unexpected" not in sick.stdout + sick.stderr
    missing = json.loads(sick.stdout)["missing_objects"]
    assert "table learning_queue" in missing["learning_pipeline/001_learning_pipeline"]
    doctor = project.run("doctor")
    assert doctor.returncode == 1 and "learning_queue" in doctor.stdout
    project.install(check=True)
    healed = _status(project)
    assert healed["healthy"] and healed["missing_objects"] == {}
    assert _notes(project) == ["first", "second"]
