"""The agent role stays what the installer says it is: what an agent (or a restored dump)
changes about it is reported by `status` and `doctor` and undone by `--full`, and nothing the
agent makes stops `backup` or `restore`."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.conftest import Project

AGENT_SETTINGS = ["default_transaction_read_only=on", "statement_timeout=30s"]


def agent(project: Project) -> psycopg.Connection:
    env = project.read_env()
    return psycopg.connect(host="127.0.0.1", port=project.port, dbname="learning_system",
                           user="learning_agent", password=env["LEARNING_AGENT_PASSWORD"],
                           autocommit=True)


def as_role(project: Project, role: str) -> psycopg.Connection:
    env = project.read_env()
    user, key = {"owner": ("learning", "PGPASSWORD"),
                 "admin": ("postgres", "LEARNING_ADMIN_PASSWORD")}[role]
    return psycopg.connect(host="127.0.0.1", port=project.port, dbname="learning_system",
                           user=user, password=env[key], autocommit=True)


def status(project: Project) -> tuple[int, str]:
    """`status --json`: its exit code and every check's detail, one per line."""
    result = project.run("status", "--json")
    checks = json.loads(result.stdout)["checks"]
    return result.returncode, "\n".join(f"{c['check']}: {c['detail']}" for c in checks)


def agent_settings(project: Project) -> list[str]:
    with as_role(project, "owner") as conn:
        return conn.execute(
            "SELECT coalesce(array_agg(c ORDER BY c), '{}') FROM pg_db_role_setting s, "
            "unnest(s.setconfig) c WHERE s.setrole = 'learning_agent'::regrole").fetchone()[0]


@pytest.mark.parametrize("binaries", ["system", "embedded"])  # role grants differ from 16 on
def test_settings_membership_and_large_objects_are_repaired(project: Project,
                                                            binaries: str) -> None:
    assert project.install("--binaries", binaries).returncode == 0
    with agent(project) as conn:  # the probe, through a direct connection
        conn.execute("BEGIN READ WRITE")
        conn.execute("ALTER ROLE learning_agent IN DATABASE learning_system "
                     "SET default_transaction_read_only = off")
        conn.execute("ALTER ROLE learning_agent SET statement_timeout = 0")
        conn.execute("COMMIT")
        conn.execute("BEGIN READ WRITE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT lo_from_bytea(0, convert_to(repeat('x', 1000), 'UTF8'))")
        conn.execute("ROLLBACK")
    with as_role(project, "admin") as conn:  # what an agent could hold before this release
        oid = conn.execute("SELECT lo_from_bytea(0, 'agent data')").fetchone()[0]
        conn.execute(f"ALTER LARGE OBJECT {oid} OWNER TO learning_agent")
        conn.execute("GRANT pg_read_server_files TO learning_agent")
    code, details = status(project)
    assert code == 5
    for words in ("statement_timeout=0", "in learning_system: default_transaction_read_only=off",
                  "member of pg_read_server_files", f"large object {oid}"):
        assert words in details, details
    doctor = project.run("doctor")
    assert doctor.returncode == 1 and f"{oid} (owner learning_agent)" in doctor.stdout
    backup = project.run("backup", check=True)  # the agent's large object is no obstacle
    dump = next(word for word in backup.stdout.split() if word.endswith(".dump"))
    restored = project.run("restore", dump, "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert project.install("--binaries", binaries).returncode == 0
    assert project.run("status").returncode == 0
    assert agent_settings(project) == AGENT_SETTINGS
    with agent(project) as conn:
        assert not conn.execute("SELECT pg_has_role('pg_read_server_files', 'MEMBER')"
                                ).fetchone()[0]
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)


def test_restored_write_grants_and_definer_function_are_revoked(project: Project) -> None:
    assert project.install().returncode == 0
    with as_role(project, "owner") as conn:  # what a dump from elsewhere may carry
        conn.execute("GRANT INSERT, UPDATE, DELETE ON agent_metrics TO learning_agent")
        conn.execute("GRANT CREATE ON SCHEMA public TO learning_agent")
        conn.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT INSERT ON TABLES "
                     "TO learning_agent")
        conn.execute("CREATE FUNCTION write_anything() RETURNS void LANGUAGE sql SECURITY "
                     "DEFINER AS $$ INSERT INTO agent_metrics (agent_name, task_type, success) "
                     "VALUES ('evil', 'x', true) $$")
    code, details = status(project)
    assert code == 5
    for words in ("may write agent_metrics", "write_anything()", "SECURITY DEFINER",
                  "may create objects in schema public", "gets INSERT on future tables"):
        assert words in details, details
    backup = project.run("backup", check=True)
    dump = next(word for word in backup.stdout.split() if word.endswith(".dump"))
    assert project.install().returncode == 0
    assert project.run("status").returncode == 0
    restored = project.run("restore", dump, "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "write_anything" in restored.stdout  # the restore reports what it revoked
    assert project.run("status").returncode == 0
    with agent(project) as conn:
        conn.execute("BEGIN READ WRITE")
        for statement in ("INSERT INTO agent_metrics (agent_name, task_type, success) "
                          "VALUES ('x', 'y', true)", "SELECT write_anything()",
                          "CREATE TABLE mine (id int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.execute("ROLLBACK")
            conn.execute("BEGIN READ WRITE")
        conn.execute("SELECT agent_api.add_memory('through the typed function')")
        conn.execute("COMMIT")
    with as_role(project, "owner") as conn:
        assert conn.execute("SELECT count(*) FROM agent_metrics").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM memories").fetchone() == (1,)


def test_a_dropped_agent_role_is_planned_after_the_roles_and_recreated(project: Project) -> None:
    assert project.install().returncode == 0
    with as_role(project, "admin") as conn:
        conn.execute("DROP OWNED BY learning_agent")
        conn.execute("DROP ROLE learning_agent")
    plan = project.run("--dry-run", "--json")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    steps = {step["step"]: step for step in json.loads(plan.stdout)["steps"]}
    assert steps["Read-only grants for the agent role"]["detail"] == \
        "will follow: after role learning_agent exists again"
    assert "role learning_agent missing" in steps["Roles and learning database"]["detail"]
    repaired = project.install()
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert project.run("status").returncode == 0
    with agent(project) as conn:
        assert conn.execute("SELECT count(*) FROM agent_metrics").fetchone() == (0,)
