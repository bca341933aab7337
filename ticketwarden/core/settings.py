"""The configuration: ``ticketwarden.toml``, settings from the environment, and desk secrets.

One TOML file describes the policy (the built-in preset plus overrides) and the desks
(connector, base URL, field mapping), the state store and the sync job::

    policy_file = "policy.toml"      # or a [policy] table; never both
    [desks.zendesk-acme]             # the table key is the desk's name
    connector = "zendesk"
    base_url = "https://acme.zendesk.com"
    [store]
    url = "postgresql://ticketwarden@db.internal/ticketwarden"   # no password here
    [sync]
    page_limit = 1000

Secrets never sit in the file. They come from the environment or from files in a secrets
directory (``$TICKETWARDEN_SECRETS_DIR``, e.g. ``/run/secrets`` as Docker and Kubernetes mount
them), always as :class:`~pydantic.SecretStr`:

- ``TICKETWARDEN_DATABASE_URL`` (or the file ``database_url``) — the store's URL with its
  password; it wins over ``store.url``.
- ``TICKETWARDEN_DESK_<DESK>_<SUFFIX>`` (the desk name upper-cased, ``-`` written ``_``), or
  the file ``desk_<desk>_<suffix>`` (lower case) — one desk's credentials and webhook secret;
  the connector's :meth:`~ticketwarden.core.connector.Connector.secrets_from` says which
  suffixes it reads (Zendesk: ``EMAIL`` + ``API_TOKEN``, or ``OAUTH_TOKEN``; ``WEBHOOK_SECRET``).
  The environment wins over the directory.

Every problem is a :class:`ConfigError` naming the file, the key path and what is wrong —
never a traceback, and never a secret's value.

The command line uses :func:`load_config` (``ticketwarden check``, ``sync``, ``serve``),
:func:`write_starter` (``ticketwarden init``) and :func:`ping` (``ticketwarden check --ping``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import ssl
import textwrap
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import httpx
import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from ticketwarden.core.clock import parse_span
from ticketwarden.core.connector import Capability, DeskConfig, DeskSecrets, Runtime
from ticketwarden.core.errors import (
    AuthenticationError,
    HelpdeskError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RejectedError,
    ServerError,
    TicketwardenError,
    TransportError,
    redact,
    sanitize_url,
)
from ticketwarden.core.http import BasicCredentials
from ticketwarden.core.policy import (
    Policy,
    PolicyError,
    deep_merge,
    default_policy,
    load_policy,
    policy_data,
)

__all__ = [
    "CONFIG_ENV",
    "DATABASE_URL_ENV",
    "DEFAULT_CONFIG_FILE",
    "SECRETS_DIR_ENV",
    "Config",
    "ConfigError",
    "PingResult",
    "ServeSettings",
    "Settings",
    "StoreSettings",
    "SyncSettings",
    "config_warnings",
    "credential_alternatives",
    "database_url",
    "default_config_path",
    "desk_env_var",
    "desk_secret_file",
    "desk_secret_values",
    "desk_secrets",
    "load_config",
    "load_settings",
    "ping",
    "render_starter",
    "write_starter",
]

ENV_PREFIX: Final = "TICKETWARDEN_"
CONFIG_ENV: Final = "TICKETWARDEN_CONFIG"
"""Names the configuration file when no path is given (default ``./ticketwarden.toml``)."""
SECRETS_DIR_ENV: Final = "TICKETWARDEN_SECRETS_DIR"
"""A directory of secret files (``database_url``, ``desk_<desk>_<suffix>``)."""
DATABASE_URL_ENV: Final = "TICKETWARDEN_DATABASE_URL"
"""The store's URL with its password; wins over ``store.url`` in the file."""
DESK_ENV_PREFIX: Final = "TICKETWARDEN_DESK_"
DEFAULT_CONFIG_FILE: Final = "ticketwarden.toml"

PING_CONNECT_TIMEOUT: Final = 10.0
PING_READ_TIMEOUT: Final = 20.0
"""Ceilings of the one request :func:`ping` sends to each desk (seconds)."""

Loc = tuple[str | int, ...]


class ConfigError(TicketwardenError):
    """A configuration that cannot be used: the message names the file, the key path and the
    problem (one line each), never a secret's value."""


# --- The file's sections -----------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_DATABASE_SCHEMES = frozenset(
    {"sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg"}
)


