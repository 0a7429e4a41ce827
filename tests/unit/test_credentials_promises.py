"""The README's promises about passwords, checked in-process (no server needed): generated
with `secrets`, long and different each time, kept stable across re-runs, safe in a URL."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from installer.credentials import ConnInfo, Passwords, mask


def test_passwords_are_generated_long_and_distinct() -> None:
    first, second = Passwords.from_env({}), Passwords.from_env({})
    values = [first.admin, first.owner, first.agent, second.admin, second.owner, second.agent]
    assert len(set(values)) == 6
    assert all(len(value) >= 24 for value in values)
    assert set(first.generated) == {"admin", "owner", "agent"}


def test_recorded_passwords_are_kept_and_only_missing_ones_generated() -> None:
    recorded = {"LEARNING_ADMIN_PASSWORD": "a" * 30, "PGPASSWORD": "o" * 30}
    passwords = Passwords.from_env(recorded)
    assert (passwords.admin, passwords.owner) == ("a" * 30, "o" * 30)
    assert passwords.generated == ("agent",) and len(passwords.agent) >= 24


def test_url_quotes_any_password_and_masked_url_hides_it() -> None:
    secret = "p@ss:w/rd?#%"
    conn = ConnInfo("127.0.0.1", 5432, "learning_system", "learning", secret)
    assert unquote(urlsplit(conn.url()).password) == secret
    assert urlsplit(conn.url(with_password=False)).password is None
    assert secret not in conn.masked_url() and mask(secret) in conn.masked_url()
    assert secret not in mask(secret)
