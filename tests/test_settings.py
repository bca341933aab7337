"""The configuration file, settings from the environment, desk secrets, the starter file and
``check --ping``.

* The Zendesk desk in ``docs/helpdesks/zendesk.md`` loads as written, and the environment
  variables that page names give the Zendesk connector its credentials.
* Every problem names the file, the key path and what is wrong, all problems at once, and never
  echoes a secret.
* Secrets come from the environment or a secrets directory (the environment wins), as
  ``SecretStr``, and never show in a repr, a message or a ping result.
* The starter file loads as written and with its example desk and policy overrides uncommented.
* ``ping`` reaches the in-process Zendesk emulator and tells apart missing secrets, bad
  credentials, a missing permission, a wrong base URL, DNS and connection failures, rate limits.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ticketwarden.core.connector import DeskConfig, Runtime
from ticketwarden.core.http import BasicCredentials, BearerToken
from ticketwarden.core.model import Priority
from ticketwarden.core.settings import (
    Config,
    ConfigError,
    PingResult,
    Settings,
    config_warnings,
    credential_alternatives,
    database_url,
    default_config_path,
    desk_env_var,
    desk_secret_values,
    desk_secrets,
    load_config,
    load_settings,
    ping,
    render_starter,
    write_starter,
)
from ticketwarden.plugins.zendesk import fixtures
from ticketwarden.plugins.zendesk.connector import ZendeskConnector
from ticketwarden.plugins.zendesk.emulator import ZendeskEmulator
from ticketwarden.testing.emulator import FakeClock, Fault

ROOT = Path(__file__).resolve().parents[1]
ZENDESK_DOC = ROOT / "docs" / "helpdesks" / "zendesk.md"
CONNECTORS: dict[str, type[Any]] = {"zendesk": ZendeskConnector}


def doc_toml() -> str:
    """The desk section of the Zendesk guide, exactly as printed there."""
    blocks: list[str] = re.findall(
        r"```toml\n(.*?)```", ZENDESK_DOC.read_text(encoding="utf-8"), re.S
    )
    return next(b for b in blocks if "[desks.zendesk-acme]" in b)


def doc_environment() -> dict[str, str]:
    """The ``export NAME=...`` lines of the guide's secrets section (commented ones left out)."""
    text = ZENDESK_DOC.read_text(encoding="utf-8")
    return dict(re.findall(r'^export (TICKETWARDEN_\w+)="([^"]*)"', text, re.M))


