"""The connector contract: what every helpdesk plugin provides, and the desk configuration.

A connector maps one helpdesk's API onto the normalized model (:mod:`ticketwarden.core.model`)
and carries out the engine's actions (:mod:`ticketwarden.core.actions`) through that API. It is
designed against Zendesk, Jira Service Management and Freshdesk at once:

- **Statuses** are the desk's own values mapped to the six normalized ones by configuration
  (``DeskConfig.statuses``): Zendesk's names, Jira's workflow statuses and status categories,
  Freshdesk's numbers ("2" open, "3" pending, "4" resolved, "5" closed) and custom ones.
- **Status changes** are intents (``set_status``, ``resolve``, ``close``); how they happen —
  a field write, or Jira's workflow *transitions* looked up by target — is the connector's job,
  and a workflow without a way there is a typed error, not a silent no-op.
- **Comments** are plain text with a public flag; a connector turns them into its own format
  (Zendesk's ``comment`` body, Jira's Atlassian Document Format with the internal property,
  Freshdesk's reply vs private note).
- **Fields** are canonical names (``severity``, ``server_url``, ``version``, …) mapped to native
  or custom fields by :class:`FieldSource` in the desk configuration, never by code.
- **Capabilities** a helpdesk lacks are declared (:attr:`Connector.capabilities`), never faked:
  an action of an undeclared kind comes back as ``unsupported``.

The connector does no policy: it reads, lists changes, searches candidates for timers, applies
actions and verifies webhooks. Secrets (:class:`DeskSecrets`) come from the environment, never
from the configuration file.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ticketwarden.core.actions import ACTION_KINDS, INTERNAL_KINDS, AddComment, BaseAction
from ticketwarden.core.clock import Span, parse_span
from ticketwarden.core.errors import HelpdeskError, TicketwardenError
from ticketwarden.core.http import (
    BasicCredentials,
    BearerToken,
    ClientStats,
    DeskClient,
    HttpSettings,
)
from ticketwarden.core.model import (
    AuthorRole,
    AwareDatetime,
    Change,
    EventKind,
    Priority,
    Roster,
    Status,
    Ticket,
)

# --- Configuration -----------------------------------------------------------------------------


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldSource(_Config):
    """Where a canonical field lives in the desk: a native field, a custom field, or tags.

    Written in ``ticketwarden.toml`` as ``"native:priority"``, ``"custom:360012345"``,
    ``"custom:customfield_10010"``, ``"custom:cf_server_url"`` or ``"tag:sev-"`` (a tag prefix:
    the value is what follows it, e.g. ``sev-2``).
    """

    kind: Literal["native", "custom", "tag"]
    id: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            kind, sep, ident = value.partition(":")
            if not sep:
                raise ValueError(f"{value!r}: write native:NAME, custom:ID or tag:PREFIX")
            return {"kind": kind, "id": ident}
        return value

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


class EscalationTarget(_Config):
    """What a policy escalation target (``support-leads``) means in this desk.

    ``group`` and ``assignee`` are Zendesk's and Freshdesk's way; Jira issues have no group,
    and escalate by ``assignee``, by a project ``component`` (whose lead or default assignee
    takes it) or by adding a Service Management *request ``participant``*. A connector refuses
    (``failed``) a target naming a kind its helpdesk does not have, never skipping it silently.
    """

    group: str | None = None
    assignee: str | None = None
    component: str | None = None
    participant: str | None = None

    @model_validator(mode="after")
    def _something(self) -> EscalationTarget:
        if all(v is None for v in (self.group, self.assignee, self.component, self.participant)):
            raise ValueError(
                "an escalation target needs a group, an assignee or both (or, where the "
                "helpdesk has them, a component or a request participant)"
            )
        return self

    def unsupported(self, supported: frozenset[str]) -> list[str]:
        """The kinds this target names that are not in ``supported`` (``{"group", ...}``)."""
        named = {
            "group": self.group,
            "assignee": self.assignee,
            "component": self.component,
            "participant": self.participant,
        }
        return sorted(k for k, v in named.items() if v is not None and k not in supported)


class ContactSource(_Config):
    """Where authorized-contact and certification data live (AUTH-1..3, SEV1-1).

    ``where`` names the desk object carrying the fields (the requester's user/contact record or
    their organization/company), or ``roster_file`` for a roster kept outside the helpdesk.
    """

    where: Literal["user", "organization", "roster_file"] = "user"
    authorized_field: str | None = Field(None, description="checkbox: an authorized contact")
    certified_until_field: str | None = Field(None, description="date: certification expiry")
    available_24x7_field: str | None = Field(None, description="checkbox: reachable 24×7")
    roster_file: str | None = None

    @model_validator(mode="after")
    def _file(self) -> ContactSource:
        if self.where == "roster_file" and not self.roster_file:
            raise ValueError("where = 'roster_file' needs roster_file")
        return self


class WebhookSettings(_Config):
    """How incoming webhooks are checked."""

    replay_window: Span = Field(
        parse_span("5m"), description="a delivery older than this (by its timestamp) is rejected"
    )
    max_body_bytes: int = Field(1_000_000, gt=0)


class DeskConfig(_Config):
    """One helpdesk as ``ticketwarden.toml`` describes it (no secrets here).

    ``fields`` maps canonical field names to where they live; ``statuses`` maps the desk's own
    status values (names, numbers, workflow statuses) to normalized statuses; ``priorities``
    maps normalized priorities to the desk's values; ``escalation`` maps the policy's escalation
    targets to groups or assignees. ``options`` holds settings of one connector, validated by
    that connector's ``Options`` model.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    connector: str
    base_url: str
    fields: dict[str, FieldSource] = Field(default_factory=dict)
    statuses: dict[str, Status] = Field(default_factory=dict)
    priorities: dict[Priority, str] = Field(default_factory=dict)
    severity_values: dict[str, int] = Field(
        default_factory=dict, description="desk value of the severity field → severity 1–4"
    )
    escalation: dict[str, EscalationTarget] = Field(default_factory=dict)
    contacts: ContactSource = ContactSource()
    resolution_tag_prefix: str = Field("resolution-", description="tag recording the reason")
    webhooks: WebhookSettings = WebhookSettings()
    http: HttpSettings = HttpSettings()
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "://" not in value and "." in value.split("/")[0]:
            value = f"https://{value}"  # a bare domain: acme.freshdesk.com
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("severity_values")
    @classmethod
    def _severities(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if v not in (1, 2, 3, 4)}
        if bad:
            raise ValueError(f"severities are 1–4, got {bad}")
        return value

    def field_source(self, name: str) -> FieldSource | None:
        """Where the canonical field ``name`` lives, if mapped."""
        return self.fields.get(name)


