"""The Freshdesk connector (API v2).

Endpoints, as Freshdesk's API reference describes them (paths relative to the desk's origin,
``https://{domain}.freshdesk.com`` or an emulator):

- ``GET /api/v2/tickets/{id}?include=conversations,requester,company,stats`` — a ticket, its
  first ten conversations, requester, company and stats (5 API credits, one request);
- ``GET /api/v2/tickets/{id}/conversations`` — every conversation, when the ticket has ten or
  more (``Link``-header paging, 100 a page);
- ``GET /api/v2/tickets?updated_since=…&order_by=updated_at&order_type=asc`` — the change feed;
- ``GET /api/v2/search/tickets?query="…"`` — candidates for time-based rules (the filter API);
- ``PUT /api/v2/tickets/{id}`` — every field write (status, priority, tags, custom fields,
  group, agent), after re-reading the ticket with ``GET /api/v2/tickets/{id}``;
- ``POST /api/v2/tickets/{id}/reply`` and ``…/notes`` — public replies, private notes;
- ``POST /api/v2/tickets`` — follow-ups, found again after a lost response through
  ``GET /api/v2/tickets?requester_id=…&order_by=created_at``;
- ``GET /api/v2/contacts`` / ``GET /api/v2/companies`` — the authorized-contact roster;
- ``GET /api/v2/agents/me`` — the API key's agent, once, when ``options.agent_id`` is unset;
- ``GET /api/v2/ticket_fields`` — the custom fields' types, once, before the first write of one.

Design choices (each explained where it is implemented):

* **Freshdesk has no conditional update** (no ``If-Match``, no safe update) and ``tags`` in an
  update *replaces* the list. So :meth:`FreshdeskConnector.apply` re-reads the ticket right
  before it writes: the tags it sends are the current ones ∪ added − removed, and — as
  Zendesk's safe update does with a 409 — a ticket changed since the evaluation read it raises
  :class:`~ticketwarden.core.errors.ConflictError` unless the write touches only tags.
* **The change feed never walks page numbers through a moving list.** Each call restarts from
  the last ``updated_at`` it returned and skips the ids already returned at that second
  (the cursor holds both); see :meth:`FreshdeskConnector.changes`.
* **Candidates narrow by date windows** when the filter API's 300-result cap (30 a page, 10
  pages) would cut them off; see :meth:`FreshdeskConnector.candidates`.
* **Creates are exactly once**: replies and notes are found again by author, text and time,
  follow-ups by a marker tag, before anything is sent a second time.
"""

from __future__ import annotations

import hashlib
import html
import importlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Final

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ticketwarden.core.actions import (
    INTERNAL_KINDS,
    AddComment,
    AddTags,
    BaseAction,
    Close,
    CreateFollowUp,
    Escalate,
    RemoveTags,
    Resolve,
    SetField,
    SetPriority,
    SetSeverity,
    SetStatus,
)
from ticketwarden.core.connector import (
    EVERY_CAPABILITY,
    ActionResult,
    CandidateQuery,
    CapabilityMissing,
    ChangePage,
    Connector,
    ContactSource,
    DeskConfig,
    DeskSecrets,
    EscalationTarget,
    FieldSource,
    Outcome,
    Runtime,
    WebhookEvent,
    WebhookRejected,
    check_timestamp,
    hmac_sha256,
    signatures_match,
)
from ticketwarden.core.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    RejectedError,
    TicketwardenError,
)
from ticketwarden.core.http import BasicCredentials, create_once, paginate_links
from ticketwarden.core.model import (
    AuthorizedContact,
    AuthorRole,
    Comment,
    Contact,
    EventKind,
    Organization,
    Priority,
    Roster,
    RosterEntry,
    Severity,
    Status,
    Ticket,
)
from ticketwarden.plugins.freshdesk.search import SearchValueError, ticket_candidates_query

__all__ = [
    "FRESHDESK_PRIORITIES",
    "FRESHDESK_STATUSES",
    "FreshdeskConnector",
    "FreshdeskOptions",
    "html_to_text",
    "text_to_html",
]

log = logging.getLogger(__name__)

FRESHDESK_STATUSES: Final[Mapping[int, Status]] = {
    2: Status.OPEN,
    3: Status.WAITING_ON_CUSTOMER,
    4: Status.RESOLVED,
    5: Status.CLOSED,
}
"""Freshdesk's built-in status codes; custom statuses (6, 7, …) are mapped in the desk's
``statuses`` (``"6" = "on_hold"``), which may also re-map these."""

_STATUS_CODES: Final[Mapping[Status, int]] = {
    Status.NEW: 2,  # Freshdesk has no "new": a new ticket is open
    Status.OPEN: 2,
    Status.WAITING_ON_CUSTOMER: 3,
    Status.RESOLVED: 4,
    Status.CLOSED: 5,
}

FRESHDESK_PRIORITIES: Final[Mapping[Priority, int]] = {
    Priority.LOW: 1,
    Priority.NORMAL: 2,  # Freshdesk: "Medium"
    Priority.HIGH: 3,
    Priority.URGENT: 4,
}
"""Freshdesk's priority codes; the desk's ``priorities`` may re-map them."""

_SEVERITY_OF_PRIORITY: Final[Mapping[Priority, int]] = {
    Priority.URGENT: 1,
    Priority.HIGH: 2,
    Priority.NORMAL: 3,
    Priority.LOW: 4,
}
"""Severity read from the native priority when ``fields.severity = "native:priority"``."""

VIEW_INCLUDES: Final = "conversations,requester,company,stats"
INCLUDED_CONVERSATIONS: Final = 10
"""``include=conversations`` embeds only the first ten; with ten, all are listed separately."""
CONVERSATIONS_PAGE_SIZE: Final = 100
LIST_PAGE_SIZE_MAX: Final = 100
SEARCH_PAGE_SIZE: Final = 30
SEARCH_PAGE_LIMIT: Final = 10
SEARCH_RESULT_CAP: Final = SEARCH_PAGE_SIZE * SEARCH_PAGE_LIMIT
TAG_MAX_LENGTH: Final = 32
"""Freshdesk refuses a tag longer than this (and with it the whole update)."""
MARKER_PREFIX: Final = "tw-fu-"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TICKET_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_PROTECTED_NATIVE: Final = frozenset(
    {
        "id",
        "status",
        "priority",
        "tags",
        "custom_fields",
        "requester_id",
        "company_id",
        "group_id",
        "responder_id",
        "created_at",
        "updated_at",
        "description",
        "source",
    }
)
"""Native fields ``set_field`` must never write: state the connector manages itself."""
_WRITABLE_NATIVE: Final = frozenset({"subject", "type", "due_by", "fr_due_by", "product_id"})


