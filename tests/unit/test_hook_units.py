"""The git hook's fast start: `python -S` with the installer's site-packages passed in."""

from __future__ import annotations

import os
import site
import subprocess
import sys

from tests.conftest import REPO

# imports a site-packages module; says whether `site` was imported (never with -S, unless
# use_site_packages falls back to it)
PROBE = ("import sys; sys.path.insert(0, {repo!r}); "
         "from installer.exchange.prepush import use_site_packages; "
         "use_site_packages({dirs!r}); import dotenv; print('site' in sys.modules)")


def _probe(dirs: str) -> str:
    result = subprocess.run([sys.executable, "-S", "-c", PROBE.format(repo=str(REPO), dirs=dirs)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr  # the installer's packages import
    return result.stdout.strip()


def test_site_packages_passed_in_are_used_without_running_site() -> None:
    # the existing ones, as the hook passes them (Debian's Python lists dist-packages too)
    existing = [path for path in site.getsitepackages() if os.path.isdir(path)]
    assert _probe(os.pathsep.join(existing)) == "False"


def test_a_site_packages_folder_that_is_gone_falls_back_to_site() -> None:
    assert _probe("/nonexistent/site-packages") == "True"
    assert _probe("") == "True"
