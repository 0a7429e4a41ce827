"""The one output layer: rich for people, a single JSON document for machines.

Nothing else in the installer prints. Steps report through `step()`, long waits through
`working()`, errors through `error()`. With `--json` human output is suppressed and the command
emits one JSON object on stdout at the end, in the envelope `emit_json` describes. rich honours
NO_COLOR and non-terminals by itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console as RichConsole
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.status import Status
from rich.table import Table

from installer.errors import InstallerError

JSON_VERSION = 1  # of the envelope below; raised when a key changes meaning or goes away

MARKS = {
    "ok": "[green]✓[/]",
    "changed": "[cyan]✓[/]",
    "planned": "[yellow]→[/]",
    "failed": "[red]✗[/]",
    "skipped": "[dim]–[/]",
    "warning": "[yellow]![/]",
}


class Console:
    def __init__(self, *, json_mode: bool = False, quiet: bool = False, verbose: bool = False,
                 command: str = ""):
        self.json_mode = json_mode
        self.command = command  # named in the JSON envelope
        self.quiet = quiet or json_mode
        self.verbose = verbose
        self.out = RichConsole(highlight=False, soft_wrap=True)
        self.err = RichConsole(stderr=True, highlight=False, soft_wrap=True)
        self.steps: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self._status: Status | None = None

    # -- plain lines -------------------------------------------------------------------------
    def heading(self, text: str) -> None:
        if not self.quiet:
            self.out.print(f"[bold]{escape(text)}[/]")

    def info(self, text: str) -> None:
        if not self.quiet:
            self.out.print(escape(text))

    def detail(self, text: str) -> None:
        """Shown with --verbose only."""
        if self.verbose and not self.json_mode:
            self.out.print(f"[dim]{escape(text)}[/]")

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        if not self.json_mode:
            self.err.print(f"{MARKS['warning']} {escape(text)}")

    # -- steps -------------------------------------------------------------------------------
    def step(self, title: str, state: str, detail: str = "", *, diff: str = "",
             action: str = "") -> None:
        """Record one step's outcome: ok (nothing to do), changed, planned, failed, skipped.
        `action` is what a check found (create, change, repair, blocked); `diff` a planned
        file change."""
        record = {"step": title, "state": state, "detail": detail}
        if action:
            record["action"] = action
        if diff:
            record["diff"] = diff
        self.steps.append(record)
        if self.json_mode or (self.quiet and state != "failed"):  # --json: one document
            return
        suffix = f" [dim]— {escape(detail)}[/]" if detail else ""
        self.out.print(f"{MARKS[state]} {escape(title)}{suffix}")
        for line in diff.splitlines():
            style = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "dim")
            self.out.print(f"    [{style}]{escape(line)}[/]")

    @contextmanager
    def working(self, title: str) -> Iterator[None]:
        """A spinner while something slow runs (only on a terminal)."""
        if self.quiet or not self.out.is_terminal:
            yield
            return
        with self.out.status(escape(title) + "…") as self._status:
            yield
        self._status = None

    @contextmanager
    def progress(self, title: str, total: int) -> Iterator[Callable[[int], None]]:
        """A progress bar over `total` bytes (terminal only, total > 0); yields advance(n)."""
        if self.quiet or not self.out.is_terminal or total <= 0:
            yield lambda n: None
            return
        paused = self._status  # rich shows one live display at a time
        if paused:
            paused.stop()
        columns = (TextColumn(escape(title)), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        with Progress(*columns, console=self.out, transient=True) as bar:
            task = bar.add_task(title, total=total)
            yield lambda n: bar.advance(task, n)
        if paused:
            paused.start()

    def table(self, table: Table) -> None:
        if not self.quiet:
            self.out.print(table)

    # -- machine output and errors -----------------------------------------------------------
    def emit_json(self, payload: dict[str, Any]) -> None:
        """With --json, one document: the envelope {"version", "command", "ok", "steps",
        "warnings"} and the command's own keys beside it (`ok` defaults to true)."""
        if self.json_mode:
            document = {"version": JSON_VERSION, "command": self.command,
                        "ok": bool(payload.get("ok", True)), **payload,
                        "steps": self.steps, "warnings": self.warnings}
            sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")

    def error(self, exc: InstallerError) -> None:
        if self.json_mode:
            self.emit_json({"ok": False, "error": exc.message, "hint": exc.hint,
                            "details": exc.details, "exit_code": int(exc.exit_code)})
            return
        self.err.print(f"[red bold]error:[/] {escape(exc.message)}")
        if exc.details:
            self.err.print(escape(exc.details.rstrip()))
        if exc.hint:
            self.err.print(f"[bold]hint:[/] {escape(exc.hint)}")