def _url_password(url: str) -> bool:
    """Whether a URL carries a password (in its user info or a ``password=`` parameter)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return False
    if password:
        return True
    return any(
        name.lower() in ("password", "passwd") and value
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )


class StoreSettings(_Section):
    """``[store]``: where the state lives.

    ``url`` unset: the store's SQLite file (``$TICKETWARDEN_DATA_DIR/ticketwarden.db``, else
    under ``$XDG_DATA_HOME`` or ``~/.local/share/ticketwarden``). A relative SQLite path is
    relative to the configuration file. ``TICKETWARDEN_DATABASE_URL`` wins over this, and is
    the only place for a password (see :func:`database_url`).
    """

    url: str | None = Field(
        None,
        description="sqlite:///PATH or postgresql://USER@HOST/DB — without a password",
    )

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, _ = value.partition("://")
        if not sep or scheme.lower() not in _DATABASE_SCHEMES:
            raise ValueError(
                "not a database URL: use sqlite:///PATH or postgresql://USER@HOST/DATABASE"
            )
        if _url_password(value):
            raise ValueError(
                "a password does not belong in the file: leave it out here and give the whole "
                f"URL in {DATABASE_URL_ENV} (or the file database_url in the secrets directory)"
            )
        return value


class SyncSettings(_Section):
    """``[sync]``: how much one run of ``ticketwarden sync`` does."""

    page_limit: int = Field(1000, ge=1, description="pages of changes read per desk per run")
    candidate_lookback: str = Field(
        "30d", description="how far back to search tickets never seen before for due timers"
    )
    lease_ttl: str = Field(
        "10m", description="a desk's sync lease lapses this long after its holder stops"
    )

    @field_validator("candidate_lookback", "lease_ttl")
    @classmethod
    def _duration(cls, value: str) -> str:
        span = parse_span(value)
        if span.days == 0 and span.seconds == 0:
            raise ValueError("must be longer than zero")
        return value

    @property
    def lookback(self) -> timedelta:
        """``candidate_lookback`` as a timedelta (a day is 24 hours)."""
        return parse_span(self.candidate_lookback).to_timedelta(timedelta(days=1))

    @property
    def lease(self) -> timedelta:
        """``lease_ttl`` as a timedelta."""
        return parse_span(self.lease_ttl).to_timedelta(timedelta(days=1))


def _span(value: str) -> timedelta:
    return parse_span(value).to_timedelta(timedelta(days=1))


class ServeSettings(_Section):
    """``[serve]``: the webhook sidecar (``ticketwarden serve``)."""

    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0 in a container)")
    port: int = Field(8080, ge=1, le=65535, description="port to listen on")
    workers: int = Field(4, ge=0, description="inbox worker tasks in this process (0: none)")
    max_attempts: int = Field(
        8, ge=1, description="tries of an inbox event before it is dead-lettered"
    )
    retry_base: str = Field("5s", description="first retry delay; doubles per attempt")
    retry_cap: str = Field("10m", description="longest retry delay")
    timers_every: str = Field("30s", description="how often the scheduler fires due timers")
    catch_up_every: str = Field(
        "5m", description="how often the change feed is read for webhooks never delivered"
    )
    keep_done: str = Field(
        "2d", description="how long carried-out events are kept to recognise redeliveries"
    )
    shutdown_grace: str = Field(
        "30s", description="on SIGTERM, how long in-flight events may take to finish"
    )

    @field_validator(
        "retry_base", "retry_cap", "timers_every", "catch_up_every", "keep_done", "shutdown_grace"
    )
    @classmethod
    def _duration(cls, value: str) -> str:
        span = parse_span(value)
        if span.days == 0 and span.seconds == 0:
            raise ValueError("must be longer than zero")
        return value

    def span(self, name: str) -> timedelta:
        """One of the duration settings as a timedelta (a day is 24 hours)."""
        value = getattr(self, name)
        if not isinstance(value, str):
            raise AttributeError(name)
        return _span(value)


def desk_env_var(desk: str, suffix: str) -> str:
    """``TICKETWARDEN_DESK_<DESK>_<SUFFIX>``: the desk name upper-cased, ``-`` written ``_``."""
    return f"{DESK_ENV_PREFIX}{_env_part(desk)}_{suffix.upper()}"


def desk_secret_file(desk: str, suffix: str) -> str:
    """``desk_<desk>_<suffix>``: the name of a desk's secret file in the secrets directory."""
    return f"desk_{desk}_{suffix.lower()}"


def _env_part(desk: str) -> str:
    return desk.upper().replace("-", "_")


class Config(_Section):
    """The whole ``ticketwarden.toml``, validated.

    ``policy`` is the built-in preset merged with the ``[policy]`` table or the file named by
    ``policy_file``. ``desks`` come from ``[desks.<name>]`` tables; the key becomes
    :attr:`DeskConfig.name`. ``path`` is the file it was read from (``None`` when built in
    code). :func:`load_config` also checks each desk's connector and options against the
    installed connectors.
    """

    policy: Policy = Field(default_factory=default_policy)
    desks: dict[str, DeskConfig] = Field(default_factory=dict)
    store: StoreSettings = StoreSettings()
    sync: SyncSettings = SyncSettings()
    serve: ServeSettings = ServeSettings()
    path: Path | None = None
    policy_file: Path | None = None

    @field_validator("desks", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        named: dict[Any, Any] = {}
        for key, table in value.items():
            if isinstance(table, Mapping):
                given = table.get("name", key)
                if given != key:
                    raise ValueError(
                        f"desk {key!r} says name = {given!r}: a desk's name is its table key "
                        f"([desks.{key}]); leave name out"
                    )
                table = {**table, "name": key}
            elif isinstance(table, DeskConfig) and table.name != key:
                raise ValueError(f"desk {key!r} is a DeskConfig named {table.name!r}")
            named[key] = table
        return named

    @field_validator("desks")
    @classmethod
    def _distinct_variables(cls, value: dict[str, DeskConfig]) -> dict[str, DeskConfig]:
        by_part: dict[str, list[str]] = {}
        for name in value:
            by_part.setdefault(_env_part(name), []).append(name)
        clashes = [names for names in by_part.values() if len(names) > 1]
        if clashes:
            names = clashes[0]
            raise ValueError(
                f"desks {' and '.join(names)} would share the environment variables "
                f"{DESK_ENV_PREFIX}{_env_part(names[0])}_*: rename one"
            )
        return value


# --- Error messages ----------------------------------------------------------------------------

_SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|token|api_?key|credential)")
_SENSITIVE_LOCS = frozenset({"store.url", "database_url"})
"""Values never echoed in a message (they may hold a password)."""
_DESK_NAME_HELP = (
    "a desk's name (its table key) is lower-case letters, digits, '-' and '_', starting with a "
    "letter or digit"
)


def _loc_text(loc: Loc) -> str:
    """A key path without pydantic's schema steps (``chain[...]``, ``function-...``)."""
    return ".".join(str(p) for p in loc if not ("[" in str(p) or str(p).startswith("function-")))


