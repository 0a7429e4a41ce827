""".env.example lists every key the installer reads from or writes to .env, and no secret."""

from __future__ import annotations

import ast
import re

from dotenv import dotenv_values

from installer import config, credentials, envkeys
from installer.pgadmin import registration
from tests.conftest import REPO

EXAMPLE = REPO / ".env.example"
# names that look like .env keys but are environment variables only, or other programs' names
ENVIRONMENT_ONLY = {"LEARNING_YES", "LEARNING_PROFILE", "LEARNING_PROJECT_DIR",
                    "LEARNING_SKIP_EXPORT_HOOK", "PGPASSFILE"} | config.environment_variables()
OTHER_PROGRAMS = {"PG_VERSION", "PGOPTIONS", "PGCONNECT_TIMEOUT", "PGADMIN_DEFAULT_EMAIL",
                  "PGADMIN_DEFAULT_PASSWORD",
                  "PGADMIN_SERVER_JSON_FILE", "PGADMIN_CONFIG_UPGRADE_CHECK_ENABLED",
                  "PGADMIN_CONFIG_SHOW_GRAVATAR_IMAGE",
                  "PGADMIN_SETUP_EMAIL", "PGADMIN_SETUP_PASSWORD"}
KEY_LIKE = re.compile(r"^(LEARNING|PG|PGADMIN|DATABASE)_?[A-Z_]*[A-Z]$")


def test_example_lists_exactly_the_registered_keys_each_with_a_comment() -> None:
    lines = EXAMPLE.read_text().splitlines()
    keys = [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]
    assert keys == list(envkeys.ENV_KEYS)
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[index - 1].startswith("# "), f"{line}: no comment above it"


def test_example_holds_no_secret() -> None:
    values = dotenv_values(EXAMPLE)
    for key in envkeys.SECRET_KEYS:
        assert values[key] == "", key
    assert not re.search(r"postgres(ql)?://[^@\s]*:[^@\s]*@", EXAMPLE.read_text())


def test_every_key_the_code_reads_or_writes_is_registered() -> None:
    used = config.recorded_keys() | {credentials.ADMIN_PASSWORD, credentials.OWNER_PASSWORD,
                                     credentials.AGENT_PASSWORD, registration.EMAIL,
                                     registration.PASSWORD, registration.PORT}
    assert used <= set(envkeys.ENV_KEYS)


def test_no_unregistered_key_like_string_in_the_code() -> None:
    """A new .env key spelled out anywhere in installer/ must be registered (or be an
    environment variable only)."""
    found: dict[str, str] = {}
    for path in (REPO / "installer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and KEY_LIKE.match(node.value):
                found.setdefault(node.value, str(path.relative_to(REPO)))
    unknown = {key: where for key, where in found.items()
               if key not in {*envkeys.ENV_KEYS, *ENVIRONMENT_ONLY, *OTHER_PROGRAMS}}
    assert not unknown, f"add these to installer/envkeys.py and .env.example: {unknown}"