class DeskSecrets(BaseModel):
    """A desk's secrets, read from the environment or a secrets directory — never logged."""

    model_config = ConfigDict(frozen=True)

    credentials: BasicCredentials | BearerToken | None = None
    webhook_secret: SecretStr | None = None


# --- What connectors exchange with the core -----------------------------------------------------


class Capability(enum.StrEnum):
    """What a connector can do besides the action kinds (which are capabilities by their name)."""

    READ = "read"
    CHANGES = "changes"
    CANDIDATES = "candidates"
    WEBHOOKS = "webhooks"
    ROSTER = "roster"


EVERY_CAPABILITY: frozenset[str] = frozenset(c.value for c in Capability) | (
    ACTION_KINDS - INTERNAL_KINDS
)
"""Every capability and every action kind a helpdesk can carry out: the declaration of a
connector whose helpdesk can do all the policy asks."""


class ChangePage(_Config):
    """One page of changed tickets and the cursor to resume after it.

    Resuming from ``cursor`` returns every change after this page exactly once: nothing lost,
    nothing repeated, even when many tickets share one update timestamp.
    """

    tickets: tuple[Ticket, ...]
    cursor: str
    has_more: bool


class CandidateQuery(_Config):
    """Tickets a time-based rule may need (e.g. waiting on the customer, not updated since T)."""

    statuses: frozenset[Status]
    updated_before: AwareDatetime | None = None
    updated_after: AwareDatetime | None = None


class Outcome(enum.StrEnum):
    """What happened to one action."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    UNSUPPORTED = "unsupported"
    FAILED = "failed"


class ActionResult(_Config):
    """A connector's report on one action: what it did, and any object it created."""

    key: str
    kind: str
    outcome: Outcome
    detail: str = ""
    created_id: str | None = None


