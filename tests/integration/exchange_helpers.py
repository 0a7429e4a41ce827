"""Shared helpers for the exchange tests: migrated databases, seed data, export and import."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from installer.console import Console
from installer.credentials import ConnInfo
from installer.exchange.import_ import FileOutcome, find_source
from installer.exchange.manifest import MANIFEST_NAME, read_manifest, sha256_file
from installer.exchange.sync import run_export, run_import
from installer.migrations import migrate_all
from tests.conftest import REPO, Cluster, Project

LEGACY_CSV = REPO / "tests" / "data" / "legacy-exports" / "csv"


def migrate(db: ConnInfo, cluster: Cluster) -> ConnInfo:
    if cluster.has_pgvector:
        with psycopg.connect(**db.kwargs(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    migrate_all(db, REPO / "sql")
    return db


@contextmanager
def extra_database(cluster: Cluster) -> Iterator[ConnInfo]:
    db = cluster.create_database()
    try:
        yield migrate(db, cluster)
    finally:
        cluster.drop_database(db)


def seed(db: ConnInfo, n: int = 20) -> None:
    """Rows with the awkward values: quotes, commas, newlines, unicode, NULL vs '', floats."""
    with psycopg.connect(**db.kwargs()) as conn:
        conn.execute(
            "INSERT INTO agent_metrics (agent_name, task_type, execution_time_ms, success, "
            "error_message, metadata, created_at) SELECT 'agent ' || g, 'type,' || (g %% 3), "
            "CASE g %% 4 WHEN 0 THEN 0.1 WHEN 1 THEN 1e-300 WHEN 2 THEN 123456.789 END, "
            "g %% 2 = 0, CASE g %% 5 WHEN 0 THEN E'two\\nlines, \"quoted\"' WHEN 1 THEN '' "
            "WHEN 2 THEN 'é ✓ 日本' END, "
            "jsonb_build_object('g', g, 'nested', jsonb_build_array(1, 'x', null)), "
            "'2025-01-02 03:04:05.123456+02'::timestamptz + g * interval '1 hour' "
            "FROM generate_series(1, %s) g", (n,))
        conn.execute(
            "INSERT INTO interaction_logs (from_agent, to_agent, message_type, payload, response, "
            "duration_ms) SELECT 'a' || g, 'b', 'request', jsonb_build_object('q', repeat('x', g)),"
            " CASE WHEN g %% 2 = 0 THEN 'ok' END, g FROM generate_series(1, %s) g", (n,))
        conn.execute("INSERT INTO model_performance (model_name, accuracy, updated_at) VALUES "
                     "('m1', 0.5, '2025-01-01T00:00:00Z'), ('m2', 0.25, '2025-01-01T00:00:00Z')")
        conn.execute(
            "INSERT INTO task_embeddings (task_description, embedding, success_rate) "
            "SELECT 'task ' || g, (SELECT array_agg(((g * 7919 + i) % 1000) / 997.0)::real[] "
            "FROM generate_series(1, 768) i), 0.5 FROM generate_series(1, 3) g")


def rows(db: ConnInfo, table: str) -> list[tuple]:
    with psycopg.connect(**db.kwargs()) as conn:
        return conn.execute(sql.SQL("SELECT * FROM {} ORDER BY id").format(
            sql.Identifier(table))).fetchall()


def count(db: ConnInfo, table: str) -> int:
    with psycopg.connect(**db.kwargs()) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(table))).fetchone()[0]


def export(db: ConnInfo, folder: Path) -> list[str]:
    return run_export(db, folder, Console(quiet=True)).changed_files


def load(db: ConnInfo, folder: Path, force: bool = False) -> tuple[dict[str, FileOutcome], str]:
    """Import `folder`; returns outcomes by table and the error text ('' when none)."""
    source = find_source(folder, legacy_allowed=True)
    assert source is not None
    outcomes, problem = run_import(db, source, Console(quiet=True), force=force, record=False)
    text = "" if problem is None else f"{problem.message}\n{problem.details}"
    return {o.table: o for o in outcomes}, text


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def reseal(folder: Path) -> None:
    """Rewrite the manifest's sha256/rows after a test edited a CSV file on purpose."""
    import json

    path = folder / MANIFEST_NAME
    manifest = read_manifest(path)
    doc = json.loads(path.read_text())
    for name, entry in manifest.tables.items():
        csv_path = folder / entry.file
        doc["tables"][name]["sha256"] = sha256_file(csv_path)
        header = csv_path.read_text().split("\n", 1)[0].split(",")
        doc["tables"][name]["columns"] = [c for c in doc["tables"][name]["columns"]
                                          if c["name"] in header]
    path.write_text(json.dumps(doc, indent=2) + "\n")


def new_id() -> str:
    return str(uuid.uuid4())


def git(project: Project, *args: str, cwd: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    env = project.env(GIT_AUTHOR_NAME="Tester", GIT_AUTHOR_EMAIL="t@example.com",
                      GIT_COMMITTER_NAME="Tester", GIT_COMMITTER_EMAIL="t@example.com")
    result = subprocess.run(["git", *args], cwd=cwd or project.path, env=env, text=True,
                            capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {result.stdout}{result.stderr}")
    return result


def wait_for_remote(project: Project, timeout: float = 60) -> str:
    """The follow-up push runs after `git push` returns: wait until origin has HEAD."""
    head = git(project, "rev-parse", "HEAD").stdout.strip()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        remote = git(project, "ls-remote", "origin", "refs/heads/main").stdout.split()
        if remote and remote[0] == head:
            return head
        time.sleep(0.2)
    log = project.path / ".git" / "learning-export-push.log"
    raise AssertionError(f"origin never got {head}: {log.read_text() if log.exists() else ''}")
