"""Automatic capture of agent work: Claude Code hooks record sessions and sub-agent runs.

`hook.py` is what Claude Code runs on each event: standard library only, it appends the event
to the spool and starts `deliver.py` in the background, which writes the spool into the
learning tables as the owner role. `claude_settings.py` merges the hooks into
`.claude/settings.json`; `steps.py` holds the install steps.
"""