class WebhookRejected(Exception):
    """A webhook delivery that must not be processed (answered 401/400, nothing stored)."""

    def __init__(
        self,
        reason: Literal[
            "unsigned", "bad_signature", "expired", "replayed", "malformed", "too_large"
        ],
        detail: str = "",
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class WebhookEvent(_Config):
    """A verified webhook delivery, normalized: which ticket, what happened, and when.

    ``ticket`` is set when the payload carries the whole ticket; otherwise the receiver re-reads
    ``ticket_id`` from the desk. ``delivery_id`` is the helpdesk's event id (duplicates are
    stored once).
    """

    delivery_id: str
    ticket_id: str
    kind: EventKind
    at: AwareDatetime
    change: Change | None = None
    ticket: Ticket | None = None


# --- Webhook verification helpers ---------------------------------------------------------------


def hmac_sha256(secret: SecretStr, *parts: bytes) -> bytes:
    """HMAC-SHA256 of the concatenated parts (the usual webhook signature primitive)."""
    mac = hmac.new(secret.get_secret_value().encode(), digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def signatures_match(expected: bytes | str, given: bytes | str) -> bool:
    """Constant-time comparison of two signatures (never ``==``)."""
    a = expected.encode() if isinstance(expected, str) else expected
    b = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(a, b)


def check_timestamp(sent_at: datetime, now: datetime, window: timedelta) -> None:
    """Reject a delivery whose timestamp is outside the replay window (either direction)."""
    skew = abs((now - sent_at).total_seconds())
    if skew > window.total_seconds():
        raise WebhookRejected("expired", f"timestamp {sent_at.isoformat()} is {skew:.0f}s off")


class ReplayGuard:
    """Remembers delivery ids seen within the replay window, so a replayed delivery is refused.

    In-memory and bounded; the sidecar's store provides a durable one with the same interface.
    """

    def __init__(self, window: timedelta, max_entries: int = 100_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: OrderedDict[str, datetime] = OrderedDict()

    def check(self, delivery_id: str, now: datetime) -> None:
        """Raise ``replayed`` if this id was accepted within the window."""
        self._expire(now)
        if delivery_id in self._seen:
            raise WebhookRejected("replayed", f"delivery {delivery_id} was already received")

    def remember(self, delivery_id: str, now: datetime) -> None:
        """Remember an accepted delivery id."""
        self._expire(now)
        self._seen[delivery_id] = now
        self._seen.move_to_end(delivery_id)
        if len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)

    def check_and_remember(self, delivery_id: str, now: datetime) -> None:
        """:meth:`check`, then :meth:`remember`."""
        self.check(delivery_id, now)
        self.remember(delivery_id, now)

    def _expire(self, now: datetime) -> None:
        horizon = now - self.window * 2
        while self._seen and next(iter(self._seen.values())) < horizon:
            self._seen.popitem(last=False)


# --- The contract --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """How a connector reaches the network and time: real by default, injected in tests."""

    transport: httpx.AsyncBaseTransport | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    wall_clock: Callable[[], float] = time.time
    extra: Mapping[str, Any] = field(default_factory=dict)


class NoOptions(BaseModel):
    """A connector without connector-specific options."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Connector(abc.ABC):
    """Base class of every helpdesk connector.

    Subclasses set :attr:`name` and :attr:`capabilities`, implement the abstract methods, and
    implement ``apply_<kind>`` for each action kind they declare (or override :meth:`apply` to
    batch several actions into one request). They build every request through :attr:`client`,
    the shared :class:`~ticketwarden.core.http.DeskClient` (retries, Retry-After, the desk's
    request budget, typed errors, redaction).
    """

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]
    Options: ClassVar[type[BaseModel]] = NoOptions
    changes_are_complete: ClassVar[bool] = True
    """Whether :meth:`changes` returns whole tickets (comments included). A helpdesk whose
    change feed carries no comments (Zendesk's incremental export) sets it false, and the sync
    job reads each changed ticket."""

    def __init__(
        self,
        config: DeskConfig,
        secrets: DeskSecrets | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.config = config
        self.secrets = secrets or DeskSecrets()
        self.runtime = runtime or Runtime()
        self.options = self.Options.model_validate(config.options)
        self.replay_guard = ReplayGuard(self.replay_window)
        self.client = DeskClient(
            config.name,
            config.base_url,
            credentials=self.secrets.credentials,
            settings=config.http,
            transport=self.runtime.transport,
            clock=self.runtime.clock,
            sleep=self.runtime.sleep,
            wall_clock=self.runtime.wall_clock,
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if inspect_abstract(cls):
            return
        unknown = set(cls.capabilities) - ACTION_KINDS - {c.value for c in Capability}
        if unknown:
            raise TypeError(f"{cls.__name__} declares unknown capabilities {sorted(unknown)}")
        missing = [
            kind
            for kind in cls.capabilities & ACTION_KINDS
            if kind not in ("record", "remember") and not hasattr(cls, f"apply_{kind}")
        ]
        if missing and cls.apply is Connector.apply:
            raise TypeError(
                f"{cls.__name__} declares {missing} but has no apply_<kind> method for them"
            )

    @property
    def replay_window(self) -> timedelta:
        """How old (by its own timestamp) a webhook delivery may be."""
        return self.config.webhooks.replay_window.to_timedelta(timedelta(days=1))

    @property
    def webhook_secret(self) -> SecretStr:
        """The desk's webhook signing secret (:meth:`verify_webhook` checked it is set)."""
        if self.secrets.webhook_secret is None:
            raise WebhookRejected("unsigned", f"desk {self.config.name} has no webhook secret")
        return self.secrets.webhook_secret

    def supports(self, capability: str) -> bool:
        """Whether the connector declares this capability or action kind."""
        return capability in self.capabilities or capability in ("record", "remember")

    async def __aenter__(self) -> Connector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the HTTP client."""
        await self.client.aclose()

    # Reads --------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def read_ticket(self, ticket_id: str) -> Ticket:
        """The ticket with its comments, requester, organization and mapped fields."""

    @abc.abstractmethod
    async def changes(self, cursor: str | None, *, since: datetime | None = None) -> ChangePage:
        """Tickets changed after ``cursor`` (or since ``since`` when there is no cursor yet)."""

    async def candidates(self, query: CandidateQuery) -> AsyncIterator[Ticket]:
        """Tickets matching a time-based rule's query; values are escaped by the connector."""
        raise CapabilityMissing(f"{self.name} declares no '{Capability.CANDIDATES}' capability")
        yield  # pragma: no cover  (makes this an async generator)

    async def roster(self) -> Roster:
        """The authorized contacts as the desk records them (AUTH-2)."""
        raise CapabilityMissing(f"{self.name} declares no '{Capability.ROSTER}' capability")

    # Writes -------------------------------------------------------------------------------------

    async def apply(self, ticket: Ticket, actions: Sequence[BaseAction]) -> list[ActionResult]:
        """Carry out actions in order, one ``apply_<kind>`` each; report what happened to each.

        ``record`` and ``remember`` touch only ticketwarden's own store and are reported as
        unchanged. A kind the connector does not declare is ``unsupported``. A
        :class:`~ticketwarden.core.errors.ConflictError` (someone changed the ticket meanwhile)
        propagates: the caller re-reads the ticket and re-evaluates instead of overwriting.
        """
        results = []
        for action in actions:
            kind = action.kind
            if kind in ("record", "remember"):
                results.append(ActionResult(key=action.key, kind=kind, outcome=Outcome.UNCHANGED))
                continue
            if not self.supports(kind):
                results.append(
                    ActionResult(
                        key=action.key,
                        kind=kind,
                        outcome=Outcome.UNSUPPORTED,
                        detail=f"{self.name} cannot {kind}",
                    )
                )
                continue
            handler: Callable[[Ticket, Any], Awaitable[ActionResult]] = getattr(
                self, f"apply_{kind}"
            )
            results.append(await handler(ticket, action))
        return results

    async def already_applied(self, ticket: Ticket, action: BaseAction) -> bool:
        """Whether an action a crashed run sent (the ledger says *pending*) has landed.

        ``ticket`` is freshly read. The default recognises a comment by its body and visibility
        among support's comments; other kinds set a value, and sending them again is harmless.
        Connectors whose creates carry a marker (a follow-up's external id) override this to
        look the marker up, so a run killed mid-request never duplicates anything.
        """
        if isinstance(action, AddComment):
            wanted = " ".join(action.body.split())
            return any(
                " ".join(c.body.split()) == wanted
                and c.public == action.public
                and c.author_role != AuthorRole.CUSTOMER
                for c in ticket.comments
            )
        return False

    def http_stats(self) -> ClientStats:
        """Requests, retries and 429s of this connector's HTTP clients, added up."""
        return self.client.stats

    def result(
        self,
        action: BaseAction,
        outcome: Outcome = Outcome.APPLIED,
        detail: str = "",
        created_id: str | None = None,
    ) -> ActionResult:
        """Shorthand for an :class:`ActionResult` of ``action``."""
        return ActionResult(
            key=action.key, kind=action.kind, outcome=outcome, detail=detail, created_id=created_id
        )

    # Webhooks -----------------------------------------------------------------------------------

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> list[WebhookEvent]:
        """Verify a delivery — size, signature compared in constant time, timestamp within the
        replay window, delivery id not already accepted — and normalize it; raise
        :class:`WebhookRejected`. It does not remember the delivery: call
        :meth:`remember_deliveries` once the events are durably stored, so a delivery whose
        storing failed is not refused as a replay when the helpdesk retries it.
        """
        if len(body) > self.config.webhooks.max_body_bytes:
            raise WebhookRejected("too_large", f"{len(body)} bytes")
        if self.secrets.webhook_secret is None:
            raise WebhookRejected("unsigned", f"desk {self.config.name} has no webhook secret")
        events = self.parse_webhook({k.lower(): v for k, v in headers.items()}, body, now)
        for delivery in {e.delivery_id for e in events}:
            self.replay_guard.check(delivery, now)
        return events

    def remember_deliveries(self, events: Sequence[WebhookEvent], now: datetime) -> None:
        """Record accepted deliveries so a replay within the window is refused."""
        for delivery in {e.delivery_id for e in events}:
            self.replay_guard.remember(delivery, now)

    def accept_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> list[WebhookEvent]:
        """:meth:`verify_webhook` and :meth:`remember_deliveries` in one step, for receivers
        that process a delivery before answering it."""
        events = self.verify_webhook(headers, body, now)
        self.remember_deliveries(events, now)
        return events

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> list[WebhookEvent]:
        """Check the signature and timestamp of a delivery and normalize it (lower-case
        ``headers``). Connectors with the ``webhooks`` capability implement it."""
        raise WebhookRejected("malformed", f"{self.name} does not receive webhooks")

    # Emulator and conformance -------------------------------------------------------------------

    @classmethod
    def emulator(cls) -> type[Any] | None:
        """The emulator class (:class:`ticketwarden.testing.emulator.Emulator`) of this desk."""
        return None

    @classmethod
    def secrets_from(cls, values: Mapping[str, SecretStr]) -> DeskSecrets:
        """The desk's secrets from the values the settings found for it.

        ``values`` is keyed by upper-case suffix — ``TICKETWARDEN_DESK_<DESK>_<SUFFIX>`` in the
        environment or a file ``desk_<desk>_<suffix>`` in the secrets directory: ``USERNAME`` +
        ``PASSWORD`` give basic credentials, ``OAUTH_TOKEN`` a bearer token (preferred when both
        are set), ``WEBHOOK_SECRET`` the webhook signing secret. Connectors whose helpdesk
        spells credentials differently (Zendesk's ``{email}/token``) override this.
        """
        credentials: BasicCredentials | BearerToken | None = None
        if "OAUTH_TOKEN" in values:
            credentials = BearerToken(token=values["OAUTH_TOKEN"])
        elif "USERNAME" in values and "PASSWORD" in values:
            credentials = BasicCredentials(
                username=values["USERNAME"].get_secret_value(), password=values["PASSWORD"]
            )
        return DeskSecrets(credentials=credentials, webhook_secret=values.get("WEBHOOK_SECRET"))

    @classmethod
    def conformance_config(cls, base_url: str) -> tuple[DeskConfig, DeskSecrets]:
        """The configuration and secrets the conformance suite uses against the emulator
        served at ``base_url`` (field mapping, escalation targets, test credentials)."""
        raise CapabilityMissing(f"{cls.__name__} defines no conformance_config()")


def inspect_abstract(cls: type) -> bool:
    """Whether a class still has abstract methods (intermediate bases are not checked).

    ``__abstractmethods__`` is not yet set while ``__init_subclass__`` runs, so look at the
    methods themselves."""
    return any(getattr(getattr(cls, n, None), "__isabstractmethod__", False) for n in dir(cls))


class CapabilityMissing(TicketwardenError):
    """An operation the connector does not declare (its helpdesk cannot do it)."""


__all__ = [
    "EVERY_CAPABILITY",
    "ActionResult",
    "CandidateQuery",
    "Capability",
    "CapabilityMissing",
    "ChangePage",
    "Connector",
    "ContactSource",
    "DeskConfig",
    "DeskSecrets",
    "EscalationTarget",
    "FieldSource",
    "HelpdeskError",
    "Outcome",
    "ReplayGuard",
    "Runtime",
    "WebhookEvent",
    "WebhookRejected",
    "WebhookSettings",
    "check_timestamp",
    "hmac_sha256",
    "signatures_match",
]
