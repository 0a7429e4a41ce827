import random, time
import psycopg
from tests.conftest import Project
from tests.integration.exchange_helpers import git, wait_for_remote

def test_race(repo: Project) -> None:
    assert repo.install().returncode == 0
    url = repo.read_env()["DATABASE_URL"]
    git(repo, "push", "-q", "-u", "origin", "main")
    wait_for_remote(repo)
    bad = []; allerr = []
    for r in range(25):
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO learning_feedback (agent_name, feedback_type) VALUES (%s, 'first')", (f"r{r}",))
        first = git(repo, "push", "origin", "main", check=False)
        time.sleep(random.uniform(0.1, 0.2))
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO learning_feedback (agent_name, feedback_type) VALUES (%s, 'second')", (f"r{r}",))
        second = git(repo, "push", "origin", "main", check=False)
        allerr.extend([first.stderr, second.stderr])
        for res in (first, second):
            if res.returncode != 0 or "rejected" in res.stderr or "failed" in res.stderr:
                bad.append((r, res.returncode, res.stderr))
        time.sleep(random.uniform(0.95, 1.2))
    wait_for_remote(repo)
    print(len(bad), bad[:3], sum("so this push" in s for s in allerr))
    print((repo.path / ".git" / "learning-export-push.log").read_text()[-3000:])
    assert not bad
