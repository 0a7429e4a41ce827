"""Hints name the program the way the user ran it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from installer import lifecycle, program
from installer.errors import ConfigError


@pytest.mark.parametrize(("argv0", "expected"), [
    ("/usr/local/bin/learning-installer", "`learning-installer backup`"),
    ("/home/me/checkout/install.py", "`python install.py backup`"),
])
def test_a_hint_names_the_program_as_it_was_run(argv0: str, expected: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [argv0, "restore"])
    with pytest.raises(ConfigError) as caught:
        lifecycle._check_archive(tmp_path / "missing.dump")
    assert expected in (caught.value.hint or "")
    assert program.command("backup") == expected

