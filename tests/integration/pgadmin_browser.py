"""pgAdmin 4 in a real headless Chromium (Debian's, driven by Playwright; never Playwright's
own browser download), with a screenshot of every step under test-artifacts/."""

from __future__ import annotations

import itertools
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"
WAIT_MS = 90_000  # pgAdmin's React app is slow to load on a busy 2-core machine


def require_chromium() -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it with apt)")


def browse_learning_server(url: str, email: str, password: str, database: str, table: str,
                           query: str, expected: str, shots: Path) -> list[Path]:
    """Log in, open the registered server (no password asked), see `table` in the tree, run
    `query` in the query tool and wait for `expected` in the result grid. Returns the
    screenshots; a failing step leaves a `failed.png`."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(WAIT_MS)

        def shot(name: str) -> None:
            taken.append(shots / f"{len(taken) + 1:02d}-{name}.png")
            page.screenshot(path=str(taken[-1]))

        def entry(name: str):  # a node of the object explorer, by its exact label
            label = page.locator(".file-name", has_text=re.compile(f"^{re.escape(name)}$"))
            return page.locator(".file-entry", has=label).first

        def open_path(*names: str) -> None:
            for name, child in itertools.pairwise(names):
                for attempt in range(4):  # a click while the node is loading can be lost
                    entry(name).wait_for()
                    toggle = entry(name).locator(".directory-toggle")
                    if attempt and "open" in (toggle.get_attribute("class") or ""):
                        toggle.click()  # it opened empty while connecting: close, open again
                        time.sleep(1)
                    if "open" not in (toggle.get_attribute("class") or ""):
                        toggle.click()
                    try:
                        entry(child).wait_for(timeout=20_000)
                        break
                    except PlaywrightTimeout:  # retried; the last wait below raises
                        continue
                entry(child).wait_for()

        try:
            page.goto(f"{url}/login")
            page.locator("input[name=email]").fill(email)
            page.locator("input[name=password]").fill(password)
            shot("login")
            page.get_by_role("button", name="Login").click()
            entry("Servers").wait_for()
            shot("logged-in")
            open_path("Servers", "learning", "Databases", database)  # connects: no password
            shot("server-connected")
            open_path(database, "Schemas", "public", "Tables", table)
            shot("learning-tables")
            entry(table).click()
            page.get_by_role("button", name="Tools").click()
            page.get_by_role("menuitem", name="Query Tool").click()
            tool = page.locator("iframe[id^=id-query-tool]").last.content_frame
            editor = tool.locator(".cm-content[contenteditable=true]").first
            editor.wait_for()
            editor.click()
            page.keyboard.type(query)
            page.keyboard.press("F5")
            tool.get_by_text(expected, exact=True).first.wait_for()
            time.sleep(0.5)  # let the grid finish painting for the screenshot
            shot("query-result")
        except Exception:
            page.screenshot(path=str(shots / "failed.png"))
            raise
        finally:
            browser.close()
    return taken