class FreshdeskOptions(BaseModel):
    """``options`` of a Freshdesk desk in ``ticketwarden.toml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_page: int = Field(
        100, ge=1, le=LIST_PAGE_SIZE_MAX, description="tickets per page of the change feed"
    )
    max_list_page: int = Field(
        300, ge=1, description="the highest page number the ticket list serves (Freshdesk: 300)"
    )
    agent_id: int | None = Field(
        None,
        description="the agent the API key belongs to: its conversations read as 'system'; "
        "default: looked up once through /api/v2/agents/me",
    )
    conflict_check: bool = Field(
        True,
        description="refuse (ConflictError) a write other than tags to a ticket that changed "
        "since it was read — what Zendesk's safe update does, done by re-reading",
    )
    follow_up_field: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_]+$",
        description="custom number field (e.g. cf_follow_up_of) linking a follow-up to the "
        "closed ticket; unset: a tag links them",
    )
    follow_up_tag_prefix: str = Field(
        "tw_follow_up_of_",
        pattern=r"^[a-z0-9_-]+$",
        max_length=12,
        description="tag linking a follow-up when follow_up_field is unset",
    )
    search_since: date = Field(
        date(2010, 1, 1),
        description="the earliest update day candidate searches split date windows from",
    )
    create_settle_seconds: float = Field(
        2.0, ge=0, description="wait after a timed-out create before looking for it"
    )


# --- small readers of Freshdesk JSON -------------------------------------------------------------


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 time, got {value!r}")
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:  # Freshdesk's API v2 times are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment


def _maybe_time(value: Any) -> datetime | None:
    try:
        return _parse_time(value)
    except ValueError:
        return None


def freshdesk_time(at: datetime) -> str:
    """A datetime the way Freshdesk writes ``updated_at``: ``2026-11-23T08:00:00Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_seconds(at: datetime) -> int:
    return int(at.timestamp() // 1)


def text_to_html(text: str) -> str:
    """A plain-text comment as the HTML ``body`` Freshdesk stores: escaped, each line break a
    ``<br>``, in one ``<div>`` — the form Freshdesk gives a plain-text description, whose
    ``body_text`` is the text again, character for character."""
    return "<div>" + html.escape(text, quote=False).replace("\n", "<br>") + "</div>"


_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_BLOCK_GAP = re.compile(r"</(?:p|div)>\s*<(?:p|div)(?:\s[^>]*)?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def html_to_text(body: str) -> str:
    """Plain text of an HTML ``body`` when Freshdesk sent no ``body_text``: line breaks and
    block boundaries become new lines, tags go, entities are decoded."""
    text = _BREAK.sub("\n", body)
    text = _BLOCK_GAP.sub("\n", text)
    return html.unescape(_TAG.sub("", text))


def _squash(text: str) -> str:
    """Text with runs of white space made one space: what "the same comment" compares."""
    return " ".join(text.split())


def _text(value: Any) -> str | None:
    """A custom field value as text; ``None`` when nothing is set."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        items = [str(v) for v in value if v not in (None, "")]
        return ", ".join(items) if items else None
    text = str(value)
    return text if text.strip() else None


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "y", "x")


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _int_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        return int(value.strip())
    return None


def _id_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _custom_fields(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """``custom_fields`` (API v2) or ``custom_field`` (the API v1 shape the recorded list and
    search bodies still have)."""
    for key in ("custom_fields", "custom_field"):
        value = record.get(key)
        if isinstance(value, dict):
            return value
    return {}


def _marker(key: str) -> str:
    """The tag marking a follow-up created for the action ``key`` (at most 22 characters)."""
    return MARKER_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:16]


# --- the change-feed cursor -------------------------------------------------------------------


@dataclass(frozen=True)
class _FeedCursor:
    """Where the change feed stands: the ``updated_at`` of the last ticket returned and the
    ids returned with exactly that ``updated_at`` (which the next call skips)."""

    since: datetime
    seen: frozenset[int] = frozenset()

    def encode(self) -> str:
        return json.dumps(
            {"updated_since": freshdesk_time(self.since), "seen": sorted(self.seen)},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str) -> _FeedCursor:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the cursor is not a JSON object")
        seen = data.get("seen", [])
        if not isinstance(seen, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in seen
        ):
            raise ValueError("the cursor's seen ids are not integers")
        return cls(_parse_time(data["updated_since"]), frozenset(seen))


# --- one ticket update ---------------------------------------------------------------------------


@dataclass
class _Update:
    """One ``PUT /api/v2/tickets/{id}``: what it sets and which actions it reports."""

    fields: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    add_tags: dict[str, None] = field(default_factory=dict)  # ordered sets
    remove_tags: dict[str, None] = field(default_factory=dict)
    tag_prefixes: dict[str, str] = field(default_factory=dict)
    """Tag-valued fields: prefix → the one tag with that prefix the ticket must carry."""
    riders: list[int] = field(default_factory=list)

    def add(self, tags: Iterable[str]) -> None:
        for tag in tags:
            self.remove_tags.pop(tag, None)
            self.add_tags[tag] = None

    def remove(self, tags: Iterable[str]) -> None:
        for tag in tags:
            self.add_tags.pop(tag, None)
            self.remove_tags[tag] = None

    @property
    def touches_tags(self) -> bool:
        return bool(self.add_tags or self.remove_tags or self.tag_prefixes)

    @property
    def touches_more_than_tags(self) -> bool:
        return bool(self.fields or self.custom)

    def merged_tags(self, current: Sequence[str]) -> list[str]:
        """The tag list to send: ``current`` ∪ added − removed, in a stable order."""
        tags = [t for t in current if t not in self.remove_tags]
        for prefix, wanted in self.tag_prefixes.items():
            tags = [t for t in tags if not t.startswith(prefix) or t == wanted]
            if wanted not in tags:
                tags.append(wanted)
        tags += [t for t in self.add_tags if t not in tags]
        return tags

    def body(self, current_tags: Sequence[str] | None) -> dict[str, Any]:
        """The JSON body of Freshdesk's Update Ticket; tags only when they change."""
        payload: dict[str, Any] = dict(self.fields)
        if self.custom:
            payload["custom_fields"] = dict(self.custom)
        if current_tags is not None and self.touches_tags:
            tags = self.merged_tags(current_tags)
            if tags != list(current_tags):
                payload["tags"] = tags
        return payload


class _Refused(Exception):
    """An action that cannot be carried out as configured (reported ``failed``, never sent)."""


# --- the connector ----------------------------------------------------------------------------


class FreshdeskConnector(Connector):
    """Freshdesk (API v2): reads, the change feed, the filter API, every action, webhooks from
    automation rules and the authorized-contact roster.

    Authentication is ``DeskSecrets.credentials``: :class:`BasicCredentials` with the API key as
    user name and ``X`` as password (:meth:`secrets_from` builds it from ``API_KEY``).
    ``DeskConfig.base_url`` is the desk's origin, ``https://{domain}.freshdesk.com`` (see
    :meth:`base_url_for`; a trailing ``/api/v2`` is dropped) or an emulator's.
    """

    changes_are_complete: ClassVar[bool] = False  # the ticket list has no conversations
    name: ClassVar[str] = "freshdesk"
    capabilities: ClassVar[frozenset[str]] = EVERY_CAPABILITY
    Options: ClassVar[type[BaseModel]] = FreshdeskOptions

    def __init__(
        self,
        config: DeskConfig,
        secrets: DeskSecrets | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        url = httpx.URL(config.base_url)
        path = url.path.rstrip("/")
        if path.endswith("/api/v2"):
            origin = str(url.copy_with(path=path.removesuffix("/api/v2") or "/")).rstrip("/")
            config = config.model_copy(update={"base_url": origin})
        super().__init__(config, secrets, runtime)
        self._author_id: int | None = self.opts.agent_id
        self._field_types: dict[str, str] | None = None

    @property
    def opts(self) -> FreshdeskOptions:
        """The validated ``options`` of this desk."""
        options = self.options
        if not isinstance(options, FreshdeskOptions):  # pragma: no cover - set by the base class
            raise TypeError(f"options are {type(options).__name__}, not FreshdeskOptions")
        return options

    @staticmethod
    def base_url_for(domain: str) -> str:
        """The origin of a Freshdesk helpdesk: ``acme`` or ``acme.freshdesk.com`` →
        ``https://acme.freshdesk.com``."""
        name = domain.strip().lower().removeprefix("https://").rstrip("/")
        name = name.removesuffix(".freshdesk.com")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
            raise ValueError(f"{domain!r} is not a Freshdesk helpdesk domain")
        return f"https://{name}.freshdesk.com"

    # --- emulator and conformance ----------------------------------------------------------

    @classmethod
    def emulator(cls) -> type[Any]:
        """:class:`ticketwarden.plugins.freshdesk.emulator.FreshdeskEmulator` (imported lazily)."""
        module = importlib.import_module("ticketwarden.plugins.freshdesk.emulator")
        emulator_class: type[Any] = module.FreshdeskEmulator
        return emulator_class

    @classmethod
    def secrets_from(cls, values: Mapping[str, SecretStr]) -> DeskSecrets:
        """Freshdesk's credentials: ``API_KEY`` (basic auth, the key as user name — redacted
        like a password — and ``X`` as password); ``WEBHOOK_SECRET`` checks webhooks.

        API v2 takes nothing else from an integration: no OAuth bearer tokens, and user name
        plus password only on accounts that still allow it — so no other suffix gives
        credentials here, and a desk without ``API_KEY`` is reported as having none."""
        credentials = None
        if "API_KEY" in values:
            credentials = BasicCredentials(
                username=SecretStr(values["API_KEY"].get_secret_value()),
                password=SecretStr("X"),
            )
        return DeskSecrets(credentials=credentials, webhook_secret=values.get("WEBHOOK_SECRET"))

    @classmethod
    def conformance_config(cls, base_url: str) -> tuple[DeskConfig, DeskSecrets]:
        """The emulator's fixed account (``fixtures.py``) as a desk configuration."""
        from ticketwarden.plugins.freshdesk import fixtures

        names = fixtures.TICKET_FIELDS
        # The suite's set_field round trip writes the *first* mapped field: a text field.
        order = ("server_url", "module", "steps", "sample_machines", "version", "sev1_contact")
        fields = {name: f"custom:{names[name]}" for name in order}
        fields["severity"] = f"custom:{names['severity']}"
        fields["resolution_reason"] = f"custom:{names['resolution_reason']}"
        config = DeskConfig.model_validate(
            {
                "name": "freshdesk",
                "connector": cls.name,
                "base_url": base_url,
                "fields": fields,
                "statuses": {
                    str(code): meaning for code, meaning in fixtures.CUSTOM_STATUS_MEANING.items()
                },
                "priorities": {name: str(code) for name, code in fixtures.PRIORITIES.items()},
                "severity_values": dict(fixtures.SEVERITY_VALUES),
                "escalation": {
                    target: {"group": str(group)} for target, group in fixtures.GROUPS.items()
                },
                "contacts": {
                    "where": "user",
                    "authorized_field": fixtures.CONTACT_FIELDS["authorized"],
                    "certified_until_field": fixtures.CONTACT_FIELDS["certified_until"],
                    "available_24x7_field": fixtures.CONTACT_FIELDS["available_24x7"],
                },
                # a page smaller than the emulator's shared-timestamp batches, so the feed's
                # restarts within one second are exercised
                "options": {
                    "per_page": 25,
                    "agent_id": fixtures.AGENT_ID,
                    "follow_up_field": fixtures.FOLLOW_UP_FIELD,
                },
            }
        )
        secrets = DeskSecrets(
            credentials=BasicCredentials(
                username=SecretStr(fixtures.API_KEY), password=SecretStr("X")
            ),
            webhook_secret=SecretStr(fixtures.WEBHOOK_SECRET),
        )
        return config, secrets

    # --- reading --------------------------------------------------------------------------------

    async def read_ticket(self, ticket_id: str) -> Ticket:
        """The ticket with its conversations, requester, company and mapped fields.

        **One request** — ``GET /api/v2/tickets/{id}?include=conversations,requester,company,
        stats`` (5 API credits) — while the ticket has fewer than ten conversations; the include
        embeds only the first ten, so with ten ``GET /api/v2/tickets/{id}/conversations`` lists
        them all (100 a page, ``Link`` header). Once per connector, ``GET /api/v2/agents/me``
        when ``options.agent_id`` is not configured and the ticket has conversations.
        """
        tid = self._checked_id(ticket_id)
        body = await self.client.get_json(
            f"/api/v2/tickets/{tid}", params={"include": VIEW_INCLUDES}
        )
        record = self._record(body)
        embedded = record.get("conversations")
        conversations: list[Mapping[str, Any]] = (
            [c for c in embedded if isinstance(c, dict)] if isinstance(embedded, list) else []
        )
        if isinstance(embedded, list) and len(embedded) >= INCLUDED_CONVERSATIONS:
            conversations = await self._conversations(tid)
        author = await self._ticketwarden_author() if conversations else self._author_id
        return self._ticket(record, conversations, author)

    async def _conversations(self, tid: str) -> list[Mapping[str, Any]]:
        """Every conversation of the ticket, oldest first."""
        found: list[Mapping[str, Any]] = []
        async for item in paginate_links(
            self.client,
            f"/api/v2/tickets/{tid}/conversations",
            params={"per_page": CONVERSATIONS_PAGE_SIZE},
            items=lambda body: [c for c in body if isinstance(c, dict)],
        ):
            found.append(item)
        return found

    async def _ticketwarden_author(self) -> int:
        """The agent id ticketwarden's conversations carry: ``options.agent_id`` or the API
        key's agent (``GET /api/v2/agents/me``, once)."""
        if self._author_id is None:
            body = await self.client.get_json("/api/v2/agents/me")
            agent_id = _int_id(body.get("id")) if isinstance(body, dict) else None
            if agent_id is None:
                raise self._shape("agents/me has no agent id", body)
            self._author_id = agent_id
        return self._author_id

    async def changes(self, cursor: str | None, *, since: datetime | None = None) -> ChangePage:
        """One page of tickets changed after ``cursor`` (or updated since ``since``).

        ``GET /api/v2/tickets?updated_since=T&order_by=updated_at&order_type=asc&per_page=N``:
        ascending by ``updated_at`` (ties by id), ``updated_since`` inclusive. The cursor holds
        ``T``, the ``updated_at`` of the last ticket returned, and the ids already returned
        with exactly that ``updated_at``; every call **restarts from T** and skips those ids,
        rather than walking page numbers. Page numbers over a list ordered by update time are
        unstable — a ticket updated during the walk jumps to the end and shifts every later one
        back a place, so the ticket at the page boundary is never seen — and the list refuses
        pages above 300 (``options.max_list_page``). Restarting from the last timestamp is
        immune to both: what moved is found again at its new time, and the page number stays 1.

        Only when more tickets than a page share one second does a call go past page 1: it
        moves on while a full page brings nothing new. It always starts at page 1 rather than
        jumping to where the unseen ones "should" begin: tickets of that second may have moved
        away (updated again) or joined it (updated within the same second, with a lower id)
        since the last call, and either would make a jump skip one. The price is paid only in
        that rare case — a second shared by k pages of tickets costs up to k requests a call.
        More than ``max_list_page`` pages of tickets sharing one second cannot be listed at all
        (a ``ProtocolError``). The tickets carry **no conversations** (the list has none) and
        no description: read a ticket to evaluate it.
        """
        if cursor:
            try:
                position = _FeedCursor.decode(cursor)
            except (ValueError, KeyError, TypeError) as exc:
                raise TicketwardenError(
                    f"desk {self.config.name}: unreadable change-feed cursor {cursor!r} ({exc})"
                ) from None
        else:
            position = _FeedCursor(since.astimezone(UTC) if since is not None else _EPOCH)
        size = self.opts.per_page
        page = 1
        records: list[Mapping[str, Any]] = []
        fresh: list[Mapping[str, Any]] = []
        more = False
        while True:
            if page > self.opts.max_list_page:
                raise ProtocolError(
                    self.config.name,
                    f"more than {self.opts.max_list_page} pages of tickets share the update time "
                    f"{freshdesk_time(position.since)}; the ticket list cannot page past them",
                    secrets=self.client.secrets(),
                )
            records, more = await self._list_page(position.since, page, size)
            fresh = [r for r in records if self._is_new(r, position)]
            if fresh or not more:
                break
            page += 1
        try:
            fresh.sort(key=lambda r: (_parse_time(r["updated_at"]), r["id"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise self._shape(f"unexpected ticket list page ({exc!r})", records) from exc
        tickets = tuple(self._ticket(r) for r in fresh)
        if not fresh:
            return ChangePage(tickets=(), cursor=position.encode(), has_more=more)
        last = _parse_time(fresh[-1]["updated_at"])
        seen = {r["id"] for r in fresh if _parse_time(r["updated_at"]) == last}
        if last == position.since:
            seen |= position.seen
        following = _FeedCursor(last, frozenset(seen))
        return ChangePage(tickets=tickets, cursor=following.encode(), has_more=more)

    async def _list_page(
        self, since: datetime, page: int, size: int
    ) -> tuple[list[Mapping[str, Any]], bool]:
        """One page of the ticket list from ``since``; whether another follows (``Link``)."""
        params = {
            "updated_since": freshdesk_time(since),
            "order_by": "updated_at",
            "order_type": "asc",
            "per_page": size,
            "page": page,
        }
        response = await self.client.request("GET", "/api/v2/tickets", params=params)
        body = self.client.decode_json(response)
        if not isinstance(body, list):
            raise self._shape("the ticket list is not a JSON array", body)
        records: list[Mapping[str, Any]] = [
            r for r in body if isinstance(r, dict) and not r.get("deleted")
        ]
        more = bool(response.links.get("next")) or len(body) >= size
        return records, more

    @staticmethod
    def _is_new(record: Mapping[str, Any], position: _FeedCursor) -> bool:
        try:
            at = _parse_time(record["updated_at"])
        except (KeyError, ValueError):
            return True  # reported as a malformed record by _ticket
        if at < position.since:
            return False
        return not (at == position.since and record.get("id") in position.seen)

    async def candidates(self, query: CandidateQuery) -> AsyncIterator[Ticket]:
        """Tickets in one of ``query.statuses`` updated before/after the given times.

        The filter API: ``GET /api/v2/search/tickets?query="(status:3 OR status:6) AND
        updated_at:<'2026-11-23'"&page=N``. Its dates are whole UTC days, so the query asks
        for the days around the times and each result is checked against the exact times
        before it is yielded; status codes are the desk's (built-in and mapped custom ones),
        every value formatted and checked by :mod:`ticketwarden.plugins.freshdesk.search`.

        The filter API returns 30 results a page and **at most 10 pages**: 300 results, though
        its ``total`` counts every match. When the first page's ``total`` exceeds 300, the day
        range is split in halves (the lower end, when open, is ``options.search_since``) until
        each part fits; a single day still above 300 is split by priority; a day and priority
        still above it yields its first 300 and logs a warning — the next run finds the rest
        once these have moved on. Results are de-duplicated; tickets carry no conversations.
        """
        codes = self._status_codes_for(query.statuses)
        if not codes:
            return
        seen: set[int] = set()
        first = query.updated_after.astimezone(UTC).date() if query.updated_after else None
        last = query.updated_before.astimezone(UTC).date() if query.updated_before else None
        async for record in self._search_window(codes, first, last, None):
            tid = record.get("id")
            if not isinstance(tid, int) or tid in seen:
                continue
            ticket = self._ticket(record)
            if ticket.status not in query.statuses:
                continue
            if query.updated_before and not ticket.updated_at < query.updated_before:
                continue
            if query.updated_after and not ticket.updated_at > query.updated_after:
                continue
            seen.add(tid)
            yield ticket

    async def _search_window(
        self, codes: Sequence[int], first: date | None, last: date | None, priority: int | None
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Every result of one window, splitting it while it exceeds the 300-result cap."""
        try:
            query = ticket_candidates_query(codes, from_day=first, to_day=last, priority=priority)
        except SearchValueError as exc:
            raise TicketwardenError(f"desk {self.config.name}: {exc}") from None
        results, total = await self._search_page(query, 1)
        if total > SEARCH_RESULT_CAP:
            low = first or self.opts.search_since
            high = last or datetime.fromtimestamp(self.runtime.wall_clock(), UTC).date()
            if low < high:
                middle = low + timedelta(days=(high - low).days // 2)
                async for record in self._search_window(codes, low, middle, priority):
                    yield record
                async for record in self._search_window(
                    codes, middle + timedelta(days=1), high, priority
                ):
                    yield record
                return
            if priority is None:
                for code in sorted(set(self._priority_codes().values())):
                    async for record in self._search_window(codes, low, high, code):
                        yield record
                return
            log.warning(
                "%s: %d tickets match %s; the filter API returns only %d — the rest are found "
                "on a later run",
                self.config.name,
                total,
                query,
                SEARCH_RESULT_CAP,
            )
        for record in results:
            yield record
        pages = min(SEARCH_PAGE_LIMIT, -(-total // SEARCH_PAGE_SIZE))
        for page in range(2, pages + 1):
            results, _ = await self._search_page(query, page)
            if not results:
                return
            for record in results:
                yield record

    async def _search_page(self, query: str, page: int) -> tuple[list[Mapping[str, Any]], int]:
        body = await self.client.get_json(
            "/api/v2/search/tickets", params={"query": query, "page": page}
        )
        results = body.get("results") if isinstance(body, dict) else None
        total = body.get("total") if isinstance(body, dict) else None
        if not isinstance(results, list) or not isinstance(total, int):
            raise self._shape("the filter API answered without results and total", body)
        return [r for r in results if isinstance(r, dict)], total

    def _status_codes_for(self, statuses: frozenset[Status]) -> list[int]:
        codes = set(FRESHDESK_STATUSES) | {int(k) for k in self.config.statuses if _DIGITS.match(k)}
        return sorted(c for c in codes if self._status_of_code(c) in statuses)

    async def roster(self) -> Roster:
        """The authorized contacts, from contact fields or company fields.

        ``contacts.where = "user"`` (a Freshdesk *contact*): every contact whose checkbox
        ``authorized_field`` is ticked, with ``certified_until_field`` (a date field) and
        ``available_24x7_field`` (a checkbox), grouped by the contact's company (contacts
        without one cannot be matched to a ticket and are left out). ``GET /api/v2/contacts``,
        100 a page — the contact filter API would cap the answer at 300 and lags behind edits.

        ``contacts.where = "organization"`` (a Freshdesk *company*): each company's
        ``authorized_field`` (a multi-line text field) lists its authorized contacts' e-mail
        addresses (separated by new lines, commas, semicolons or spaces);
        ``available_24x7_field`` lists those reachable around the clock the same way;
        ``certified_until_field`` (a date field) applies to all of them.
        ``GET /api/v2/companies``, 100 a page. Contact and company fields carry no ``cf_``
        prefix in the API: name them as the API returns them.
        """
        source = self.config.contacts
        if source.where == "roster_file":
            raise CapabilityMissing(
                "contacts.where = 'roster_file': the roster is read from the file, not Freshdesk"
            )
        if not source.authorized_field:
            raise TicketwardenError(
                f"desk {self.config.name}: contacts.authorized_field names no field"
            )
        if source.where == "user":
            return await self._contact_roster(source)
        return await self._company_roster(source)

    async def _contact_roster(self, source: ContactSource) -> Roster:
        by_org: dict[str, dict[str, AuthorizedContact]] = {}
        async for contact in paginate_links(
            self.client,
            "/api/v2/contacts",
            params={"per_page": 100},
            items=lambda body: [c for c in body if isinstance(c, dict)],
        ):
            values = _custom_fields(contact)
            company = contact.get("company_id")
            if company is None:
                company = contact.get("customer_id")  # the API v1 name (recorded contact.json)
            email = contact.get("email")
            if not _truthy(values.get(source.authorized_field or "")) or company is None:
                continue
            if not isinstance(email, str) or not email or contact.get("deleted"):
                continue
            entry = AuthorizedContact(
                email=email,
                name=contact.get("name") or "",
                phone=str(contact.get("phone") or contact.get("mobile") or ""),
                certified_until=_date(values.get(source.certified_until_field or "")),
                available_24x7=_truthy(values.get(source.available_24x7_field or "")),
            )
            by_org.setdefault(str(company), {})[entry.email] = entry
        return _roster(by_org)

    async def _company_roster(self, source: ContactSource) -> Roster:
        by_org: dict[str, dict[str, AuthorizedContact]] = {}
        split = re.compile(r"[,;\s]+")
        async for company in paginate_links(
            self.client,
            "/api/v2/companies",
            params={"per_page": 100},
            items=lambda body: [c for c in body if isinstance(c, dict)],
        ):
            values = _custom_fields(company)
            listed = _text(values.get(source.authorized_field or "")) or ""
            emails = [e for e in split.split(listed) if "@" in e]
            if not emails:
                continue
            around_the_clock = {
                e.lower()
                for e in split.split(_text(values.get(source.available_24x7_field or "")) or "")
            }
            certified = _date(values.get(source.certified_until_field or ""))
            contacts = by_org.setdefault(str(company["id"]), {})
            for email in emails:
                entry = AuthorizedContact(
                    email=email,
                    certified_until=certified,
                    available_24x7=email.lower() in around_the_clock,
                )
                contacts[entry.email] = entry
        return _roster(by_org)

    # --- mapping Freshdesk records to the model -----------------------------------------------

    def _status_of_code(self, code: int) -> Status | None:
        configured = self.config.statuses.get(str(code))
        if configured is not None:
            return configured
        return FRESHDESK_STATUSES.get(code)

    def _status(self, record: Mapping[str, Any]) -> Status:
        code = _int_id(record.get("status"))
        status = self._status_of_code(code) if code is not None else None
        if status is None:
            raise ValueError(
                f"unknown Freshdesk status {record.get('status')!r} (map a custom status in the "
                'desk\'s statuses, e.g. "6" = "on_hold")'
            )
        return status

    def _priority_codes(self) -> dict[Priority, int]:
        codes = dict(FRESHDESK_PRIORITIES)
        for priority, value in self.config.priorities.items():
            if _DIGITS.match(value):
                codes[priority] = int(value)
        return codes

    def _priority(self, value: Any) -> Priority | None:
        code = _int_id(value)
        if code is None:
            return None
        for priority, desk_code in self._priority_codes().items():
            if desk_code == code:
                return priority
        return None

    def _field_value(self, record: Mapping[str, Any], source: FieldSource) -> str | None:
        if source.kind == "custom":
            return _text(_custom_fields(record).get(source.id))
        if source.kind == "native":
            return _text(record.get(source.id))
        for tag in record.get("tags") or ():
            if isinstance(tag, str) and tag.startswith(source.id) and len(tag) > len(source.id):
                return tag[len(source.id) :]
        return None

    def _severity(self, record: Mapping[str, Any]) -> Severity | None:
        source = self.config.field_source("severity")
        if source is None:
            return None
        value = self._field_value(record, source)
        if value is None:
            return None
        mapped = self.config.severity_values.get(value)
        if mapped is None and source == FieldSource(kind="native", id="priority"):
            priority = self._priority(value)
            mapped = _SEVERITY_OF_PRIORITY[priority] if priority is not None else None
        if mapped is None and value in ("1", "2", "3", "4"):
            mapped = int(value)
        return Severity(mapped) if mapped is not None else None

    def _role(
        self, conversation: Mapping[str, Any], requester: Any, ticketwarden: int | None
    ) -> AuthorRole:
        """Who wrote a conversation.

        ``incoming`` (it came from outside: the requester's or a CC'd person's e-mail or portal
        reply) and the requester's own conversations are the customer's; those of the API
        key's agent (``options.agent_id``) are ticketwarden's — ``system``, so they never count
        as an agent's response; every other is an agent's (Freshdesk gives only agents
        outgoing replies and notes). Give ticketwarden an agent of its own: a person working
        under the same agent would read as ``system`` too.
        """
        user = conversation.get("user_id")
        if conversation.get("incoming") or (user is not None and user == requester):
            return AuthorRole.CUSTOMER
        if ticketwarden is not None and user == ticketwarden:
            return AuthorRole.SYSTEM
        return AuthorRole.AGENT

    def ticket_from(
        self,
        record: Mapping[str, Any],
        *,
        conversations: Sequence[Mapping[str, Any]] = (),
    ) -> Ticket:
        """A ticket record as Freshdesk returns it (from the ticket view, with or without its
        embedded ``requester``, ``company``, ``stats`` and ``conversations``, or from the list
        and the filter API) and its ``conversations``, as the normalized model — the mapping
        :meth:`read_ticket`, :meth:`changes` and :meth:`candidates` use.

        :raises ProtocolError: the record lacks what a ticket needs.
        """
        embedded = record.get("conversations")
        found = list(conversations) or (
            [c for c in embedded if isinstance(c, dict)] if isinstance(embedded, list) else []
        )
        return self._ticket(record, found, self._author_id)

    def _ticket(
        self,
        record: Mapping[str, Any],
        conversations: Sequence[Mapping[str, Any]] = (),
        ticketwarden: int | None = None,
    ) -> Ticket:
        """A Freshdesk ticket record (with its conversations) as the normalized model."""
        try:
            return self._build_ticket(record, conversations, ticketwarden)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._shape(f"unexpected ticket record ({exc!r})", record) from exc

    def _build_ticket(
        self,
        record: Mapping[str, Any],
        conversations: Sequence[Mapping[str, Any]],
        ticketwarden: int | None,
    ) -> Ticket:
        tid = record["id"]
        if not isinstance(tid, int) or isinstance(tid, bool):
            raise TypeError(f"ticket id {tid!r} is not an integer")
        requester_id = record["requester_id"]
        embedded = record.get("requester")
        # ``include=requester`` embeds the ticket's requester: trusted even where its id
        # differs from requester_id (as in the recorded ticket_1.json, a hand-made sample)
        person: Mapping[str, Any] = embedded if isinstance(embedded, dict) else {}
        requester = Contact(
            id=str(requester_id),
            name=person.get("name") or record.get("requester_name") or "",
            email=person.get("email") or "",
            phone=str(person.get("phone") or person.get("mobile") or ""),
        )
        company_id = record.get("company_id")
        organization = None
        if company_id is not None:
            company = record.get("company")
            name = company.get("name") if isinstance(company, dict) else None
            organization = Organization(id=str(company_id), name=name or "")
        fields: dict[str, str] = {}
        for canonical, source in self.config.fields.items():
            if canonical == "severity":
                continue
            value = self._field_value(record, source)
            if value is not None:
                fields[canonical] = value
        tags = [t for t in record.get("tags") or () if isinstance(t, str)]
        reason_source = self.config.field_source("resolution_reason")
        reason = self._field_value(record, reason_source) if reason_source else None
        if reason is None:
            prefix = self.config.resolution_tag_prefix
            reason = next((t[len(prefix) :] for t in tags if t.startswith(prefix)), None) or None
        stats = record.get("stats")
        resolved = stats.get("resolved_at") if isinstance(stats, dict) else None
        description = record.get("description_text")
        if not isinstance(description, str):
            markup = record.get("description") or record.get("description_html") or ""
            description = html_to_text(markup) if isinstance(markup, str) else ""
        normalized = [
            Comment(
                id=str(c["id"]),
                author_role=self._role(c, requester_id, ticketwarden),
                author=_author_name(c, requester_id, requester),
                body=_body_text(c),
                public=not bool(c.get("private", False)),
                created_at=_parse_time(c["created_at"]),
            )
            for c in conversations
        ]
        normalized.sort(key=lambda c: c.created_at)
        status = self._status(record)
        return Ticket(
            id=str(tid),
            number=f"#{tid}",
            desk=self.config.name,
            subject=record.get("subject") or "",
            description=description,
            status=status,
            severity=self._severity(record),
            priority=self._priority(record.get("priority")),
            requester=requester,
            organization=organization,
            fields=fields,
            tags=frozenset(tags),
            comments=tuple(normalized),
            group=_id_text(record.get("group_id")),
            assignee=_id_text(record.get("responder_id")),
            created_at=_parse_time(record["created_at"]),
            updated_at=_parse_time(record["updated_at"]),
            resolved_at=_maybe_time(resolved) if resolved and status.is_done else None,
            resolution_reason=reason,
            follow_up_of=self._follow_up_of(record, tags),
        )

    def _follow_up_of(self, record: Mapping[str, Any], tags: Sequence[str]) -> str | None:
        """The closed ticket this one follows up: ``options.follow_up_field`` (a number field),
        or the ``follow_up_tag_prefix`` tag."""
        name = self.opts.follow_up_field
        if name is not None:
            value = _int_id(_custom_fields(record).get(name))
            if value is not None and value > 0:
                return str(value)
        prefix = self.opts.follow_up_tag_prefix
        for tag in tags:
            rest = tag[len(prefix) :]
            if tag.startswith(prefix) and _TICKET_ID.match(rest):
                return rest
        return None

    # --- writing ------------------------------------------------------------------------------

    async def apply(self, ticket: Ticket, actions: Sequence[BaseAction]) -> list[ActionResult]:
        """Carry out one evaluation's actions with as few requests as Freshdesk allows.

        1. **Re-read** (``GET /api/v2/tickets/{id}``, one credit) whenever the ticket itself is
           written: Freshdesk has no conditional update, so this is where a concurrent change
           shows. If the ticket's ``updated_at`` moved past the one the evaluation read and the
           evaluation does more than add or remove tags, :class:`ConflictError` is raised before
           anything is sent — the caller re-reads and re-evaluates, as after Zendesk's 409
           (``options.conflict_check = false`` turns this off). Tag changes alone are merged.
        2. **One** ``PUT /api/v2/tickets/{id}`` with every field change — status, priority,
           severity, custom fields, group/agent, the resolution — and the tags as the re-read
           list ∪ added − removed (``tags`` replaces the whole list in Freshdesk).
        3. Each comment: ``POST …/reply`` (public) or ``POST …/notes`` (``private: true``),
           exactly once (:meth:`_post_conversation`).
        4. A close after comments: one more ``PUT`` with status closed, so the closing comment
           is not added to a ticket already closed; without comments the close rides in (2).
        5. Each follow-up: ``POST /api/v2/tickets`` (:meth:`_create_follow_up`).

        A 400 (Freshdesk's "Validation failed", with each field's message) reports the actions
        of that request and every later one ``failed``; actions that cannot be expressed in this
        desk's configuration (an unmapped escalation target, a tag over 32 characters) fail
        without a request.

        **The race that remains**: between the re-read and the ``PUT`` (one round trip) an
        agent's change of the ticket is not seen, and a tag they add or remove in that window
        is overwritten by the list sent. ``updated_at`` cannot close it — Freshdesk checks
        nothing on update — it only narrows it from "since the evaluation" to that round trip.
        """
        results: dict[int, ActionResult] = {}
        main = _Update()
        comments: list[tuple[int, AddComment]] = []
        follow_ups: list[tuple[int, CreateFollowUp]] = []
        close: list[int] = []
        for index, action in enumerate(actions):
            kind = action.kind
            if kind in INTERNAL_KINDS:
                results[index] = self.result(action, Outcome.UNCHANGED)
            elif not self.supports(kind):
                detail = f"{self.name} cannot {kind}"
                results[index] = self.result(action, Outcome.UNSUPPORTED, detail)
            elif isinstance(action, CreateFollowUp):
                follow_ups.append((index, action))
            elif isinstance(action, AddComment):
                comments.append((index, action))
            elif _closes(action) and ticket.status == Status.CLOSED:
                results[index] = self.result(action, Outcome.UNCHANGED, "already closed")
            elif _closes(action):
                close.append(index)
            else:
                try:
                    self._plan(main, ticket, action)
                except _Refused as problem:
                    results[index] = self.result(action, Outcome.FAILED, str(problem))
                else:
                    main.riders.append(index)

        closing = _Update()
        if close:
            try:
                code = self._status_code(Status.CLOSED)
            except _Refused as problem:
                for index in close:
                    results[index] = self.result(actions[index], Outcome.FAILED, str(problem))
            else:
                target = closing if comments else main
                target.fields["status"] = code
                target.riders.extend(close)

        tid = self._checked_id(ticket.id)
        refused: str | None = None
        if main.riders or comments or closing.riders:
            current = await self._fresh(tid, ticket, main, bool(comments or closing.riders))
            if main.riders:
                refused = await self._send_update(tid, main, current, actions, results)
            for index, comment in comments:
                if refused is not None:
                    results[index] = self._not_sent(actions[index], refused)
                    continue
                try:
                    made = await self._post_conversation(tid, ticket, comment)
                except RejectedError as exc:
                    refused = exc.message
                    results[index] = self.result(actions[index], Outcome.FAILED, exc.message)
                else:
                    results[index] = self.result(actions[index], created_id=made)
            if closing.riders:
                if refused is not None:
                    for index in closing.riders:
                        results[index] = self._not_sent(actions[index], refused)
                else:
                    await self._send_update(tid, closing, None, actions, results)

        for index, follow_up in follow_ups:
            results[index] = await self._create_follow_up(ticket, follow_up)
        return [results[index] for index in range(len(actions))]

    def _not_sent(self, action: BaseAction, refused: str) -> ActionResult:
        detail = f"not sent: an earlier request was refused ({refused})"
        return self.result(action, Outcome.FAILED, detail)

    async def _fresh(
        self, tid: str, ticket: Ticket, update: _Update, appends: bool
    ) -> Mapping[str, Any] | None:
        """Re-read the ticket before writing it; raise :class:`ConflictError` if it changed
        since the evaluation read it and the write is more than tags. ``None`` when nothing
        needs the current state (no tags, no conflict check)."""
        checks = self.opts.conflict_check and (update.touches_more_than_tags or appends)
        if not checks and not update.touches_tags:
            return None
        body = await self.client.get_json(f"/api/v2/tickets/{tid}")
        record = self._record(body)
        try:
            updated = _parse_time(record["updated_at"])
        except (KeyError, ValueError) as exc:
            raise self._shape(f"the ticket has no updated_at ({exc!r})", record) from exc
        if checks and _whole_seconds(updated) > _whole_seconds(ticket.updated_at):
            raise ConflictError(
                self.config.name,
                f"ticket {tid} changed at {freshdesk_time(updated)}, after the evaluation read "
                f"it ({freshdesk_time(ticket.updated_at)}); read it again and re-evaluate",
                method="PUT",
                url=str(self.client.resolve(f"/api/v2/tickets/{tid}")),
                secrets=self.client.secrets(),
            )
        return record

    async def _send_update(
        self,
        tid: str,
        update: _Update,
        current: Mapping[str, Any] | None,
        actions: Sequence[BaseAction],
        results: dict[int, ActionResult],
    ) -> str | None:
        """Send one ``PUT`` and report its actions; the refusal message if Freshdesk refused."""
        tags = [t for t in (current or {}).get("tags") or () if isinstance(t, str)]
        payload = update.body(tags if current is not None else None)
        if update.custom:
            payload["custom_fields"] = await self._typed_custom(update.custom)
        if payload:
            try:
                await self.client.send_json("PUT", f"/api/v2/tickets/{tid}", payload)
            except RejectedError as exc:
                for index in update.riders:
                    results[index] = self.result(actions[index], Outcome.FAILED, exc.message)
                return exc.message
        for index in update.riders:
            results[index] = self.result(actions[index])
        return None

    # Each apply_<kind> is apply() on one action (the contract's per-kind entry points).

    def _plan(self, update: _Update, ticket: Ticket, action: BaseAction) -> None:
        """Fold one field-changing action into ``update``; :class:`_Refused` if it cannot be."""
        if isinstance(action, SetStatus):
            update.fields["status"] = self._status_code(action.status)
        elif isinstance(action, SetPriority):
            update.fields["priority"] = self._priority_codes()[action.priority]
        elif isinstance(action, SetSeverity):
            source = self.config.field_source("severity")
            if source is None:
                raise _Refused("severity is not mapped (fields.severity in the desk config)")
            self._write(update, source, self._severity_value(action.severity, source))
        elif isinstance(action, AddTags):
            _check_tags(action.tags)
            update.add(sorted(action.tags))
        elif isinstance(action, RemoveTags):
            update.remove(sorted(action.tags))
        elif isinstance(action, SetField):
            source = self.config.field_source(action.field)
            if source is None:
                raise _Refused(f"field {action.field!r} is not mapped (fields in the desk config)")
            self._write(update, source, action.value)
        elif isinstance(action, Escalate):
            target = self.config.escalation.get(action.target)
            if target is None:
                raise _Refused(
                    f"escalation target {action.target!r} is not mapped "
                    f"(escalation.{action.target} in the desk config)"
                )
            update.fields.update(self._escalation_fields(action.target, target))
        elif isinstance(action, Resolve):
            self._plan_resolve(update, action)
        else:  # pragma: no cover - every declared kind is handled above or in apply()
            raise _Refused(f"{self.name} has no plan for {action.kind}")

    def _plan_resolve(self, update: _Update, action: Resolve) -> None:
        """Resolved, the reason in ``fields.resolution_reason`` and the tag
        ``{resolution_tag_prefix}{reason}`` — left out when longer than Freshdesk's 32
        characters and the field holds the reason, refused when it would be the only record."""
        source = self.config.field_source("resolution_reason")
        tag = re.sub(r"\s+", "_", f"{self.config.resolution_tag_prefix}{action.resolution}")
        if len(tag) > TAG_MAX_LENGTH and source is None:
            raise _Refused(
                f"the resolution tag {tag!r} is longer than Freshdesk's {TAG_MAX_LENGTH} "
                "characters; map fields.resolution_reason to record the reason"
            )
        update.fields["status"] = self._status_code(Status.RESOLVED)
        if source is not None:
            self._write(update, source, action.resolution)
        if len(tag) <= TAG_MAX_LENGTH:
            update.add([tag])

    def _write(self, update: _Update, source: FieldSource, value: str) -> None:
        if source.kind == "custom":
            update.custom[source.id] = value
        elif source.kind == "native":
            if source.id == "priority":
                priority = self._priority(value)
                if priority is None:
                    raise _Refused(f"{value!r} is not a Freshdesk priority code")
                update.fields["priority"] = self._priority_codes()[priority]
            elif source.id in _PROTECTED_NATIVE or source.id not in _WRITABLE_NATIVE:
                raise _Refused(f"native:{source.id} is not a field set_field may write")
            else:
                update.fields[source.id] = value
        else:
            tag = source.id + value
            _check_tags([tag])
            update.tag_prefixes[source.id] = tag

    def _severity_value(self, severity: Severity, source: FieldSource) -> str:
        for value, level in self.config.severity_values.items():
            if level == int(severity):
                return value
        if source == FieldSource(kind="native", id="priority"):
            priority = next(p for p, s in _SEVERITY_OF_PRIORITY.items() if s == int(severity))
            return str(self._priority_codes()[priority])
        if source.kind == "tag":
            return str(int(severity))
        raise _Refused(f"severity_values has no desk value for severity {int(severity)}")

    def _status_code(self, status: Status) -> int:
        """Freshdesk's code for ``status``: the first desk status mapped to it in
        ``statuses``, else the built-in one (unless ``statuses`` gives that code another
        meaning). On hold has no built-in code: map a custom status to it."""
        for key, mapped in self.config.statuses.items():
            if mapped == status and _DIGITS.match(key):
                return int(key)
        code = _STATUS_CODES.get(status)
        if code is not None and self.config.statuses.get(str(code), status) == status:
            return code
        raise _Refused(
            f"no Freshdesk status means {status.value}: map one in the desk's statuses "
            f'(e.g. "6" = "{status.value}" for a custom status)'
        )

    def _escalation_fields(self, name: str, target: EscalationTarget) -> dict[str, int]:
        unsupported = target.unsupported(frozenset({"group", "assignee"}))
        if unsupported:
            raise _Refused(
                f"escalation target {name!r} names {', '.join(unsupported)}, which Freshdesk "
                "does not have (a group and/or an assignee)"
            )
        fields: dict[str, int] = {}
        for key, value in (("group_id", target.group), ("responder_id", target.assignee)):
            if value is None:
                continue
            if not _DIGITS.match(value):
                raise _Refused(
                    f"escalation target {name!r}: {'group' if key == 'group_id' else 'agent'} "
                    f"{value!r} is not a Freshdesk id (digits)"
                )
            fields[key] = int(value)
        return fields

    async def _typed_custom(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Custom field values as their fields' types want them: a number field an integer, a
        checkbox a boolean (``set_field`` values are text). The types come from
        ``GET /api/v2/ticket_fields``, read once; without them values are sent as they are."""
        types = await self._custom_field_types()
        typed: dict[str, Any] = {}
        for name, value in values.items():
            kind = types.get(name)
            if isinstance(value, str) and kind == "custom_number":
                number = value.strip()
                typed[name] = int(number) if re.fullmatch(r"-?\d+", number) else value
            elif isinstance(value, str) and kind == "custom_checkbox":
                typed[name] = _truthy(value)
            else:
                typed[name] = value
        return typed

    async def _custom_field_types(self) -> dict[str, str]:
        if self._field_types is None:
            try:
                body = await self.client.get_json("/api/v2/ticket_fields")
            except (AuthenticationError, NotFoundError, RejectedError) as exc:
                # an agent role without access to the admin's field list: send values as text
                log.info("%s: ticket field types unknown (%s)", self.config.name, exc)
                body = []
            types: dict[str, str] = {}
            for item in body if isinstance(body, list) else ():
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    types[item["name"]] = str(item.get("type") or "")
            self._field_types = types
        return self._field_types

    async def _post_conversation(self, tid: str, ticket: Ticket, comment: AddComment) -> str:
        """A reply (``POST /api/v2/tickets/{id}/reply``) or a private note
        (``POST …/notes`` with ``private: true``), created exactly once; returns its id.

        Freshdesk has no external id on conversations, so after a timed-out or dropped
        request, :func:`create_once` looks for it in the ticket's conversations (a database
        read, not a search index): by ticketwarden's agent, with the same text (white space
        aside: Freshdesk keeps the text as HTML) and visibility, created no earlier than a
        second before the update the evaluation read and not among the conversations read —
        so the same words sent on an earlier occasion do not count. Found: it landed, nothing
        is re-sent. Not found: it is sent again.
        """
        path = f"/api/v2/tickets/{tid}/{'reply' if comment.public else 'notes'}"
        payload: dict[str, Any] = {"body": text_to_html(comment.body)}
        if not comment.public:
            payload["private"] = True
        known = frozenset(c.id for c in ticket.comments)
        since = ticket.updated_at - timedelta(seconds=1)

        async def send() -> Mapping[str, Any]:
            body = await self.client.send_json("POST", path, payload)
            if not isinstance(body, dict) or body.get("id") is None:
                raise self._shape("the conversation created has no id", body)
            return body

        async def find() -> Mapping[str, Any] | None:
            author = await self._ticketwarden_author()
            wanted = _squash(comment.body)
            for found in await self._conversations(tid):
                created = _maybe_time(found.get("created_at"))
                if (
                    str(found.get("id")) not in known
                    and found.get("user_id") == author
                    and _squash(_body_text(found)) == wanted
                    and bool(found.get("private", False)) != comment.public
                    and created is not None
                    and created >= since
                ):
                    return found
            return None

        created = await create_once(
            send, find, settle_seconds=self.opts.create_settle_seconds, sleep=self.runtime.sleep
        )
        return str(created["id"])

    async def _create_follow_up(self, ticket: Ticket, action: CreateFollowUp) -> ActionResult:
        """``POST /api/v2/tickets``: the requester, the customer's text as the description,
        the closed ticket's priority and mapped custom fields (as Zendesk copies them into a
        follow-up), the link — ``options.follow_up_field`` (a number field) = the closed
        ticket's id, or the tag ``{follow_up_tag_prefix}{id}`` — and the marker tag
        ``tw-fu-<hash of the action key>``.

        Freshdesk has no follow-up relation of its own (parent-child and tracker tickets mean
        something else and need plan features). After a lost response, ``create_once`` looks
        the marker up among the requester's newest tickets
        (``GET /api/v2/tickets?requester_id=…&order_by=created_at&order_type=desc``, a database
        read, not the lagging filter API) before sending again.
        """
        requester = _int_id(ticket.requester.id)
        if requester is None:
            detail = f"requester id {ticket.requester.id!r} is not a Freshdesk contact id"
            return self.result(action, Outcome.FAILED, detail)
        tid = self._checked_id(ticket.id)
        marker = _marker(action.key or uuid.uuid4().hex)
        try:
            payload = await self._follow_up_payload(tid, ticket, action, requester, marker)
        except _Refused as problem:
            return self.result(action, Outcome.FAILED, str(problem))

        async def send() -> Mapping[str, Any]:
            body = await self.client.send_json("POST", "/api/v2/tickets", payload)
            return self._record(body)

        async def find() -> Mapping[str, Any] | None:
            return await self._find_marked(requester, marker)

        try:
            record = await create_once(
                send,
                find,
                settle_seconds=self.opts.create_settle_seconds,
                sleep=self.runtime.sleep,
            )
        except RejectedError as exc:
            return self.result(action, Outcome.FAILED, exc.message)
        return self.result(action, created_id=str(record["id"]))

    async def _follow_up_payload(
        self, tid: str, ticket: Ticket, action: CreateFollowUp, requester: int, marker: str
    ) -> dict[str, Any]:
        body = await self.client.get_json(f"/api/v2/tickets/{tid}")
        source = self._record(body)
        values = _custom_fields(source)
        custom: dict[str, Any] = {}
        for canonical, where in self.config.fields.items():
            if where.kind != "custom" or canonical == "resolution_reason":
                continue
            if values.get(where.id) not in (None, ""):
                custom[where.id] = values[where.id]
        tags = [marker]
        if self.opts.follow_up_field is not None:
            custom[self.opts.follow_up_field] = int(tid)
        else:
            link = f"{self.opts.follow_up_tag_prefix}{tid}"
            _check_tags([link])
            tags.append(link)
        payload: dict[str, Any] = {
            "subject": action.subject,
            "description": text_to_html(action.body),
            "requester_id": requester,
            "status": self._status_code(Status.OPEN),
            "priority": _int_id(source.get("priority")) or self._priority_codes()[Priority.NORMAL],
            "tags": tags,
        }
        if custom:
            payload["custom_fields"] = custom
        return payload

    async def _find_marked(self, requester: int, marker: str) -> Mapping[str, Any] | None:
        """The requester's newest ticket carrying ``marker``, if any (first 100 of them)."""
        body = await self.client.get_json(
            "/api/v2/tickets",
            params={
                "requester_id": requester,
                "order_by": "created_at",
                "order_type": "desc",
                "per_page": 100,
            },
        )
        for record in body if isinstance(body, list) else ():
            if isinstance(record, dict) and marker in (record.get("tags") or ()):
                return record
        return None

    async def already_applied(self, ticket: Ticket, action: BaseAction) -> bool:
        """A follow-up is found by its marker tag among the requester's newest tickets;
        comments by the base rule."""
        if isinstance(action, CreateFollowUp) and action.key:
            requester = _int_id(ticket.requester.id)
            if requester is None:
                return False
            return await self._find_marked(requester, _marker(action.key)) is not None
        return await super().already_applied(ticket, action)

    # --- webhooks ---------------------------------------------------------------------------------

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> list[WebhookEvent]:
        """Verify and normalize one delivery of the automation rules' "Trigger webhook".

        Freshdesk signs nothing. Two forms are accepted, in this order:

        * **HMAC** (a relay in front of the sidecar computes it): ``X-Ticketwarden-Signature:
          sha256=<hex HMAC-SHA256(secret, X-Ticketwarden-Timestamp + "." + raw body)>``,
          compared in constant time before the body is parsed; the timestamp (Unix seconds)
          must lie within the replay window. Detects tampering and, with the delivery id,
          replays.
        * **Static secret** (what a bare automation rule can send):
          ``X-Ticketwarden-Secret: <secret>``, compared in constant time. It proves only that
          the sender knows the secret: it cannot detect a changed body or a replayed request.
          A ``X-Ticketwarden-Timestamp``, when present, is still checked against the window,
          and the delivery id against the ones already accepted — which catches a rule
          misfiring twice, not an attacker who has the secret.

        Neither: ``unsigned``. The body is the JSON the docs give the rule:
        ``{"ticket_id": "{{ticket.id}}", "event": "created"|"updated", "updated_at":
        "{{ticket.updated_at}}", "status": "{{ticket.status}}"}`` (``status`` renders as a
        name and is not used). The delivery id is ``X-Ticketwarden-Delivery``, else
        ``{event}-{ticket_id}-{updated_at}`` (or the timestamp; with neither, a fresh id).
        """
        signature = headers.get("x-ticketwarden-signature", "").strip()
        stamp = headers.get("x-ticketwarden-timestamp", "").strip()
        static = headers.get("x-ticketwarden-secret", "").strip()
        secret = self.webhook_secret
        if signature:
            if not stamp:
                raise WebhookRejected("malformed", "X-Ticketwarden-Signature without a timestamp")
            given = signature.removeprefix("sha256=").strip().lower()
            expected = hmac_sha256(secret, stamp.encode(), b".", body).hex()
            if not signatures_match(expected, given):
                raise WebhookRejected("bad_signature", "the signature does not match the body")
        elif static:
            if not signatures_match(secret.get_secret_value(), static):
                raise WebhookRejected("bad_signature", "X-Ticketwarden-Secret is not the secret")
        else:
            raise WebhookRejected(
                "unsigned", "neither X-Ticketwarden-Signature nor X-Ticketwarden-Secret"
            )
        sent: datetime | None = None
        if stamp:
            if not re.fullmatch(r"[0-9]{1,12}", stamp):
                raise WebhookRejected("malformed", f"unreadable timestamp {stamp!r}")
            sent = datetime.fromtimestamp(int(stamp), UTC)
            check_timestamp(sent, now, self.replay_window)
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise TypeError("the body is not a JSON object")
            ticket_id = str(data["ticket_id"]).strip()
            if not _TICKET_ID.match(ticket_id):
                raise ValueError(f"ticket_id {data['ticket_id']!r} is not a Freshdesk ticket id")
            kind = EventKind(str(data["event"]).strip().lower())
            if kind not in (EventKind.CREATED, EventKind.UPDATED):
                raise ValueError(f"event {data['event']!r} is neither created nor updated")
            raw_updated = data.get("updated_at")
            updated = str(raw_updated).strip() if raw_updated is not None else ""
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected("malformed", str(exc)) from None
        at = _maybe_time(updated) if updated else None
        delivery = headers.get("x-ticketwarden-delivery", "").strip()
        if not delivery:
            # what the rule would have sent; with nothing to tell two deliveries apart, none is
            # taken for a replay of another (a duplicate only makes the ticket be read again)
            revision = updated or stamp or uuid.uuid4().hex
            delivery = f"{kind.value}-{ticket_id}-{revision}"
        return [
            WebhookEvent(
                delivery_id=delivery,
                ticket_id=ticket_id,
                kind=kind,
                at=at or sent or now,
            )
        ]

    # --- helpers ----------------------------------------------------------------------------------

    def _checked_id(self, ticket_id: str) -> str:
        if not _TICKET_ID.match(ticket_id):
            raise NotFoundError(self.config.name, f"{ticket_id!r} is not a Freshdesk ticket id")
        return ticket_id

    def _shape(self, message: str, body: Any) -> ProtocolError:
        try:
            excerpt = json.dumps(body, default=str)
        except ValueError:
            excerpt = repr(body)
        return ProtocolError(
            self.config.name, message, excerpt=excerpt, secrets=self.client.secrets()
        )

    def _record(self, body: Any) -> Mapping[str, Any]:
        """A ticket object (Freshdesk answers with the bare object, no envelope)."""
        if not isinstance(body, dict) or body.get("id") is None:
            raise self._shape("the response is not a ticket object", body)
        return body


def _closes(action: BaseAction) -> bool:
    return isinstance(action, Close) or (
        isinstance(action, SetStatus) and action.status == Status.CLOSED
    )


def _check_tags(tags: Iterable[str]) -> None:
    long = sorted(t for t in tags if len(t) > TAG_MAX_LENGTH)
    if long:
        raise _Refused(
            f"Freshdesk tags have at most {TAG_MAX_LENGTH} characters: {', '.join(long)}"
        )


def _body_text(conversation: Mapping[str, Any]) -> str:
    text = conversation.get("body_text")
    if isinstance(text, str):
        return text
    markup = conversation.get("body")
    return html_to_text(markup) if isinstance(markup, str) else ""


def _author_name(conversation: Mapping[str, Any], requester_id: Any, requester: Contact) -> str:
    user = conversation.get("user_id")
    if user is not None and user == requester_id:
        return requester.name or requester.email or str(user)
    sender = conversation.get("from_email")
    if isinstance(sender, str) and sender:
        return sender
    return "" if user is None else str(user)


def _roster(by_org: Mapping[str, Mapping[str, AuthorizedContact]]) -> Roster:
    return Roster(
        entries=tuple(
            RosterEntry(
                organization=org,
                contacts=tuple(contacts[email] for email in sorted(contacts)),
            )
            for org, contacts in sorted(by_org.items())
        )
    )
