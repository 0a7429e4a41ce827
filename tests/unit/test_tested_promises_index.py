"""docs/tested-promises.md names only tests that exist, so the index cannot rot silently."""

from __future__ import annotations

import re

from tests.conftest import REPO

INDEX = REPO / "docs" / "tested-promises.md"
REFERENCE = re.compile(r"`((?:tests/[\w/]+|test_\w+)\.py)?(?:::(\w+))?`")


def test_every_test_named_in_the_index_exists() -> None:
    missing, seen = [], 0
    for line in INDEX.read_text().splitlines():
        current = None
        for match in REFERENCE.finditer(line):
            path, name = match.groups()
            if path:
                current = REPO / path if path.startswith("tests/") else (
                    REPO / "tests" / "integration" / path)
            if current is None or not (path or name):
                continue
            seen += 1
            if not current.is_file():
                missing.append(str(current))
            elif name and not re.search(rf"^def {name}\(", current.read_text(), re.MULTILINE):
                missing.append(f"{current.name}::{name}")
    assert seen > 30
    assert not missing, missing
