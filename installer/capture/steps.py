"""Install steps: the capture hooks in `.claude/settings.json`, and delivering the spool."""

from __future__ import annotations

from pathlib import Path

from installer.capture import claude_settings, deliver, hook, spool
from installer.credentials import ConnInfo
from installer.fileutil import text_diff, write_if_changed
from installer.mcp_config import read_text
from installer.steps import Check, Step, ok


class ClaudeHooksStep(Step):
    """Our hooks merged in (capture on) or taken out (capture off); the user's hooks kept."""

    def __init__(self, project_dir: Path, enabled: bool, env_file: Path | None = None):
        self.path = claude_settings.settings_path(project_dir)
        self.enabled = enabled
        self.command = claude_settings.command(project_dir, env_file)
        self.title = (f"Claude Code hooks that capture agent work in {self.path}" if enabled
                      else f"No capture hooks in {self.path} (capture_agent_work is off)")

    def _texts(self) -> tuple[str, str]:
        current = read_text(self.path)
        if self.enabled:
            return current, claude_settings.merged(current, self.command, self.path)
        return current, claude_settings.without(current, self.path) or current

    def check(self) -> Check:
        current, wanted = self._texts()
        if current == wanted:
            return ok("sessions and sub-agent runs are recorded" if self.enabled else "")
        if not self.enabled:
            return Check("change", "remove the capture hooks (yours stay)")
        return Check("create" if not self.path.exists() else "change",
                     f"hooks on {', '.join(hook.EVENTS)}")

    def apply(self, check: Check) -> str:
        _, wanted = self._texts()
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
        write_if_changed(self.path, wanted.encode("utf-8"), mode=mode)
        if not self.enabled:
            return f"capture hooks removed from {self.path}"
        return f"{'wrote' if check.state == 'create' else 'merged into'} {self.path}"

    def diff(self) -> str:
        return text_diff(self.path, *self._texts())


class CaptureSpoolStep(Step):
    """Events captured while the database was down, delivered once it answers."""

    def __init__(self, project_dir: Path, owner: ConnInfo):
        self.project_dir = project_dir
        self.owner = owner
        self.path = spool.spool_path(project_dir)
        self.title = f"Captured agent work waiting in {self.path}"

    def check(self) -> Check:
        waiting = deliver.pending(self.project_dir)
        if not waiting:
            return ok("nothing waiting")
        return Check("change", f"deliver {waiting} event(s) to the learning tables")

    def apply(self, check: Check) -> str:
        result = deliver.flush(self.project_dir, self.owner)
        done = f"{result.delivered} event(s) delivered"
        if result.rejected:
            done += f"; {result.rejected} unreadable, dropped (see {spool.LOG})"
        return done + (f"; {result.left} still waiting" if result.left else "")
