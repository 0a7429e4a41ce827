"""Two machines, one remote: a scripted week of adds, edits and deletes on both sides.

Two clones of one bare remote, each with its own cluster; machine B checks out with
core.autocrlf=true (Git for Windows' default). Both commit exports, push and pull in turns,
so git merges exports/ that both machines changed. No pull may stop on a conflict, no push may
be rejected, and at the end every exchanged table dumps identically on both machines.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from installer.credentials import ConnInfo
from installer.exchange import catalog
from tests.conftest import Project, free_port, stop_instance
from tests.integration.exchange_helpers import git, wait_for_remote


def _url(project: Project) -> str:
    return project.read_env()["DATABASE_URL"]


def _work(project: Project, me: str, other: str, day: int) -> None:
    """One machine's day: new session, chunks and memories; edit and delete the other's."""
    with psycopg.connect(_url(project)) as conn:
        agent = conn.execute(
            "INSERT INTO agents (name, agent_type) VALUES ('DIRECTOR', 'planner') ON CONFLICT "
            "(name) DO UPDATE SET last_seen_at = now() RETURNING id").fetchone()[0]
        session = conn.execute("INSERT INTO sessions (agent_id, title) VALUES (%s, %s) "
                               "RETURNING id", (agent, f"{me} day {day}")).fetchone()[0]
        conn.execute("INSERT INTO conversation_chunks (session_id, role, content) SELECT %s, "
                     "'user', %s || g || E'\\nsecond line, \"quoted\"' "
                     "FROM generate_series(1, 3) g", (session, f"{me}{day} chunk "))
        conn.execute("INSERT INTO memories (session_id, agent_id, content, metadata) SELECT %s, "
                     "%s, %s || g, '{\"k\": \"\"}' FROM generate_series(1, 3) g",
                     (session, agent, f"{me}{day} memory "))
        conn.execute("INSERT INTO learning_feedback (id, agent_name, feedback_type, "
                     "feedback_value, task_id) VALUES (gen_random_uuid(), %s, 'score', %s, '')",
                     (me, day))
        conn.execute("UPDATE model_performance SET accuracy = %s WHERE model_name = 'shared'",
                     ((day % 10) / 20 + (0.01 if me == "A" else 0.02),))
        conn.execute("UPDATE memories SET content = content || %s WHERE id = (SELECT id FROM "
                     "memories WHERE content LIKE %s ORDER BY created_at DESC, id LIMIT 1)",
                     (f" (edited by {me} on day {day})", f"{other}%"))
        conn.execute("DELETE FROM memories WHERE id = (SELECT id FROM memories WHERE content "
                     "LIKE %s ORDER BY created_at, id LIMIT 1)", (f"{other}%",))
        conn.execute("DELETE FROM conversation_chunks WHERE id = (SELECT id FROM "
                     "conversation_chunks WHERE content LIKE %s ORDER BY created_at, id "
                     "LIMIT 1)", (f"{other}%",))
        if day == 3:  # a whole session goes, with its chunks (ON DELETE CASCADE)
            conn.execute("DELETE FROM sessions WHERE title = %s", (f"{me} day 1",))


def _push(project: Project) -> None:
    result = git(project, "push", "origin", "main", check=False)
    text = result.stdout + result.stderr
    assert result.returncode == 0 and "rejected" not in text and "failed" not in text, text
    wait_for_remote(project)


def _pull(project: Project) -> None:
    result = git(project, "pull", "--no-edit", "origin", "main", check=False)
    text = result.stdout + result.stderr
    assert result.returncode == 0 and "CONFLICT" not in text, text


def _export_and_commit(project: Project, day: int) -> None:
    project.run("export", check=True)
    git(project, "add", "exports")
    git(project, "commit", "-q", "-m", f"exports of day {day}", check=False)


def _dumps(project: Project) -> dict[str, bytes]:
    """COPY … ORDER BY key of every exchanged table, all columns (derived ones too)."""
    env = project.read_env()
    owner = ConnInfo.from_env(env)
    out = {}
    with catalog.connect(owner) as conn:
        for table in catalog.learning_tables(conn):
            query = sql.SQL("COPY (SELECT * FROM {} ORDER BY {}) TO STDOUT").format(
                table.ident, table.key_list)
            with conn.cursor() as cur, cur.copy(query) as copy:
                out[table.name] = b"".join(bytes(chunk) for chunk in copy)
    return out


def test_a_week_on_two_machines_converges_without_conflicts(repo: Project, tmp_path: Path,
                                                            shared_tmp: Path) -> None:
    a = repo
    for project in (a,):
        git(project, "config", "pull.rebase", "false")
    assert a.install().returncode == 0
    with psycopg.connect(_url(a)) as conn:
        conn.execute("INSERT INTO model_performance (model_name, accuracy) VALUES ('shared', 0)")
    git(a, "push", "-q", "-u", "origin", "main")
    wait_for_remote(a)

    b = Project(tmp_path / "machine-b", tmp_path / "home-b",
                shared_tmp / f"data-{uuid.uuid4().hex[:8]}", free_port())
    b.home.mkdir()
    git(a, "clone", "-q", "-c", "core.autocrlf=true", str(tmp_path / "remote.git"), str(b.path),
        cwd=tmp_path)
    try:
        git(b, "config", "pull.rebase", "false")
        result = b.install()
        assert result.returncode == 0, result.stdout + result.stderr
        for day in range(1, 5):
            _work(a, "A", "B", day)
            _export_and_commit(a, day)
            _work(b, "B", "A", day)
            _export_and_commit(b, day)  # both machines changed exports/ since the last pull
            _push(a)
            if day == 2:  # a second push right after the first is not rejected either
                _work(a, "A", "B", 20)
                time.sleep(0.2)
                _push(a)
            _pull(b)  # git merges exports/ row by row
            _push(b)  # the hook imports the merged files before it exports
            _pull(a)
        for _ in range(3):  # let the last changes travel both ways
            _push(a)
            _pull(b)
            _push(b)
            _pull(a)
        a.run("import", check=True)
        b.run("import", check=True)
        dump_a, dump_b = _dumps(a), _dumps(b)
        assert dump_a.keys() == dump_b.keys()
        for table in dump_a:
            only_a = set(dump_a[table].splitlines()) - set(dump_b[table].splitlines())
            only_b = set(dump_b[table].splitlines()) - set(dump_a[table].splitlines())
            assert (table, only_a) == (table, only_b)
        assert b"\r" not in dump_b["conversation_chunks"]
        with psycopg.connect(_url(b)) as conn:
            titles = {r[0] for r in conn.execute("SELECT title FROM sessions")}
            counts = conn.execute("SELECT bool_and(chunk_count = (SELECT count(*) FROM "
                                  "conversation_chunks c WHERE c.session_id = s.id)) "
                                  "FROM sessions s").fetchone()[0]
            tombstones = conn.execute("SELECT count(*) FROM exchange_tombstones").fetchone()[0]
        assert "A day 1" not in titles and "B day 1" not in titles and "A day 4" in titles
        assert counts is True
        assert tombstones > 10
    finally:
        stop_instance(b.data_dir)