def _problems(exc: ValidationError, prefix: Loc = ()) -> list[tuple[str, str]]:
    """``(key path, what is wrong)`` for each error, in the style of
    :func:`ticketwarden.core.policy.format_validation_error`: where a value could be given in
    several forms only the explanation for the form used is kept; unknown keys are named as
    such; the given value is shown unless it may hold a secret."""
    errors = exc.errors()
    locs = [_loc_text((*prefix, *e["loc"])) for e in errors]
    found: list[tuple[str, str]] = []
    for error, loc in zip(errors, locs, strict=True):
        if error["type"] == "is_instance_of" and locs.count(loc) > 1:
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        given = error.get("input")
        parts = loc.split(".")
        if error["type"] == "extra_forbidden":
            message = "unknown key (not part of the file format)"
            if parts[0] == "desks" and len(parts) >= 3 and _SECRET_KEY.search(parts[-1]):
                message = (
                    "secrets never go in the file: set "
                    f"{desk_env_var(parts[1], parts[-1])} in the environment (or the file "
                    f"{desk_secret_file(parts[1], parts[-1])} in the secrets directory)"
                )
        elif isinstance(given, str) and _url_password(given):
            message = message.replace(given, sanitize_url(given))  # never echo a password
        elif error["type"] == "string_pattern_mismatch" and _is_desk_name(parts):
            message = f"{_DESK_NAME_HELP} (got {parts[1]!r})"
        elif (
            given is not None
            and not isinstance(given, dict | list)
            and repr(given) not in message
            and loc not in _SENSITIVE_LOCS
        ):
            message += f" (got {given!r})"
        found.append((loc or "(top level)", message))
    return found


def _is_desk_name(parts: Sequence[str]) -> bool:
    return len(parts) == 3 and parts[0] == "desks" and parts[2] == "name"


def _error(source: str, problems: Sequence[tuple[str, str]], what: str) -> ConfigError:
    lines = [f"  {loc}: {message}" for loc, message in problems]
    return ConfigError("\n".join([f"{source}: {len(lines)} problem(s) in {what}", *lines]))


# --- Loading the file --------------------------------------------------------------------------


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def default_config_path(*, environ: Mapping[str, str] | None = None) -> Path:
    """``$TICKETWARDEN_CONFIG``, else ``./ticketwarden.toml``."""
    named = _environ(environ).get(CONFIG_ENV, "").strip()
    return Path(named).expanduser() if named else Path(DEFAULT_CONFIG_FILE)


