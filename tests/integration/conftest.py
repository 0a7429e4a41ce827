"""Fixtures shared by the integration tests that need a git checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, Project
from tests.integration.exchange_helpers import git


@pytest.fixture
def repo(project: Project, tmp_path: Path) -> Project:
    """The project as a git checkout with a bare remote `origin`."""
    remote = tmp_path / "remote.git"
    git(project, "init", "-q", "--bare", "-b", "main", str(remote), cwd=tmp_path)
    shutil.copy2(REPO / ".gitignore", project.path / ".gitignore")
    git(project, "init", "-q", "-b", "main")
    git(project, "remote", "add", "origin", str(remote))
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "checkout")
    return project