def write(tmp_path: Path, text: str, name: str = "ticketwarden.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problem(tmp_path: Path, text: str) -> str:
    """The message of the ConfigError loading ``text`` raises."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, connectors=CONNECTORS)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert "Traceback" not in message
    return message


DESK = """
[desks.zendesk-acme]
connector = "zendesk"
base_url = "https://acme.zendesk.com"
"""


# --- The documented Zendesk desk --------------------------------------------------------------


def test_the_zendesk_guide_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, doc_toml()))
    desk = config.desks["zendesk-acme"]
    assert desk.name == "zendesk-acme"
    assert desk.connector == "zendesk"
    assert desk.base_url == "https://acme.zendesk.com"
    assert str(desk.fields["severity"]) == "custom:360012345000"
    assert desk.severity_values["severity_1"] == 1
    assert desk.priorities[Priority.URGENT] == "urgent"
    assert desk.escalation["support-management"].assignee == "381002"
    assert desk.contacts.authorized_field == "tw_authorized_contact"
    assert desk.options["agent_id"] == 381000
    assert desk.http.budget.requests_per_minute == 700
    assert config.path == (tmp_path / "ticketwarden.toml").resolve()
    assert config.policy.name == "default"
    assert config.store.url is None
    assert config.sync.page_limit == 1000


def test_the_zendesk_guide_environment_variables_give_credentials(tmp_path: Path) -> None:
    environ = doc_environment()
    assert set(environ) == {
        desk_env_var("zendesk-acme", "EMAIL"),
        desk_env_var("zendesk-acme", "API_TOKEN"),
        desk_env_var("zendesk-acme", "WEBHOOK_SECRET"),
    }
    desk = load_config(write(tmp_path, doc_toml())).desks["zendesk-acme"]
    secrets = desk_secrets(desk, ZendeskConnector, environ=environ)
    assert isinstance(secrets.credentials, BasicCredentials)
    assert secrets.credentials.username == "ticketwarden@yourcompany.example/token"
    assert secrets.webhook_secret is not None


def test_default_path_is_the_environment_s_then_the_working_directory(tmp_path: Path) -> None:
    assert default_config_path(environ={}) == Path("ticketwarden.toml")
    named = write(tmp_path, DESK, "elsewhere.toml")
    environ = {"TICKETWARDEN_CONFIG": str(named)}
    assert default_config_path(environ=environ) == named
    assert "zendesk-acme" in load_config(connectors=CONNECTORS, environ=environ).desks


# --- Problems are named by file, key path and what is wrong ------------------------------------


def test_a_missing_file_says_that_init_writes_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no configuration file.*`ticketwarden init`"):
        load_config(tmp_path / "ticketwarden.toml")


def test_not_toml(tmp_path: Path) -> None:
    assert "not valid TOML" in problem(tmp_path, "[desks.zendesk-acme\n")


def test_a_field_mapping_error_names_its_path(tmp_path: Path) -> None:
    text = DESK + '[desks.zendesk-acme.fields]\nseverity = "360012345000"\n'
    message = problem(tmp_path, text)
    assert "desks.zendesk-acme.fields.severity:" in message
    assert "native:NAME, custom:ID or tag:PREFIX" in message


def test_an_unknown_connector_lists_the_known_ones(tmp_path: Path) -> None:
    message = problem(tmp_path, DESK.replace('"zendesk"', '"zendisk"'))
    assert "desks.zendesk-acme.connector: unknown connector 'zendisk' (known: zendesk)" in message


def test_the_connector_s_options_are_validated(tmp_path: Path) -> None:
    text = DESK + "[desks.zendesk-acme.options]\nper_page = 5000\ntag_methd = 'update'\n"
    message = problem(tmp_path, text)
    assert "2 problem(s)" in message
    assert "desks.zendesk-acme.options.per_page: Input should be less than or equal to 1000" in (
        message
    )
    assert "desks.zendesk-acme.options.tag_methd: unknown key" in message


def test_policy_errors_name_the_policy_key(tmp_path: Path) -> None:
    message = problem(tmp_path, '[policy.closure]\nreminders = ["2d", "soon"]\n')
    assert "policy.closure.reminders.1:" in message
    assert "'soon'" in message
    message = problem(tmp_path, '[policy.closure]\nreminders = ["5d", "2d"]\n')
    assert "policy.closure: reminders must be strictly increasing" in message


def test_policy_overrides_merge_over_the_preset(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[policy.closure]\nauto_resolve_after = "10d"\n'))
    assert str(config.policy.closure.auto_resolve_after) == "10d"
    assert [str(r) for r in config.policy.closure.reminders] == ["2d", "5d"]  # the preset's


def test_policy_file_is_relative_to_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf", '[closure]\nauto_resolve_after = "9d"\n', "policy.toml")
    config = load_config(write(tmp_path / "conf", 'policy_file = "policy.toml"\n'))
    assert str(config.policy.closure.auto_resolve_after) == "9d"
    assert config.policy_file == (tmp_path / "conf" / "policy.toml").resolve()


def test_policy_file_errors_name_that_file_and_key(tmp_path: Path) -> None:
    write(tmp_path, '[closure]\nreminders = ["soon"]\n', "policy.toml")
    message = problem(tmp_path, 'policy_file = "policy.toml"\n')
    assert "policy_file:" in message
    assert "policy.toml" in message
    assert "closure.reminders.0:" in message
    assert "cannot read" in problem(tmp_path, 'policy_file = "missing.toml"\n')


def test_policy_and_policy_file_together_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "", "policy.toml")
    message = problem(tmp_path, 'policy_file = "policy.toml"\n[policy]\nname = "x"\n')
    assert "policy_file: give either a [policy] table or policy_file, not both" in message


def test_a_password_in_the_store_url_is_refused_without_showing_it(tmp_path: Path) -> None:
    url = "postgresql://ticketwarden:hunter2-secret@db.internal/ticketwarden"
    message = problem(tmp_path, f'[store]\nurl = "{url}"\n')
    assert "store.url: a password does not belong in the file" in message
    assert "TICKETWARDEN_DATABASE_URL" in message
    assert "hunter2" not in message
    query = "postgresql://ticketwarden@db.internal/tw?password=hunter2-secret"
    message = problem(tmp_path, f'[store]\nurl = "{query}"\n')
    assert "store.url: a password" in message
    assert "hunter2" not in message
    ok = load_config(write(tmp_path, '[store]\nurl = "postgresql://tw@db.internal/tw"\n'))
    assert ok.store.url == "postgresql://tw@db.internal/tw"
    assert "not a database URL" in problem(tmp_path, '[store]\nurl = "mysql://x@y/z"\n')


def test_credentials_in_a_desk_are_refused_with_the_variable_to_use(tmp_path: Path) -> None:
    text = DESK.replace("https://", "https://agent:hunter2-secret@") + 'api_token = "abc123xyz"\n'
    message = problem(tmp_path, text)
    assert "desks.zendesk-acme.api_token: secrets never go in the file" in message
    assert "TICKETWARDEN_DESK_ZENDESK_ACME_API_TOKEN" in message
    assert "desks.zendesk-acme.base_url: credentials do not belong in the URL" in message
    assert "abc123xyz" not in message
    assert "hunter2" not in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "colour = 'blue'\n"
        '[sync]\nlease_ttl = "ten minutes"\npage_limit = 0\n'
        '[desks.Zendesk]\nconnector = "zendesk"\nbase_url = "ftp://x"\n'
    )
    message = problem(tmp_path, text)
    assert "5 problem(s) in the configuration" in message
    assert "colour: unknown key" in message
    assert "sync.lease_ttl:" in message
    assert "sync.page_limit:" in message
    assert "desks.Zendesk.name: a desk's name (its table key) is lower-case" in message
    assert "desks.Zendesk.base_url: 'ftp://x' is not an http(s) URL" in message


def test_desk_names_must_give_distinct_variables_and_match_their_key(tmp_path: Path) -> None:
    two = DESK + DESK.replace("zendesk-acme", "zendesk_acme")
    message = problem(tmp_path, two)
    assert "TICKETWARDEN_DESK_ZENDESK_ACME_*" in message
    message = problem(tmp_path, DESK + 'name = "other"\n')
    assert "a desk's name is its table key" in message


def test_sync_settings_durations(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[sync]\ncandidate_lookback = "7d"\nlease_ttl = "90s"\n'))
    assert config.sync.lookback.days == 7
    assert config.sync.lease.total_seconds() == 90


# --- Secrets ------------------------------------------------------------------------------------


def test_desk_secrets_from_the_environment_and_the_secrets_directory(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "desk_zendesk-acme_api_token").write_text("from-file-token\n")
    (secrets_dir / "desk_zendesk_acme_webhook_secret").write_text("file-webhook-secret\r\n")
    (secrets_dir / "desk_zendesk-acme_email").write_text("file@example.com\n")
    (secrets_dir / "desk_other_api_token").write_text("not ours\n")
    (secrets_dir / "..data").mkdir()  # Kubernetes' projection directory
    environ = {
        "TICKETWARDEN_DESK_ZENDESK_ACME_EMAIL": "env@example.com",
        "TICKETWARDEN_DESK_ZENDESK_ACME_OAUTH_TOKEN": "",  # empty: unset
        "TICKETWARDEN_DESK_OTHER_EMAIL": "someone@example.com",
    }
    values = desk_secret_values("zendesk-acme", environ=environ, secrets_dir=secrets_dir)
    assert {k: v.get_secret_value() for k, v in values.items()} == {
        "EMAIL": "env@example.com",  # the environment wins
        "API_TOKEN": "from-file-token",  # trailing newline removed
        "WEBHOOK_SECRET": "file-webhook-secret",
    }
    # the directory may come from the environment
    environ["TICKETWARDEN_SECRETS_DIR"] = str(secrets_dir)
    assert desk_secret_values("zendesk-acme", environ=environ) == values


def test_a_missing_secrets_directory_is_an_error(tmp_path: Path) -> None:
    environ = {"TICKETWARDEN_SECRETS_DIR": str(tmp_path / "nowhere")}
    with pytest.raises(ConfigError, match=r"TICKETWARDEN_SECRETS_DIR=.*no such directory"):
        desk_secret_values("zendesk-acme", environ=environ)
    with pytest.raises(ConfigError, match="no such directory"):
        load_settings(environ=environ)


def test_zendesk_secrets_oauth_wins() -> None:
    desk = DeskConfig(name="zendesk-acme", connector="zendesk", base_url="https://a.zendesk.com")
    environ = {
        "TICKETWARDEN_DESK_ZENDESK_ACME_EMAIL": "a@example.com",
        "TICKETWARDEN_DESK_ZENDESK_ACME_API_TOKEN": "token-1234",
        "TICKETWARDEN_DESK_ZENDESK_ACME_OAUTH_TOKEN": "oauth-5678",
    }
    secrets = desk_secrets(desk, ZendeskConnector, environ=environ)
    assert isinstance(secrets.credentials, BearerToken)


def test_credential_alternatives_come_from_the_connector() -> None:
    assert credential_alternatives(ZendeskConnector) == (("EMAIL", "API_TOKEN"), ("OAUTH_TOKEN",))


def test_settings_database_url_environment_then_secrets_file_then_config(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    config = load_config(write(tmp_path, '[store]\nurl = "sqlite:///state/tw.db"\n'))
    relative = database_url(config, environ={})
    assert relative is not None
    assert relative.get_secret_value() == f"sqlite:///{(tmp_path / 'state' / 'tw.db').resolve()}"
    (secrets_dir / "database_url").write_text("postgresql://tw:from-file@db/tw\n")
    environ = {"TICKETWARDEN_SECRETS_DIR": str(secrets_dir)}
    from_file = database_url(config, environ=environ)
    assert from_file is not None
    assert from_file.get_secret_value() == "postgresql://tw:from-file@db/tw"
    environ["TICKETWARDEN_DATABASE_URL"] = "postgresql://tw:from-env@db/tw"
    settings = load_settings(environ=environ)
    assert isinstance(settings.database_url, SecretStr)
    assert settings.database_url.get_secret_value() == "postgresql://tw:from-env@db/tw"
    assert settings.secrets_dir == secrets_dir
    assert database_url(config, environ=environ) == settings.database_url
    assert database_url(Config(), environ={}) is None


def test_settings_read_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETWARDEN_DATABASE_URL", "postgresql://tw:process-secret@db/tw")
    monkeypatch.setenv("TICKETWARDEN_CONFIG", str(tmp_path / "x.toml"))
    monkeypatch.delenv("TICKETWARDEN_SECRETS_DIR", raising=False)
    settings = Settings()
    assert settings.config == tmp_path / "x.toml"
    assert settings.database_url is not None
    assert "process-secret" not in repr(settings) + str(settings)


def test_secrets_never_show(tmp_path: Path) -> None:
    environ = {
        "TICKETWARDEN_DESK_ZENDESK_ACME_EMAIL": "agent@example.com",
        "TICKETWARDEN_DESK_ZENDESK_ACME_API_TOKEN": "very-secret-token-1",
        "TICKETWARDEN_DESK_ZENDESK_ACME_WEBHOOK_SECRET": "very-secret-hook-2",
        "TICKETWARDEN_DATABASE_URL": "postgresql://tw:very-secret-pw-3@db/tw",
    }
    config = load_config(write(tmp_path, doc_toml()))
    desk = config.desks["zendesk-acme"]
    values = desk_secret_values("zendesk-acme", environ=environ)
    secrets = desk_secrets(desk, ZendeskConnector, environ=environ)
    settings = load_settings(environ=environ)
    objects = [values, secrets, settings, config, database_url(config, environ=environ)]
    shown = " ".join(text for thing in objects for text in (repr(thing), str(thing)))
    for secret in ("very-secret-token-1", "very-secret-hook-2", "very-secret-pw-3"):
        assert secret not in shown


# --- The starter file ---------------------------------------------------------------------------


def uncomment_blocks(text: str, starts: tuple[str, ...]) -> str:
    """Remove the first ``# `` of each line of the commented blocks starting with ``starts``
    (a block runs to the next blank line), as the starter file tells its reader to."""
    lines = text.splitlines()
    active = False
    for i, line in enumerate(lines):
        if not line.strip():
            active = False
        elif line.startswith(starts):
            active = True
        if active:
            lines[i] = line[2:] if line.startswith("# ") else line.removeprefix("#")
    return "\n".join(lines) + "\n"


def test_the_starter_file_loads_as_written(tmp_path: Path) -> None:
    text = render_starter(connectors=CONNECTORS)
    config = load_config(write(tmp_path, text), connectors=CONNECTORS)
    assert config.desks == {}
    assert config.policy.name == "default"
    for section in ("[policy]", "[store]", "[sync]", "# [desks.zendesk-example]"):
        assert section in text
    for variable in ("EMAIL", "API_TOKEN", "OAUTH_TOKEN", "WEBHOOK_SECRET"):
        assert f"TICKETWARDEN_DESK_ZENDESK_EXAMPLE_{variable}" in text
    assert "TICKETWARDEN_DATABASE_URL" in text
    assert "TICKETWARDEN_SECRETS_DIR" in text


def test_the_starter_file_loads_with_its_examples_uncommented(tmp_path: Path) -> None:
    text = uncomment_blocks(
        render_starter(connectors=CONNECTORS),
        ("# [desks.", "# [policy.closure]", "# [policy.calendars"),
    )
    config = load_config(write(tmp_path, text), connectors=CONNECTORS)
    desk = config.desks["zendesk-example"]
    assert desk.connector == "zendesk"
    assert str(desk.fields["severity"]) == f"custom:{fixtures.TICKET_FIELDS['severity']}"
    assert desk.escalation["support-leads"].group == str(fixtures.GROUPS["support-leads"])
    assert desk.options == {}  # the options stay commented: the defaults apply
    assert str(config.policy.closure.auto_resolve_after) == "10d"
    assert config.policy.calendars["business"].timezone == "Europe/Vienna"


def test_the_starter_file_with_the_installed_connectors(tmp_path: Path) -> None:
    path = write_starter(tmp_path / "new" / "ticketwarden.toml")
    assert path.read_text(encoding="utf-8") == render_starter()
    assert load_config(path).desks == {}


def test_write_starter_does_not_overwrite_without_force(tmp_path: Path) -> None:
    path = write(tmp_path, "# mine\n")
    with pytest.raises(ConfigError, match=r"already exists; `ticketwarden init --force`"):
        write_starter(path, connectors=CONNECTORS)
    assert path.read_text(encoding="utf-8") == "# mine\n"
    write_starter(path, force=True, connectors=CONNECTORS)
    assert "[desks.zendesk-example]" in path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="is a directory"):
        write_starter(tmp_path, connectors=CONNECTORS)


# --- check --ping ---------------------------------------------------------------------------------

CREDENTIALS = {
    "TICKETWARDEN_DESK_ZENDESK_ACME_EMAIL": fixtures.AGENT_EMAIL,
    "TICKETWARDEN_DESK_ZENDESK_ACME_API_TOKEN": fixtures.API_TOKEN,
    "TICKETWARDEN_DESK_ZENDESK_ACME_WEBHOOK_SECRET": fixtures.WEBHOOK_SECRET,
}


def emulated(emulator: ZendeskEmulator, clock: FakeClock) -> Callable[[DeskConfig], Runtime]:
    def runtime_for(desk: DeskConfig) -> Runtime:
        return Runtime(
            transport=emulator.transport(),
            clock=clock.monotonic,
            sleep=clock.sleep,
            wall_clock=clock.time,
        )

    return runtime_for


def ping_one(
    tmp_path: Path,
    environ: dict[str, str],
    *,
    emulator: ZendeskEmulator | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    base_url: str = "https://example.zendesk.com",
    secrets_dir: Path | None = None,
) -> PingResult:
    clock = FakeClock()
    text = doc_toml().replace("https://acme.zendesk.com", base_url)
    config = load_config(write(tmp_path, text))
    emulator_runtime = emulated(emulator or ZendeskEmulator(clock=clock), clock)

    def runtime_for(desk: DeskConfig) -> Runtime:
        if transport is None:
            return emulator_runtime(desk)
        return Runtime(transport=transport, sleep=clock.sleep)

    (result,) = asyncio.run(
        ping(config, environ=environ, secrets_dir=secrets_dir, runtime_for=runtime_for)
    )
    assert result.desk == "zendesk-acme"
    return result


def test_ping_ok_against_the_emulator(tmp_path: Path) -> None:
    emulator = ZendeskEmulator(clock=FakeClock())
    result = ping_one(tmp_path, CREDENTIALS, emulator=emulator)
    assert result.ok, result.message
    assert result.kind == "ok"
    assert result.latency_ms is not None
    assert result.message.startswith("ok: zendesk at https://example.zendesk.com")
    assert "WEBHOOK_SECRET" not in result.message
    assert len(emulator.requests) == 1  # reached once


def test_ping_with_secrets_from_the_secrets_directory(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "desk_zendesk-acme_email").write_text(fixtures.AGENT_EMAIL + "\n")
    (secrets_dir / "desk_zendesk-acme_api_token").write_text(fixtures.API_TOKEN + "\n")
    result = ping_one(tmp_path, {}, secrets_dir=secrets_dir)
    assert result.ok, result.message
    assert "TICKETWARDEN_DESK_ZENDESK_ACME_WEBHOOK_SECRET is not set" in result.message


def test_ping_with_a_wrong_token_is_an_authentication_failure(tmp_path: Path) -> None:
    environ = {**CREDENTIALS, "TICKETWARDEN_DESK_ZENDESK_ACME_API_TOKEN": "wrong-token-9876"}
    result = ping_one(tmp_path, environ)
    assert not result.ok
    assert result.kind == "authentication"
    assert result.message.startswith("authentication failed (HTTP 401")
    assert "TICKETWARDEN_DESK_ZENDESK_ACME_API_TOKEN" in result.message
    assert "Couldn't authenticate you" in result.message
    assert "wrong-token-9876" not in repr(result)


def test_ping_without_secrets_names_the_variables_to_set(tmp_path: Path) -> None:
    emulator = ZendeskEmulator(clock=FakeClock())
    result = ping_one(tmp_path, {}, emulator=emulator)
    assert not result.ok
    assert result.kind == "missing_secrets"
    assert result.message.startswith(
        "missing credentials: set TICKETWARDEN_DESK_ZENDESK_ACME_EMAIL and "
        "TICKETWARDEN_DESK_ZENDESK_ACME_API_TOKEN, or TICKETWARDEN_DESK_ZENDESK_ACME_OAUTH_TOKEN"
    )
    assert "desk_zendesk-acme_<suffix>" in result.message
    assert emulator.requests == []  # nothing sent without credentials
    partial = {"TICKETWARDEN_DESK_ZENDESK_ACME_EMAIL": fixtures.AGENT_EMAIL}
    result = ping_one(tmp_path, partial)
    assert result.message.startswith(
        "missing credentials: set TICKETWARDEN_DESK_ZENDESK_ACME_API_TOKEN, or "
    )
    assert "(found: TICKETWARDEN_DESK_ZENDESK_ACME_EMAIL)" in result.message


def test_ping_forbidden_and_rate_limited(tmp_path: Path) -> None:
    emulator = ZendeskEmulator(clock=FakeClock())
    emulator.script(Fault("status", status=403))
    result = ping_one(tmp_path, CREDENTIALS, emulator=emulator)
    assert (result.kind, result.ok) == ("forbidden", False)
    assert "docs/helpdesks/zendesk.md" in result.message
    emulator.script(Fault("rate_limit", retry_after=30))
    result = ping_one(tmp_path, CREDENTIALS, emulator=emulator)
    assert result.kind == "rate_limited"
    assert "wait 30 s" in result.message
    assert len(emulator.requests) == 2  # no retry, no waiting


def test_ping_a_wrong_base_url_is_not_found(tmp_path: Path) -> None:
    result = ping_one(tmp_path, CREDENTIALS, base_url="https://example.zendesk.com/support")
    assert result.kind == "not_found"
    assert "is base_url the desk's own address" in result.message


def test_ping_dns_and_connection_failures(tmp_path: Path) -> None:
    def failing(cause: Exception, text: str) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError(text, request=request) from cause

        return httpx.MockTransport(handler)

    dns = failing(socket.gaierror(-2, "Name or service not known"), "[Errno -2] Name or ...")
    result = ping_one(tmp_path, CREDENTIALS, transport=dns)
    assert result.kind == "dns"
    assert "does not resolve" in result.message
    refused = failing(ConnectionRefusedError(111, "refused"), "All connection attempts failed")
    result = ping_one(tmp_path, CREDENTIALS, transport=refused)
    assert result.kind == "connection"
    assert "cannot connect" in result.message

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    result = ping_one(tmp_path, CREDENTIALS, transport=httpx.MockTransport(slow))
    assert result.kind == "timeout"


def test_ping_an_answer_that_is_not_the_helpdesk(tmp_path: Path) -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>a login page</html>")

    result = ping_one(tmp_path, CREDENTIALS, transport=httpx.MockTransport(html))
    assert result.kind == "protocol"
    assert "is base_url a zendesk desk?" in result.message


def test_ping_reports_each_desk_in_order(tmp_path: Path) -> None:
    text = doc_toml() + DESK.replace("zendesk-acme", "zendesk-beta").replace("acme.", "example.")
    config = load_config(write(tmp_path, text))
    clock = FakeClock()
    results = asyncio.run(
        ping(
            config,
            environ=CREDENTIALS,
            runtime_for=emulated(ZendeskEmulator(clock=clock), clock),
            connectors=CONNECTORS,
        )
    )
    assert [r.desk for r in results] == ["zendesk-acme", "zendesk-beta"]
    assert [r.kind for r in results] == ["ok", "missing_secrets"]
    unknown = asyncio.run(ping(config, environ=CREDENTIALS, connectors={}))
    assert {r.kind for r in unknown} == {"unknown_connector"}
    assert asyncio.run(ping(Config(), environ={})) == []


# --- docs/configuration.md ------------------------------------------------------------------------

CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"


def test_the_complete_example_of_the_configuration_guide_loads(tmp_path: Path) -> None:
    text = CONFIGURATION_DOC.read_text(encoding="utf-8")
    example = text.split("## A complete example", 1)[1]
    config_text, policy_text = re.findall(r"```toml\n(.*?)```", example, re.S)[:2]
    write(tmp_path, policy_text, "policy.toml")
    config = load_config(write(tmp_path, config_text), connectors=CONNECTORS)
    assert config.policy.name == "acme support"
    assert config.policy_file == (tmp_path / "policy.toml").resolve()
    assert config.sync.page_limit == 500
    assert config.store.url == "postgresql://ticketwarden@db.internal/ticketwarden"
    assert list(config.desks) == ["zendesk-acme"]
    assert config_warnings(config) == []


def test_the_error_shown_in_the_configuration_guide_is_the_real_one(tmp_path: Path) -> None:
    text = CONFIGURATION_DOC.read_text(encoding="utf-8")
    shown = re.search(r"error: (ticketwarden\.toml: 3 problem.*?)\n```", text, re.S)
    assert shown is not None
    path = write(
        tmp_path,
        '[policy.closure]\nreminders = ["2d", "soon"]\n'
        + DESK.replace('"zendesk"', '"zendisk"')
        + '[desks.zendesk-acme.fields]\nseverity = "360012345000"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, connectors=CONNECTORS)
    assert str(caught.value).replace(str(path), "ticketwarden.toml") == shown.group(1)


def test_the_serve_table_of_the_configuration_guide_matches_the_settings() -> None:
    from ticketwarden.core.settings import ServeSettings

    text = CONFIGURATION_DOC.read_text(encoding="utf-8")
    section = text.split("### `[serve]`", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", section, re.M)
    documented = {key: default for key, default in rows}
    defaults = ServeSettings()
    assert set(documented) == set(ServeSettings.model_fields)
    for key, shown in documented.items():
        value = getattr(defaults, key)
        assert shown == (f'"{value}"' if isinstance(value, str) else str(value)), key