def load_config(
    path: Path | None = None,
    *,
    connectors: Mapping[str, type[Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate the configuration file.

    :param path: the file (default: :func:`default_config_path`).
    :param connectors: the installed connectors by name (default: the registered plugins').
    :param environ: the environment to read ``TICKETWARDEN_CONFIG`` from (default: the
        process's).
    :raises ConfigError: the file is missing (``ticketwarden init`` writes one), unreadable,
        not TOML, or not valid — every problem named by its key path.
    """
    path = path if path is not None else default_config_path(environ=environ)
    source = str(path)
    try:
        raw_bytes = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: no configuration file; `ticketwarden init` writes a commented starter "
            f"(or name another file with --config or {CONFIG_ENV})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file ({exc.strerror or exc})") from None
    try:
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return config_from_data(raw, path=path, connectors=connectors)


def config_from_data(
    raw: Mapping[str, Any],
    *,
    path: Path | None = None,
    connectors: Mapping[str, type[Any]] | None = None,
) -> Config:
    """Validate configuration data as read from a TOML file (see :func:`load_config`);
    ``policy_file`` is relative to ``path``'s directory (the working directory without one)."""
    source = str(path) if path is not None else "<configuration>"
    base = path.resolve().parent if path is not None else Path.cwd()
    data = dict(raw)
    problems: list[tuple[str, str]] = []
    if "path" in data:
        del data["path"]
        problems.append(("path", "unknown key (not part of the file format)"))

    policy_file: Path | None = None
    named_file = data.pop("policy_file", None)
    if named_file is not None and "policy" in data:
        problems.append(("policy_file", "give either a [policy] table or policy_file, not both"))
    elif named_file is not None:
        if not isinstance(named_file, str) or not named_file.strip():
            problems.append(("policy_file", "must be the path of a policy file (text)"))
        else:
            named_path = (base / Path(named_file).expanduser()).resolve()
            try:
                data["policy"] = load_policy(named_path)
                policy_file = named_path
            except PolicyError as exc:
                problems.append(("policy_file", str(exc).replace("\n", "\n    ")))
    elif isinstance(data.get("policy"), Mapping):
        data["policy"] = deep_merge(policy_data(default_policy()), data["policy"])

    desks = data.get("desks")
    if isinstance(desks, Mapping) and desks:
        problems.extend(_desk_problems(desks, connectors, source))

    config: Config | None = None
    try:
        config = Config.model_validate(
            {**data, "path": path.resolve() if path is not None else None}
        )
    except ValidationError as exc:
        problems = _problems(exc) + problems
    if problems or config is None:
        raise _error(source, problems, "the configuration")
    if policy_file is not None:
        config = config.model_copy(update={"policy_file": policy_file})
    return config


def _installed_connectors() -> dict[str, type[Any]]:
    from ticketwarden.core.registry import PluginError, load_plugins

    try:
        return load_plugins().connectors()
    except PluginError as exc:
        raise ConfigError(f"cannot load the connector plugins: {exc}") from None


def _desk_problems(
    desks: Mapping[str, Any], connectors: Mapping[str, type[Any]] | None, source: str
) -> list[tuple[str, str]]:
    """The checks pydantic cannot make alone: each desk's connector is installed, its options
    are that connector's, and no credentials hide in its base URL."""
    problems: list[tuple[str, str]] = []
    for name, table in desks.items():
        if not isinstance(table, Mapping):
            continue
        base_url = table.get("base_url")
        if isinstance(base_url, str) and _url_password(base_url):
            problems.append(
                (
                    f"desks.{name}.base_url",
                    "credentials do not belong in the URL (or anywhere in the file): give them "
                    f"as {desk_env_var(name, '<SUFFIX>')} in the environment",
                )
            )
        connector = table.get("connector")
        if not isinstance(connector, str):
            continue  # pydantic reports it
        if connectors is None:
            connectors = _installed_connectors()
        cls = connectors.get(connector)
        if cls is None:
            known = ", ".join(sorted(connectors)) or "none: no connector plugin is installed"
            problems.append(
                (f"desks.{name}.connector", f"unknown connector {connector!r} (known: {known})")
            )
            continue
        options = table.get("options", {})
        model = getattr(cls, "Options", None)
        if (
            isinstance(options, Mapping)
            and isinstance(model, type)
            and issubclass(model, BaseModel)
        ):
            try:
                model.model_validate(options)
            except ValidationError as exc:
                problems.extend(_problems(exc, ("desks", name, "options")))
    return problems


def config_warnings(config: Config) -> list[str]:
    """What is valid but probably not intended: no desks, intake fields a desk does not map
    (its tickets would never be complete), escalation targets a desk does not map (those
    escalations would fail)."""
    if not config.desks:
        return ["no desks are configured: add a [desks.<name>] table (see `ticketwarden init`)"]
    policy = config.policy
    intake = [f.name for f in policy.intake.fields if f.required]
    targets = sorted(
        {
            policy.escalation.severity1_target,
            policy.escalation.breach_target,
            policy.escalation.customer_request_target,
            *(c.route_to for c in policy.scope.categories if policy.scope.action == "route"),
        }
    )
    warnings = []
    for name, desk in config.desks.items():
        unmapped = [
            f for f in intake if f not in ("subject", "description") and f not in desk.fields
        ]
        if unmapped:
            warnings.append(
                f"desks.{name}.fields: no mapping for the intake field(s) {', '.join(unmapped)}; "
                "tickets of this desk can never be complete"
            )
        missing = [t for t in targets if t not in desk.escalation]
        if missing:
            warnings.append(
                f"desks.{name}.escalation: the policy escalates to {', '.join(missing)}, which "
                "this desk does not map; those escalations would fail"
            )
    return warnings


# --- Settings from the environment -------------------------------------------------------------

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("ticketwarden_environ", default=None)
_SECRETS_DIR: ContextVar[Path | None] = ContextVar("ticketwarden_secrets_dir", default=None)


class _MappingSource(PydanticBaseSettingsSource):
    """``TICKETWARDEN_<FIELD>`` from a given mapping instead of the process environment."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._values = {k.upper(): v for k, v in environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value = self._values.get(f"{ENV_PREFIX}{field_name}".upper())
        return (value or None), field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(info, name)
            if value is not None:
                found[key] = value
        return found


def _secrets_dir_of(environ: Mapping[str, str], given: Path | None) -> Path | None:
    """The secrets directory: ``given``, else ``$TICKETWARDEN_SECRETS_DIR``; it must exist."""
    if given is None:
        named = environ.get(SECRETS_DIR_ENV, "").strip()
        if not named:
            return None
        given = Path(named).expanduser()
    if not given.is_dir():
        raise ConfigError(f"{SECRETS_DIR_ENV}={given}: no such directory")
    return given


class Settings(BaseSettings):
    """What the environment says: ``TICKETWARDEN_DATABASE_URL``, ``TICKETWARDEN_CONFIG`` and
    ``TICKETWARDEN_SECRETS_DIR``; the database URL may also be the file ``database_url`` in the
    secrets directory. Build it with :func:`load_settings` (which checks the directory and turns
    problems into :class:`ConfigError`); ``Settings()`` reads the process environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True
    )

    database_url: SecretStr | None = None
    config: Path | None = None
    secrets_dir: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        sources = [
            init_settings,
            env_settings if environ is None else _MappingSource(settings_cls, environ),
        ]
        secrets_dir = _SECRETS_DIR.get()
        if secrets_dir is None:
            named = _environ(environ).get(SECRETS_DIR_ENV, "").strip()
            secrets_dir = Path(named).expanduser() if named else None
        if secrets_dir is not None and secrets_dir.is_dir():
            sources.append(
                SecretsSettingsSource(
                    settings_cls, secrets_dir=secrets_dir, env_prefix="", case_sensitive=False
                )
            )
        return tuple(sources)


@contextmanager
def _context(environ: Mapping[str, str] | None, secrets_dir: Path | None) -> Iterator[None]:
    environ_token = _ENVIRON.set(environ)
    dir_token = _SECRETS_DIR.set(secrets_dir)
    try:
        yield
    finally:
        _SECRETS_DIR.reset(dir_token)
        _ENVIRON.reset(environ_token)


def load_settings(
    *, environ: Mapping[str, str] | None = None, secrets_dir: Path | None = None
) -> Settings:
    """The :class:`Settings` of ``environ`` (default: the process environment) and the secrets
    directory (default: ``$TICKETWARDEN_SECRETS_DIR``).

    :raises ConfigError: the secrets directory does not exist, or a value is unusable.
    """
    directory = _secrets_dir_of(_environ(environ), secrets_dir)
    with _context(environ, directory):
        try:
            return Settings()
        except ValidationError as exc:
            raise _error("the environment", _problems(exc), "the settings") from None


def database_url(
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    secrets_dir: Path | None = None,
) -> SecretStr | None:
    """The store's URL: ``TICKETWARDEN_DATABASE_URL`` (or the secrets directory's
    ``database_url``) if set, else ``store.url`` with a relative SQLite path made relative to
    the configuration file; ``None`` means the store's default SQLite file."""
    settings = load_settings(environ=environ, secrets_dir=secrets_dir)
    if settings.database_url is not None:
        return settings.database_url
    url = config.store.url
    if url is None:
        return None
    scheme, _, rest = url.partition("://")
    if scheme.lower().startswith("sqlite") and config.path is not None:
        file, sep, query = rest.removeprefix("/").partition("?")
        if file and file != ":memory:" and not Path(file).is_absolute():
            absolute = (config.path.parent / file).resolve()
            url = f"{scheme}:///{absolute}{sep}{query}"
    return SecretStr(url)


# --- Desk secrets ------------------------------------------------------------------------------


def desk_secret_values(
    desk: str,
    *,
    environ: Mapping[str, str] | None = None,
    secrets_dir: Path | None = None,
) -> dict[str, SecretStr]:
    """A desk's secrets by upper-case suffix, as :meth:`Connector.secrets_from` takes them.

    From ``TICKETWARDEN_DESK_<DESK>_<SUFFIX>`` in ``environ`` (default: the process
    environment; the desk name upper-cased, ``-`` written ``_``) and from files
    ``desk_<desk>_<suffix>`` (lower case; ``-`` or ``_`` in the desk name) in ``secrets_dir``
    (default: ``$TICKETWARDEN_SECRETS_DIR``), a file's trailing newline removed. The
    environment wins. Empty values count as unset.

    :raises ConfigError: the secrets directory does not exist, or a secret file is unreadable.
    """
    env = _environ(environ)
    values: dict[str, SecretStr] = {}
    directory = _secrets_dir_of(env, secrets_dir)
    if directory is not None:
        prefix = f"desk_{_env_part(desk).lower()}_"
        for entry in sorted(directory.iterdir()):
            normalized = entry.name.lower().replace("-", "_")
            if entry.name.startswith(".") or not normalized.startswith(prefix):
                continue
            suffix = normalized.removeprefix(prefix).upper()
            if not suffix or not entry.is_file():
                continue
            try:
                text = entry.read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ConfigError(f"{entry}: cannot read the secret file ({reason})") from None
            if text:
                values[suffix] = SecretStr(text)
    env_prefix = f"{DESK_ENV_PREFIX}{_env_part(desk)}_"
    for name, value in env.items():
        if name.startswith(env_prefix) and len(name) > len(env_prefix) and value:
            values[name.removeprefix(env_prefix)] = SecretStr(value)
    return values


def desk_secrets(
    config: DeskConfig,
    connector_class: type[Any],
    *,
    environ: Mapping[str, str] | None = None,
    secrets_dir: Path | None = None,
) -> DeskSecrets:
    """The desk's :class:`DeskSecrets`: ``connector_class.secrets_from`` of
    :func:`desk_secret_values`."""
    values = desk_secret_values(config.name, environ=environ, secrets_dir=secrets_dir)
    secrets: DeskSecrets = connector_class.secrets_from(values)
    return secrets


_SUFFIX_VOCABULARY: Final = (
    "EMAIL",
    "API_TOKEN",
    "OAUTH_TOKEN",
    "API_KEY",
    "TOKEN",
    "USERNAME",
    "PASSWORD",
    "CLIENT_ID",
    "CLIENT_SECRET",
)
"""The secret names the credential alternatives of a connector are looked for among."""
_PROBE = SecretStr("probe@example.com")


_ALTERNATIVES: dict[type[Any], tuple[tuple[str, ...], ...]] = {}


def credential_alternatives(connector_class: type[Any]) -> tuple[tuple[str, ...], ...]:
    """The sets of secret suffixes that give a connector credentials, most specific first.

    Found by asking the connector's ``secrets_from`` (so a third-party connector needs to
    declare nothing): every single name and pair of :data:`_SUFFIX_VOCABULARY` is tried and the
    minimal sets that yield credentials are kept. The base class's generic ``USERNAME`` +
    ``PASSWORD`` is left out when the connector spells basic credentials its own way
    (Zendesk's ``EMAIL`` + ``API_TOKEN``).
    """
    found: list[tuple[tuple[str, ...], bool]] = []
    candidates = itertools.chain(
        ((name,) for name in _SUFFIX_VOCABULARY),
        itertools.combinations(_SUFFIX_VOCABULARY, 2),
    )
    for names in candidates:
        if any(set(kept) <= set(names) for kept, _ in found):
            continue
        try:
            secrets = connector_class.secrets_from(dict.fromkeys(names, _PROBE))
        except Exception:  # a connector refusing a made-up value: not an alternative
            continue
        credentials = getattr(secrets, "credentials", None)
        if credentials is not None:
            found.append((names, isinstance(credentials, BasicCredentials)))
    own_basic = any(basic and names != ("USERNAME", "PASSWORD") for names, basic in found)
    kept = [names for names, _ in found if not (own_basic and names == ("USERNAME", "PASSWORD"))]
    order = {name: i for i, name in enumerate(_SUFFIX_VOCABULARY)}
    return tuple(sorted(kept, key=lambda names: [order[n] for n in names]))


def _known_suffixes(alternatives: Sequence[Sequence[str]]) -> set[str]:
    return {"WEBHOOK_SECRET", *itertools.chain.from_iterable(alternatives)}


def _missing_credentials(
    desk: DeskConfig,
    connector_class: type[Any],
    present: Sequence[str],
    secrets_dir: Path | None,
) -> str:
    alternatives = credential_alternatives(connector_class)
    if not alternatives:
        return (
            f"no credentials: the {desk.connector} connector made none of the secrets found "
            f"({', '.join(desk_env_var(desk.name, s) for s in present) or 'none'})"
        )
    # an alternative partly given comes first; otherwise the connector's own order
    ranked = sorted(alternatives, key=lambda alt: not any(s in present for s in alt))
    options = [
        " and ".join(desk_env_var(desk.name, s) for s in alt if s not in present) for alt in ranked
    ]
    message = f"missing credentials: set {', or '.join(options)}"
    found = [desk_env_var(desk.name, s) for s in present if s in _known_suffixes(alternatives)]
    if found:
        message += f" (found: {', '.join(found)})"
    where = secrets_dir if secrets_dir else f"the secrets directory (${SECRETS_DIR_ENV})"
    return (
        f"{message} — in the environment, or as files "
        f"{desk_secret_file(desk.name, '<suffix>')} in {where}"
    )


# --- Reaching each desk ------------------------------------------------------------------------


@dataclass(frozen=True)
class PingResult:
    """What :func:`ping` found for one desk.

    ``kind`` names the outcome for programs: ``ok``, ``missing_secrets``, ``secrets``,
    ``unknown_connector``, ``config``, ``dns``, ``connection``, ``timeout``, ``tls``,
    ``authentication``, ``forbidden``, ``not_found``, ``rate_limited``, ``server_error``,
    ``protocol``, ``rejected`` or ``error``. ``latency_ms`` is the request's round trip when
    one was answered. The message never contains a secret.
    """

    desk: str
    ok: bool
    message: str
    kind: str = "ok"
    latency_ms: float | None = None


def _probe_config(desk: DeskConfig) -> DeskConfig:
    """The desk with one attempt per request, no waiting for a 429, and short timeouts."""
    http = desk.http
    settings = http.model_copy(
        update={
            "retry": http.retry.model_copy(update={"attempts": 1, "max_retry_after": 0.0}),
            "connect_timeout": min(http.connect_timeout, PING_CONNECT_TIMEOUT),
            "read_timeout": min(http.read_timeout, PING_READ_TIMEOUT),
        }
    )
    return desk.model_copy(update={"http": settings})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


_DNS_WORDS = re.compile(
    r"(?i)name or service not known|nodename nor servname|name resolution|getaddrinfo|"
    r"no address associated"
)


def _transport_kind(exc: TransportError) -> tuple[str, str]:
    causes = list(_chain(exc))
    text = " ".join(str(c) for c in causes)
    if any(isinstance(c, socket.gaierror) for c in causes) or _DNS_WORDS.search(text):
        return "dns", "the desk's host name does not resolve (DNS): is base_url right?"
    if any(isinstance(c, httpx.TimeoutException | TimeoutError) for c in causes):
        return "timeout", "no answer in time: is the desk reachable from here (proxy, firewall)?"
    if any(isinstance(c, ssl.SSLError) for c in causes) or re.search(
        r"(?i)\bssl\b|\btls\b|certificate", text
    ):
        return "tls", "the TLS handshake failed (certificate or protocol)"
    return "connection", "cannot connect (refused or unreachable): is base_url right?"


def _describe(exc: HelpdeskError, desk: DeskConfig, names: str) -> tuple[str, str]:
    """``(kind, message)`` for a failed request: exactly what went wrong, in the user's terms."""
    where = f"{exc.method or 'GET'} {exc.path or '/'}"
    said = f" (the desk said: {exc.message})" if exc.message else ""
    if isinstance(exc, AuthenticationError):
        if exc.status_code == 403:
            return "forbidden", (
                f"forbidden (HTTP 403 for {where}): the credentials were accepted but may not "
                "do what the sync job needs; give the API user the role the connector's guide "
                f"asks for (docs/helpdesks/{desk.connector}.md){said}"
            )
        return "authentication", (
            f"authentication failed (HTTP {exc.status_code or 401} for {where}): the desk "
            f"refused the credentials from {names}; check them{said}"
        )
    if isinstance(exc, NotFoundError):
        return "not_found", (
            f"not found (HTTP {exc.status_code or 404} for {where} at {desk.base_url}): is "
            "base_url the desk's own address (its origin, without an API path)?"
        )
    if isinstance(exc, RateLimitedError):
        wait = f"; it asks to wait {exc.retry_after:.0f} s" if exc.retry_after else ""
        return "rate_limited", (
            f"rate limited (HTTP 429 for {where}): the desk's API quota is used up right now"
            f"{wait}; the credentials could not be checked — try again later"
        )
    if isinstance(exc, ServerError):
        return "server_error", (
            f"the desk has a problem (HTTP {exc.status_code} for {where}){said}"
        )
    if isinstance(exc, TransportError):
        kind, text = _transport_kind(exc)
        return kind, f"{text} ({desk.base_url}: {exc.message})"
    if isinstance(exc, ProtocolError):
        return "protocol", (
            f"unexpected answer from {desk.base_url} ({where}): {exc.message} — is base_url "
            f"a {desk.connector} desk?"
        )
    if isinstance(exc, RejectedError):
        return "rejected", f"the desk refused the request (HTTP {exc.status_code}){said}"
    return "error", str(exc)


async def _ping_desk(
    desk: DeskConfig,
    connectors: Mapping[str, type[Any]],
    environ: Mapping[str, str] | None,
    secrets_dir: Path | None,
    runtime_for: Callable[[DeskConfig], Runtime] | None,
) -> PingResult:
    cls = connectors.get(desk.connector)
    if cls is None:
        known = ", ".join(sorted(connectors)) or "none"
        return PingResult(
            desk.name,
            False,
            f"unknown connector {desk.connector!r} (installed: {known})",
            "unknown_connector",
        )
    try:
        directory = _secrets_dir_of(_environ(environ), secrets_dir)
        values = desk_secret_values(desk.name, environ=environ, secrets_dir=directory)
    except ConfigError as exc:
        return PingResult(desk.name, False, str(exc), "secrets")
    hidden = [v.get_secret_value() for v in values.values()]
    try:
        secrets: DeskSecrets = cls.secrets_from(values)
    except Exception as exc:
        text = redact(f"{type(exc).__name__}: {exc}", hidden)
        return PingResult(desk.name, False, f"the secrets found are unusable: {text}", "secrets")
    if secrets.credentials is None:
        message = _missing_credentials(desk, cls, sorted(values), directory)
        return PingResult(desk.name, False, message, "missing_secrets")
    used = _known_suffixes(credential_alternatives(cls)) - {"WEBHOOK_SECRET"}
    names = ", ".join(desk_env_var(desk.name, s) for s in sorted(values) if s in used)
    runtime = runtime_for(desk) if runtime_for is not None else Runtime()
    try:
        connector = cls(_probe_config(desk), secrets, runtime)
    except Exception as exc:
        text = redact(f"{exc}", hidden)
        return PingResult(desk.name, False, f"cannot set the connector up: {text}", "config")
    started = time.perf_counter()
    try:
        async with connector:
            since = datetime.fromtimestamp(runtime.wall_clock(), UTC) - timedelta(minutes=1)
            await connector.changes(None, since=since)
    except HelpdeskError as exc:
        kind, message = _describe(exc, desk, names)
        return PingResult(desk.name, False, redact(message, hidden), kind)
    except Exception as exc:
        text = redact(f"{type(exc).__name__}: {exc}", hidden)
        return PingResult(desk.name, False, f"unexpected failure: {text}", "error")
    latency = (time.perf_counter() - started) * 1000.0
    message = (
        f"ok: {desk.connector} at {desk.base_url} answered an authenticated read of its "
        f"changes in {latency:.0f} ms"
    )
    capabilities: frozenset[str] = getattr(cls, "capabilities", frozenset())
    if Capability.WEBHOOKS.value in capabilities and secrets.webhook_secret is None:
        message += (
            f"; note: {desk_env_var(desk.name, 'WEBHOOK_SECRET')} is not set, so the sidecar "
            "would refuse this desk's webhooks"
        )
    return PingResult(desk.name, True, message, "ok", latency)


async def ping(
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    secrets_dir: Path | None = None,
    runtime_for: Callable[[DeskConfig], Runtime] | None = None,
    connectors: Mapping[str, type[Any]] | None = None,
    desks: Sequence[str] | None = None,
) -> list[PingResult]:
    """Reach each desk once with its credentials and say exactly what fails.

    Per desk: the connector is built with the desk's secrets (missing ones are named, with the
    variables to set, and nothing is sent) and asked for the changes of the last minute — one
    authenticated read of the change feed the sync job uses, sent once (no retries, no waiting
    out a 429, short timeouts). Failures are told apart: DNS, connection, timeout, TLS,
    authentication (401), permission (403), not found (a wrong ``base_url``), rate limited,
    server error, an answer that is not the helpdesk's API. Desks are reached concurrently;
    results come in the configuration's order.

    :param runtime_for: the :class:`Runtime` of a desk (tests point desks at an emulator).
    :param connectors: the installed connectors (default: the registered plugins').
    :param desks: only these desks (default: all).
    """
    chosen = [d for name, d in config.desks.items() if desks is None or name in desks]
    if not chosen:
        return []
    registry = connectors if connectors is not None else _installed_connectors()
    return list(
        await asyncio.gather(
            *(_ping_desk(d, registry, environ, secrets_dir, runtime_for) for d in chosen)
        )
    )


# --- The starter file --------------------------------------------------------------------------

_EXAMPLE_BASE_URLS = {
    "zendesk": "https://your-subdomain.zendesk.com",
    "jira": "https://your-site.atlassian.net",
    "freshdesk": "https://your-domain.freshdesk.com",
}

_HEADER = """\
# ticketwarden.toml — what ticketwarden enforces, and where.
#
# This file holds the support policy and the helpdesks ("desks") ticketwarden watches, the
# state store and the sync job's limits. It never holds secrets: API tokens, passwords and
# webhook secrets come from the environment (TICKETWARDEN_...) or from files in a secrets
# directory ($TICKETWARDEN_SECRETS_DIR, e.g. /run/secrets) — see each desk below.
#
#   ticketwarden check            validates this file
#   ticketwarden check --ping     ... and reaches each desk once with its credentials
#
# Commands find this file as ./ticketwarden.toml, or wherever $TICKETWARDEN_CONFIG or
# --config names. The whole format: docs/configuration.md.

# --- The policy ---------------------------------------------------------------------------------
# The built-in default policy (POLICY.md with its defaults) applies as it is. The [policy] table
# changes only what it names: tables merge key by key, lists and values replace.
# `ticketwarden policy show` prints the whole effective policy with every key you can set.
# Instead of the [policy] table the policy may live in a file of its own (same format, without
# the "policy." prefix) — one or the other, not both:
#
# policy_file = "policy.toml"           # relative to this file

[policy]
# name = "acme support"

# [policy.closure]
# reminders = ["2d", "4d"]              # reminders while waiting on the customer (default 2d, 5d)
# auto_resolve_after = "10d"            # resolve after this much silence (default 7d)

# [policy.calendars.business]
# timezone = "Europe/Vienna"            # business hours: Mon-Fri 08:00-18:00 unless `hours`
# holidays_country = "AT"               # public holidays of this country (and subdivision)

# --- The state store ----------------------------------------------------------------------------
# Cursors, ticket policy state, the action ledger and the audit trail. Without a url: an SQLite
# file ($TICKETWARDEN_DATA_DIR/ticketwarden.db, else ~/.local/share/ticketwarden/). For
# PostgreSQL (several sidecars and sync jobs sharing one store) give the URL here WITHOUT its
# password, and the whole URL in $TICKETWARDEN_DATABASE_URL (or the file database_url in the
# secrets directory), which wins over this one.

[store]
# url = "sqlite:///ticketwarden.db"     # a relative path is relative to this file
# url = "postgresql://ticketwarden@db.internal/ticketwarden"

# --- The sync job (ticketwarden sync) -----------------------------------------------------------

[sync]
# page_limit = 1000                     # pages of changes read per desk per run; more next run
# candidate_lookback = "30d"            # how far back to look for tickets never seen before
# lease_ttl = "10m"                     # a desk's lease lapses this long after its holder died

# --- The webhook sidecar (ticketwarden serve) ---------------------------------------------------

[serve]
# host = "127.0.0.1"                    # 0.0.0.0 in a container
# port = 8080
# workers = 4                           # inbox worker tasks; 0 only receives
# max_attempts = 8                      # tries of an event before it is dead-lettered
# timers_every = "30s"                  # how often due timers fire
# catch_up_every = "5m"                 # how often the change feed covers missed webhooks

# --- Desks --------------------------------------------------------------------------------------
# One table per helpdesk: [desks.<name>]. The name is yours (lower-case letters, digits, - and _);
# it names the desk in logs and the audit trail, in the sidecar's webhook URL
# (/webhooks/<name>) and in the desk's secrets: TICKETWARDEN_DESK_<NAME>_<SECRET> in upper case
# with - written as _, or the files desk_<name>_<secret> in the secrets directory.
#
# Below is an example desk for each installed connector. To use one, remove the first "# " of
# each of its lines, rename it, and put in your desk's address and ids.
"""


def _toml_line(key: str, value: Any) -> str:
    return tomli_w.dumps({key: value}).strip()


def _toml_key(key: str) -> str:
    return tomli_w.dumps({key: 0}).rsplit(" = ", 1)[0]


def _desk_example(connector: str, cls: type[Any]) -> list[str]:
    """One connector's example desk as TOML lines (to be commented out by the caller)."""
    name = f"{connector}-example"
    base_url = _EXAMPLE_BASE_URLS.get(connector, "https://helpdesk.example.com")
    example: DeskConfig | None = None
    try:
        example, _ = cls.conformance_config(base_url)
    except Exception:  # a connector without a conformance configuration
        example = None
    key = f"desks.{name}"
    lines = [
        f"[{key}]",
        _toml_line("connector", connector),
        f"{_toml_line('base_url', base_url)}    # your desk's address",
    ]
    if example is not None and example.fields:
        lines += [
            "",
            "# Canonical field -> where it lives: custom:<field id>, native:<property>, "
            "tag:<prefix>.",
            f"# These ids are the emulator's (`ticketwarden emulate {connector}`).",
            f"[{key}.fields]",
            *(_toml_line(k, str(v)) for k, v in example.fields.items()),
        ]
    if example is not None and example.severity_values:
        lines += [
            "",
            "# The severity field's desk values -> severity 1-4",
            f"[{key}.severity_values]",
            *(_toml_line(k, v) for k, v in example.severity_values.items()),
        ]
    if example is not None and example.escalation:
        lines += ["", "# Policy escalation target -> group and/or assignee", f"[{key}.escalation]"]
        for target, where in example.escalation.items():
            inline = ", ".join(
                _toml_line(k, v) for k, v in where.model_dump(exclude_none=True).items()
            )
            lines.append(f"{_toml_key(target)} = {{ {inline} }}")
    if example is not None and example.contacts.model_fields_set:
        lines += [
            "",
            "# Where authorized contacts and certifications are recorded",
            f"[{key}.contacts]",
            *(_toml_line(k, v) for k, v in example.contacts.model_dump(exclude_none=True).items()),
        ]
    model = getattr(cls, "Options", None)
    fields: dict[str, FieldInfo] = getattr(model, "model_fields", {})
    if fields:
        lines += [
            "",
            f"# Options of the {connector} connector (defaults shown)",
            f"[{key}.options]",
        ]
        known = example.options if example is not None else {}
        for option, info in fields.items():
            value = None if info.is_required() else info.get_default(call_default_factory=True)
            about = info.description or ""
            if value is None and option in known:
                value = known[option]
                about = f"{about} (here: the emulator's value)".strip()
            try:
                setting = _toml_line(option, value)
            except (TypeError, ValueError):  # None, or a value TOML cannot write
                setting = f"{_toml_key(option)} = ..."
            lines += [f"# {text}" for text in textwrap.wrap(about, 94)]
            lines.append(f"# {setting}")
    return lines


def _secret_lines(connector: str, cls: type[Any]) -> list[str]:
    name = f"{connector}-example"
    files = desk_secret_file(name, "<secret>")
    lines = [f"# Its secrets (the environment, or files {files} in the secrets directory):"]
    for i, alternative in enumerate(credential_alternatives(cls)):
        names = " and ".join(desk_env_var(name, s) for s in alternative)
        lines.append(f"#   {'or ' if i else ''}{names}")
    if Capability.WEBHOOKS.value in getattr(cls, "capabilities", frozenset()):
        lines.append(f"#   {desk_env_var(name, 'WEBHOOK_SECRET')}    (signs its webhooks)")
    return lines


def render_starter(*, connectors: Mapping[str, type[Any]] | None = None) -> str:
    """The commented starter ``ticketwarden.toml``: each section explained, policy overrides
    and one example desk per installed connector, commented out. As written it loads (the
    default policy, no desks); uncommenting an example desk's lines gives a desk that loads
    too."""
    registry = connectors if connectors is not None else _installed_connectors()
    parts = [_HEADER]
    if not registry:
        parts.append(
            "# (No connector plugin is installed: `ticketwarden plugins` lists what is.)\n"
        )
    for connector in sorted(registry):
        cls = registry[connector]
        header = f"# --- {connector} (docs/helpdesks/{connector}.md) "
        block = [
            header + "-" * max(3, 100 - len(header)),
            *_secret_lines(connector, cls),
            "#",
            *(f"# {line}" if line else "#" for line in _desk_example(connector, cls)),
        ]
        parts.append("\n".join(block) + "\n")
    return "\n".join(parts)


def write_starter(
    path: Path, *, force: bool = False, connectors: Mapping[str, type[Any]] | None = None
) -> Path:
    """Write :func:`render_starter` to ``path`` (its directory created) and return ``path``.

    :raises ConfigError: ``path`` exists and ``force`` is false, or it cannot be written.
    """
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; name the file to write")
    if path.exists() and not force:
        raise ConfigError(f"{path}: already exists; `ticketwarden init --force` overwrites it")
    text = render_starter(connectors=connectors)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the file ({exc.strerror or exc})") from None
    return path
