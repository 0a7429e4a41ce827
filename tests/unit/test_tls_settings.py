"""TLS as a setting, in-process: parsed from the admin URL, flags, environment, profile and
.env; checked (sslmode, certificate files); carried by every ConnInfo into libpq's keywords,
URLs and child processes' variables; external mode's defaults and warning."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from installer import db
from installer.backends.external import tls_for
from installer.config import Settings, resolve_settings
from installer.credentials import ConnInfo, Tls
from installer.errors import ConfigError, ExitCode
from installer.installation import refuse_tls
from installer.mcp_config import ServerChoice, server_entry
from installer.mcp_server.command import agent_from
from installer.profile import parse_profile


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CA file at certs/ca one.pem, the working directory being tmp_path."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "certs" / "ca one.pem"
    path.parent.mkdir()
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def settings(tmp_path: Path, cli: dict[str, object] | None = None, **environ: str) -> Settings:
    return resolve_settings(tmp_path, cli or {}, environ=environ)


def test_admin_url_query_becomes_the_tls_settings_with_absolute_paths(
        tmp_path: Path, ca: Path) -> None:
    resolved = settings(tmp_path, LEARNING_ADMIN_URL="postgresql://dba@db.example/postgres"
                        "?sslmode=verify-full&sslrootcert=certs/ca%20one.pem")
    assert resolved.sources["sslmode"] == resolved.sources["sslrootcert"] == "LEARNING_ADMIN_URL"
    assert resolved.tls() == Tls(sslmode="verify-full", sslrootcert=str(ca))


def test_a_tls_setting_of_its_own_wins_over_the_admin_url_which_wins_over_env(
        tmp_path: Path) -> None:
    url = "postgresql://dba@db.example/postgres?sslmode=verify-ca"
    assert settings(tmp_path, LEARNING_ADMIN_URL=url, LEARNING_SSLMODE="require").sslmode == \
        "require"
    assert settings(tmp_path, {"sslmode": "verify-full"}, LEARNING_ADMIN_URL=url).sslmode == \
        "verify-full"
    recorded = resolve_settings(tmp_path, {}, environ={"LEARNING_ADMIN_URL": url},
                                recorded={"PGSSLMODE": "require"})
    assert recorded.sslmode == "verify-ca"
    assert resolve_settings(tmp_path, {}, environ={}, recorded={"PGSSLMODE": "require"}
                            ).sslmode == "require"


def test_unknown_sslmode_is_a_configuration_error_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, LEARNING_SSLMODE="verify_full").tls()
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "unknown sslmode 'verify_full' (from environment)" in caught.value.message
    assert "verify-full" in (caught.value.hint or "")


def test_missing_certificate_file_is_named(tmp_path: Path, ca: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, LEARNING_SSLROOTCERT="certs/nope.pem").tls()
    assert f"sslrootcert from environment names no file: {tmp_path / 'certs' / 'nope.pem'}" \
        == caught.value.message
    assert Tls.checked({"sslrootcert": "system"}).sslrootcert == "system"  # libpq's OS store


def test_profile_paths_are_taken_from_the_project(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    profile = parse_profile("sslmode: verify-full\nsslrootcert: certs/ca.pem\n",
                            tmp_path / "p.yaml", tmp_path)
    assert profile.values == {"sslmode": "verify-full",
                              "sslrootcert": tmp_path / "certs" / "ca.pem"}
    with pytest.raises(ConfigError, match="not one of"):
        parse_profile("sslmode: verify\n", tmp_path / "p.yaml", tmp_path)


def test_conninfo_carries_tls_into_libpq_keywords_urls_and_child_variables(ca: Path) -> None:
    info = ConnInfo("db.example", 5432, "learning_system", "learning", "s3cret:pw",
                    Tls(sslmode="verify-full", sslrootcert=str(ca)))
    assert info.kwargs()["sslmode"] == "verify-full"
    assert info.kwargs()["sslrootcert"] == str(ca)
    for url in (info.url(), info.url(with_password=False), info.masked_url()):
        parts = conninfo_to_dict(url)
        assert (parts["sslmode"], parts["sslrootcert"], parts["dbname"]) == (
            "verify-full", str(ca), "learning_system")
    assert "s3cret" not in info.url(with_password=False) + info.masked_url()
    assert info.env() | {"PGPASSWORD": "-"} == {
        "PGHOST": "db.example", "PGPORT": "5432", "PGDATABASE": "learning_system",
        "PGUSER": "learning", "PGPASSWORD": "-", "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": str(ca)}
    assert ConnInfo.from_env(info.env()) == info
    assert "?" not in ConnInfo("h", 1, "d", "u").url()  # no TLS given: the URL as before


def test_external_defaults_verify_full_with_a_ca_require_without_and_warns_when_off(
        tmp_path: Path, ca: Path) -> None:
    notes: list[str] = []
    assert tls_for(settings(tmp_path), notes).sslmode == "require"
    assert tls_for(settings(tmp_path, LEARNING_SSLROOTCERT=str(ca)), notes) == Tls(
        sslmode="verify-full", sslrootcert=str(ca))
    assert tls_for(settings(tmp_path, LEARNING_SSLMODE="verify-ca"), notes).sslmode == \
        "verify-ca"
    assert notes == []
    assert tls_for(settings(tmp_path, LEARNING_SSLMODE="disable"), notes).sslmode == "disable"
    assert notes and notes[0].startswith("sslmode disable (from environment)")


def test_native_and_docker_refuse_tls_they_do_not_offer(tmp_path: Path, ca: Path) -> None:
    refuse_tls(settings(tmp_path), "native")
    refuse_tls(settings(tmp_path, LEARNING_SSLMODE="prefer"), "native")
    with pytest.raises(ConfigError) as caught:
        refuse_tls(settings(tmp_path, LEARNING_SSLROOTCERT=str(ca)), "docker")
    assert "TLS is not offered in docker mode" in caught.value.message
    assert "sslrootcert (from environment)" in caught.value.message


def test_mcp_server_takes_tls_from_its_url_or_env(ca: Path) -> None:
    written = ConnInfo("db.example", 5432, "learning_system", "agent", None,
                       Tls(sslmode="verify-full", sslrootcert=str(ca)))  # as .mcp.json has it
    assert agent_from(written.url(with_password=False), {}) == written
    npx = server_entry(written, Path("/p"), ServerChoice("npx", 30, 500))
    assert npx["args"][-1] == written.url(with_password=False)
    recorded = {"LEARNING_AGENT_USER": "agent", "PGHOST": "db.example", "PGPORT": "5432",
                "PGSSLMODE": "require"}
    assert agent_from(None, recorded).tls == Tls(sslmode="require")
    with pytest.raises(ConfigError, match="names no file"):
        agent_from("postgresql://agent@db.example/x?sslrootcert=/nonexistent/ca.pem", {})


@pytest.mark.parametrize(("libpq_says", "hint_says"), [
    ('connection to server at "db.example" failed: SSL error: certificate verify failed',
     "checks the server's certificate against the CA certificate(s) in /ca.pem"),
    ('server certificate for "db.example" does not match host name "10.0.0.5"',
     "the host name must be one the certificate names"),
    ("server does not support SSL, but SSL was required", "the server offers no TLS"),
    ("FATAL:  connection requires a valid client certificate", "sslcert and sslkey"),
    ("SSL SYSCALL error: EOF detected", None),  # a broken connection: --full may help
    ("Connection refused", None),
])
def test_a_tls_refusal_gets_a_hint_of_its_own(libpq_says: str, hint_says: str | None) -> None:
    info = ConnInfo("db.example", 5432, "d", "u", tls=Tls("verify-full", "/ca.pem"))
    hint = db.tls_hint(info, Exception(libpq_says))
    assert hint == hint_says if hint_says is None else hint_says in (hint or "")
    error = db.unreachable(info, Exception(libpq_says))
    assert ("--full" in (error.hint or "")) == (hint_says is None)
