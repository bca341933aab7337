"""The Freshdesk emulator: the subset of API v2 the Freshdesk connector uses, in Freshdesk's own
shapes (the response bodies in ``../shared/vendor/freshdesk/`` and Freshdesk's API reference),
numeric codes, limits and behaviour.

Served routes (all under ``/api/v2``)::

    GET    /tickets                    list: updated_since, order_by, order_type, page, per_page,
                                       requester_id, email, company_id, filter, include
    POST   /tickets                    create (follow-ups: custom field cf_follow_up_of)
    GET    /tickets/{id}               one ticket, ?include=conversations,requester,company,stats
    PUT    /tickets/{id}               update (status, priority, tags REPLACE, custom_fields, …)
    DELETE /tickets/{id}               move to trash: 204; then ``deleted: true`` on view, only
                                       in the list with ``filter=deleted``, refused by writes
    GET    /tickets/{id}/conversations replies and notes, page/per_page, Link header
    POST   /tickets/{id}/reply         a public reply
    POST   /tickets/{id}/notes         a note, ``private`` true (default) or false
    GET    /search/tickets?query="…"   the filter API: 30 a page, pages 1–10, ``total``
    GET    /ticket_fields              the account's ticket fields (cf_… names, choices)
    GET    /contacts, /contacts/{id}   contacts (``?email=``, ``?company_id=``), custom_fields
    GET    /companies, /companies/{id} companies, custom_fields
    GET    /agents/me, /agents, /agents/{id}, /groups, /groups/{id}

Behaviour, and where it comes from:

- **Authentication**: HTTP basic with the API key as user name and any password (``X`` by
  convention); anything else is 401 ``{"code": "invalid_credentials", "message": …}``.
- **Rate limit** per minute, counted in API *credits*: a request costs one, and each ``include``
  more (one each on a single ticket, two each on the ticket list, as Freshdesk documents).
  Every authenticated response carries ``X-RateLimit-Total``, ``X-RateLimit-Remaining`` and
  ``X-RateLimit-Used-CurrentRequest``; with no ``rate_limit`` they report a nominal 400 a minute
  and nothing is refused; with one, a request arriving with nothing remaining is a 429 with
  ``Retry-After`` (seconds to the end of the minute).
- **Errors**: 400 ``{"description": "Validation failed", "errors": [{"field", "message",
  "code"}]}`` with Freshdesk's codes (``invalid_value``, ``invalid_field``, ``missing_field``,
  ``datatype_mismatch``); 404 ``{"code": "not_found", "message": …}``; malformed JSON 400
  ``{"code": "invalid_json"}``; a body without ``Content-Type: application/json`` 415. (The
  exact wording of the 404 and 429 bodies is not documented; clients should read the status.)
- **Paging**: ``per_page`` 1–100 (default 30), a ``Link: <…>; rel="next"`` header while more
  exist. The ticket list refuses pages above 300 (400, field ``page``, "You cannot access
  tickets beyond the 300th page. Please provide a smaller page number.") even though page 300
  still links to it — a long backlog needs its ``updated_since`` window moved forward. Without
  ``updated_since`` the list only holds tickets created in the last 30 days. ``updated_since``
  is inclusive; tickets sharing an ``updated_at`` are ordered by id.
- **Filter API** (``/search/tickets``): the query must be wrapped in double quotes, at most 512
  characters; terms ``field:value``, ``field:>value`` (≥), ``field:<value`` (≤), joined by
  ``AND``/``OR`` and parentheses. Strings are single-quoted and have no escape: a quote ends
  the string, a double quote inside the query is refused (400). Dates are ``'yyyy-mm-dd'``
  and stand for the whole UTC day (no times). Fields: ``status``, ``priority``, ``group_id``,
  ``agent_id``, ``requester_id``, ``type``, ``tag``, ``created_at``, ``updated_at``,
  ``due_by``, ``fr_due_by`` and the account's ``cf_…`` fields; ``null`` matches unset. 30
  results a page, pages 1–10 (page 11 is a 400), ``total`` counts every match.
- **Tickets**: ``status`` 2 open, 3 pending, 4 resolved, 5 closed and the custom statuses of
  :mod:`fixtures` (6); ``priority`` 1–4; ``source`` codes; every custom field of the account
  appears in ``custom_fields`` (``null`` when unset), a ``cf_`` key the account does not have is
  refused (``invalid_field``), a drop-down value must be one of its choices. ``tags`` in an
  update *replaces* the whole list, so a client must read, merge and write — and an agent's
  change in between (:meth:`FreshdeskEmulator.agent_update`) is lost if it does not re-read:
  Freshdesk offers no conditional update. Tags are at most 32 characters.
- **Closed tickets** are not locked: Freshdesk lets agents (and the API) edit, reply to, note
  and reopen them. What it refuses is resolving or closing while a field marked "required when
  closing" is empty (``required_for_closure``; none by default). A requester's reply reopens a
  pending, resolved or closed ticket (Freshdesk's default automation "reopen tickets when the
  customer responds"; ``reopen_on_reply`` sets which statuses).
- **Follow-ups**: Freshdesk has no follow-up link; the account has a number field
  ``cf_follow_up_of`` (:data:`fixtures.FOLLOW_UP_FIELD`) a follow-up ticket carries.
- **Webhooks**: Freshdesk's automation rules call a URL with the body and headers an admin
  types in and sign nothing; ticketwarden's setup sends the JSON body ``{"ticket_id",
  "event", "updated_at", "status"}`` with ``X-Ticketwarden-Delivery`` built from placeholders,
  and either an HMAC ``X-Ticketwarden-Signature: sha256=<hex HMAC-SHA256(secret, timestamp +
  "." + body)>`` with ``X-Ticketwarden-Timestamp`` (which Freshdesk itself cannot compute) or
  the static ``X-Ticketwarden-Secret``. :meth:`FreshdeskEmulator.make_webhook` produces
  both forms; :meth:`~FreshdeskEmulator.subscribe` and :meth:`~FreshdeskEmulator.deliver_webhooks`
  fire a rule for every ticket creation and update.

The recorded list and search bodies (``all_tickets.json``, ``search_tickets.json``) and
``contact.json`` are in the API v1 era's shape (``custom_field``, ``frDueBy``, ``status_name``,
``customer_id``, …); list and search results and contacts carry those keys too, next to the v2
keys the API reference documents, so a client written against either reads them.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode

import httpx
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from ticketwarden.core.connector import hmac_sha256
from ticketwarden.core.model import AuthorRole, EventKind, Priority, Status, Ticket
from ticketwarden.plugins.freshdesk import fixtures
from ticketwarden.testing.emulator import Clock, Emulator, LoggedRequest, iso

# --- Freshdesk's constants ------------------------------------------------------------------------

NOMINAL_RATE_LIMIT = 400
"""Credits a minute the headers report when the emulator enforces no limit (Pro plan)."""
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
LIST_PAGE_LIMIT = 300
"""The ticket list refuses higher page numbers."""
LIST_DEFAULT_WINDOW = timedelta(days=30)
"""Without ``updated_since`` the list holds only tickets created this recently."""
SEARCH_PAGE_SIZE = 30
SEARCH_PAGE_LIMIT = 10
SEARCH_QUERY_MAX = 512
INCLUDED_CONVERSATIONS = 10
"""``include=conversations`` embeds only the first ten conversations."""
TAG_MAX_LENGTH = 32
CREATED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""When the emulated account's agents, groups and fields were created."""

OPEN, PENDING, RESOLVED, CLOSED = 2, 3, 4, 5
STATUS_NAMES: dict[int, str] = {
    OPEN: "Open",
    PENDING: "Pending",
    RESOLVED: "Resolved",
    CLOSED: "Closed",
    **fixtures.CUSTOM_STATUSES,
}
REQUESTER_STATUS_NAMES: dict[int, str] = {
    OPEN: "Being Processed",
    PENDING: "Awaiting your Reply",
    RESOLVED: "This ticket has been Resolved",
    CLOSED: "This ticket has been Closed",
}
PRIORITY_NAMES = {1: "Low", 2: "Medium", 3: "High", 4: "Urgent"}
SOURCE_NAMES = {
    1: "Email",
    2: "Portal",
    3: "Phone",
    7: "Chat",
    9: "Feedback Widget",
    10: "Outbound Email",
}
SLA_HOURS = {4: (1, 4), 3: (4, 24), 2: (8, 48), 1: (24, 120)}
"""Priority → (first response, resolution) hours of the default SLA policy."""

FRESHDESK_STATUS: dict[Status, int] = {
    Status.NEW: OPEN,  # Freshdesk has no "new": a new ticket is open
    Status.OPEN: OPEN,
    Status.WAITING_ON_CUSTOMER: PENDING,
    Status.ON_HOLD: next(
        code for code, meaning in fixtures.CUSTOM_STATUS_MEANING.items() if meaning == "on_hold"
    ),
    Status.RESOLVED: RESOLVED,
    Status.CLOSED: CLOSED,
}
FRESHDESK_PRIORITY: dict[Priority, int] = {
    Priority(name): code for name, code in fixtures.PRIORITIES.items()
}

# conversation sources (the recorded reply is 0, the note 2)
REPLY_SOURCE, NOTE_SOURCE = 0, 2

UPDATABLE = frozenset(
    {
        "name",
        "requester_id",
        "email",
        "phone",
        "subject",
        "type",
        "status",
        "priority",
        "description",
        "responder_id",
        "tags",
        "custom_fields",
        "due_by",
        "fr_due_by",
        "group_id",
        "product_id",
        "source",
        "company_id",
    }
)
CREATABLE = UPDATABLE | {"cc_emails", "email_config_id", "unique_external_id"}
VIEW_INCLUDES = ("conversations", "requester", "company", "stats")
LIST_INCLUDES = ("stats", "requester", "description")
ORDER_BY = ("created_at", "due_by", "updated_at", "status")


class FreshdeskError(Exception):
    """An API error with Freshdesk's status and body (raised by the hooks, answered by routes)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def _validation(*errors: tuple[str, str, str]) -> FreshdeskError:
    """400 "Validation failed" with ``(field, message, code)`` errors."""
    return FreshdeskError(
        400,
        {
            "description": "Validation failed",
            "errors": [{"field": f, "message": m, "code": c} for f, m, c in errors],
        },
    )


def _not_found() -> FreshdeskError:
    return FreshdeskError(
        404, {"code": "not_found", "message": "The requested resource could not be found"}
    )


def _choices(values: Iterable[object]) -> str:
    return "It should be one of these values: '" + ",".join(str(v) for v in values) + "'"


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if value is None:
        return "Null"
    return "key/value pair"


def _mismatch(name: str, value: object, wanted: str) -> FreshdeskError:
    return _validation(
        (
            name,
            f"Value set is of type {_type_name(value)}.It should be a/an {wanted}",
            "datatype_mismatch",
        )
    )


# --- bodies: text ↔ HTML --------------------------------------------------------------------------


def text_to_html(text: str) -> str:
    """How Freshdesk stores a plain-text description: escaped, lines as ``<br>``, in a div."""
    return "<div>" + html.escape(text, quote=False).replace("\n", "<br>") + "</div>"


_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_BLOCK_GAP = re.compile(r"</(?:p|div)>\s*<(?:p|div)(?:\s[^>]*)?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def html_to_text(body: str) -> str:
    """``body_text`` from an HTML ``body``: ``<br>`` and block boundaries become line breaks,
    other tags go, entities are decoded (so :func:`text_to_html` round-trips exactly)."""
    text = _BREAK.sub("\n", body)
    text = _BLOCK_GAP.sub("\n", text)
    return html.unescape(_TAG.sub("", text))


# --- state ----------------------------------------------------------------------------------------


FieldType = Literal[
    "custom_dropdown",
    "custom_text",
    "custom_paragraph",
    "custom_number",
    "custom_checkbox",
    "custom_date",
]


@dataclass(frozen=True)
class CustomField:
    """A custom ticket field of the account."""

    name: str
    label: str
    type: FieldType
    choices: tuple[str, ...] = ()
    id: int = 0


@dataclass
class Conversation:
    """A reply or note; :meth:`FreshdeskEmulator.conversation_json` renders Freshdesk's shape."""

    id: int
    ticket_id: int
    body: str
    body_text: str
    incoming: bool
    private: bool
    user_id: int
    source: int
    created_at: datetime
    from_email: str | None = None
    to_emails: list[str] = field(default_factory=list)
    support_email: str | None = None


@dataclass
class FreshdeskTicket:
    """One ticket's state; :meth:`FreshdeskEmulator.ticket_json` renders Freshdesk's shape."""

    id: int
    subject: str
    description: str
    description_text: str
    status: int
    priority: int
    source: int
    requester_id: int
    company_id: int | None
    created_at: datetime
    updated_at: datetime
    responder_id: int | None = None
    group_id: int | None = None
    type: str | None = "Question"
    tags: list[str] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)
    conversations: list[Conversation] = field(default_factory=list)
    deleted: bool = False
    spam: bool = False
    due_by: datetime | None = None
    fr_due_by: datetime | None = None
    # stats
    agent_responded_at: datetime | None = None
    requester_responded_at: datetime | None = None
    first_responded_at: datetime | None = None
    status_updated_at: datetime | None = None
    reopened_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    pending_since: datetime | None = None


@dataclass
class Subscription:
    """An automation rule ("ticket is created" and "ticket is updated") triggering a webhook.
    ``static_secret``: the rule sends ``X-Ticketwarden-Secret`` instead of an HMAC."""

    url: str
    secret: str
    static_secret: bool = False


def _parse_time(value: str) -> datetime | None:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _stamp(at: datetime | None) -> str | None:
    return iso(at) if at is not None else None


# --- the filter API's query language --------------------------------------------------------------

QueryOp = Literal[":", ":>", ":<"]


@dataclass(frozen=True)
class Condition:
    """One ``field OP value`` term; ``value`` is an int, a str (quoted), a bool or None (null)."""

    field: str
    op: QueryOp
    value: int | str | bool | None


@dataclass(frozen=True)
class Junction:
    """``AND`` or ``OR`` of sub-expressions."""

    kind: Literal["AND", "OR"]
    parts: tuple[Query, ...]


Query = Condition | Junction

_TOKEN = re.compile(
    r"""
    \s*(?:
        (?P<open>\()
      | (?P<close>\))
      | (?P<junction>AND|OR)(?![A-Za-z0-9_])
      | (?P<field>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>:[<>]?)\s*
        (?:(?P<string>'[^']*')|(?P<bad_string>'[^']*$)|(?P<word>[^\s()']+))
    )
    """,
    re.VERBOSE,
)


def _invalid_query(message: str = "Given query is invalid") -> FreshdeskError:
    return _validation(("query", message, "invalid_value"))


def parse_query(raw: str) -> Query:
    """Parse the filter API's ``query`` parameter, outer double quotes included.

    Strings are single-quoted with no escape: a quote always ends one, so ``tag:'a OR
    status:2'`` is one literal tag, and a double quote anywhere inside is a syntax error."""
    if len(raw) > SEARCH_QUERY_MAX:
        raise _validation(
            (
                "query",
                f"Has {len(raw)} characters, it can have maximum of {SEARCH_QUERY_MAX} characters",
                "invalid_value",
            )
        )
    if len(raw) < 2 or not (raw.startswith('"') and raw.endswith('"')):
        raise _invalid_query("Query should be enclosed in double quotes")
    inner = raw[1:-1]
    if '"' in inner:
        raise _invalid_query()
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(inner):
        if inner[position:].strip() == "":
            break
        match = _TOKEN.match(inner, position)
        if match is None or match.end() == position or match.group("bad_string"):
            raise _invalid_query()
        position = match.end()
        if match.group("open"):
            tokens.append(("(", None))
        elif match.group("close"):
            tokens.append((")", None))
        elif match.group("junction"):
            tokens.append((match.group("junction"), None))
        else:
            op: QueryOp = match.group("op")  # type: ignore[assignment]
            value: int | str | bool | None
            if match.group("string") is not None:
                value = match.group("string")[1:-1]
            else:
                word = match.group("word")
                if word == "null":
                    value = None
                elif word in ("true", "false"):
                    value = word == "true"
                elif re.fullmatch(r"-?\d+", word):
                    value = int(word)
                else:
                    raise _invalid_query()
            tokens.append(("term", Condition(match.group("field"), op, value)))
    if not tokens:
        raise _invalid_query()
    parsed, end = _parse_or(tokens, 0)
    if end != len(tokens):
        raise _invalid_query()
    return parsed


def _parse_or(tokens: list[tuple[str, Any]], at: int) -> tuple[Query, int]:
    parts = []
    part, at = _parse_and(tokens, at)
    parts.append(part)
    while at < len(tokens) and tokens[at][0] == "OR":
        part, at = _parse_and(tokens, at + 1)
        parts.append(part)
    return (parts[0] if len(parts) == 1 else Junction("OR", tuple(parts))), at


def _parse_and(tokens: list[tuple[str, Any]], at: int) -> tuple[Query, int]:
    parts = []
    part, at = _parse_atom(tokens, at)
    parts.append(part)
    while at < len(tokens) and tokens[at][0] == "AND":
        part, at = _parse_atom(tokens, at + 1)
        parts.append(part)
    return (parts[0] if len(parts) == 1 else Junction("AND", tuple(parts))), at


def _parse_atom(tokens: list[tuple[str, Any]], at: int) -> tuple[Query, int]:
    if at >= len(tokens):
        raise _invalid_query()
    kind, value = tokens[at]
    if kind == "term":
        assert isinstance(value, Condition)
        return value, at + 1
    if kind == "(":
        inner, at = _parse_or(tokens, at + 1)
        if at >= len(tokens) or tokens[at][0] != ")":
            raise _invalid_query()
        return inner, at + 1
    raise _invalid_query()


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day_bounds(condition: Condition) -> tuple[datetime, datetime]:
    value = condition.value
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise _validation(
            (
                condition.field,
                "It should be a valid date in the 'yyyy-mm-dd' format",
                "invalid_value",
            )
        )
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _validation(
            (
                condition.field,
                "It should be a valid date in the 'yyyy-mm-dd' format",
                "invalid_value",
            )
        ) from None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _date_matches(condition: Condition, moment: datetime | None) -> bool:
    if condition.value is None:
        return moment is None and condition.op == ":"
    start, end = _day_bounds(condition)
    if moment is None:
        return False
    if condition.op == ":>":
        return moment >= start
    if condition.op == ":<":
        return moment < end
    return start <= moment < end


def _number_matches(condition: Condition, actual: int | None) -> bool:
    wanted = condition.value
    if wanted is None:
        return actual is None and condition.op == ":"
    if isinstance(wanted, bool) or not isinstance(wanted, int):
        raise _mismatch(condition.field, wanted, "Integer")
    if actual is None:
        return False
    if condition.op == ":>":
        return actual >= wanted
    if condition.op == ":<":
        return actual <= wanted
    return actual == wanted


def _string_matches(condition: Condition, actual: Iterable[str | None]) -> bool:
    wanted = condition.value
    values = list(actual)
    if wanted is None:
        return condition.op == ":" and all(v is None for v in values)
    if condition.op != ":":
        raise _validation((condition.field, "It should be a/an Integer", "invalid_value"))
    if not isinstance(wanted, str):
        raise _mismatch(condition.field, wanted, "String")
    return any(v is not None and v.lower() == wanted.lower() for v in values)


# --- the emulator ---------------------------------------------------------------------------------


class FreshdeskEmulator(Emulator):
    """Freshdesk API v2 with the account set up in :mod:`fixtures`."""

    name = "freshdesk"
    page_size = 30

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rate_limit: int | None = None,
        seed: int = 0,
        base_url: str = fixtures.BASE_URL,
        required_for_closure: Iterable[str] = (),
        reopen_on_reply: Iterable[int] = (PENDING, RESOLVED, CLOSED),
    ) -> None:
        """``required_for_closure``: custom fields that must hold a value before a ticket is
        resolved or closed (Freshdesk's "required when closing the ticket" property).
        ``reopen_on_reply``: statuses a requester's reply reopens (the default automation)."""
        self.tickets: dict[int, FreshdeskTicket] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.companies: dict[int, dict[str, Any]] = {}
        self.agents: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.fields: dict[str, CustomField] = {}
        self.required_for_closure = tuple(required_for_closure)
        self.reopen_on_reply = frozenset(reopen_on_reply)
        self.subscriptions: list[Subscription] = []
        self.outbox: list[tuple[Subscription, str, EventKind]] = []
        self._next_ticket = 0
        self._next_id = 43000300000
        self._cost = 1
        self._credits: tuple[int, int] = (-1, 0)
        self._contacts_by_key: dict[str, int] = {}
        self._companies_by_key: dict[str, int] = {}
        super().__init__(clock=clock, rate_limit=rate_limit, seed=seed, base_url=base_url)
        self._setup_account()

    def _setup_account(self) -> None:
        severity = tuple(fixtures.SEVERITY_VALUES)
        labels: dict[str, tuple[str, FieldType, tuple[str, ...]]] = {
            "severity": ("Severity", "custom_dropdown", severity),
            "server_url": ("Server URL", "custom_text", ()),
            "module": ("Module", "custom_text", ()),
            "steps": ("Steps to reproduce", "custom_paragraph", ()),
            "sample_machines": ("Sample machines", "custom_paragraph", ()),
            "version": ("Version", "custom_text", ()),
            "sev1_contact": ("Severity 1 contact", "custom_text", ()),
            "resolution_reason": ("Resolution reason", "custom_text", ()),
        }
        for number, (canonical, name) in enumerate(fixtures.TICKET_FIELDS.items(), start=1):
            label, kind, choices = labels[canonical]
            self.fields[name] = CustomField(
                name,
                label,
                kind,
                choices,
                43000400000 + number,
            )
        self.fields[fixtures.FOLLOW_UP_FIELD] = CustomField(
            fixtures.FOLLOW_UP_FIELD, "Follow-up of", "custom_number", (), 43000400099
        )
        self._add_agent(fixtures.AGENT_ID, "ticketwarden", fixtures.AGENT_EMAIL)
        for target, group_id in fixtures.GROUPS.items():
            self._add_group(group_id, target)
        for target, agent_id in fixtures.AGENTS.items():
            self._add_agent(agent_id, f"{target} lead", f"{target}@example.com")
            group = self.groups[fixtures.GROUPS[target]]
            group["agent_ids"] = [agent_id]
            group["escalate_to"] = agent_id
            self.agents[agent_id]["group_ids"] = [fixtures.GROUPS[target]]

    # --- routing --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        v2 = "/api/v2"
        tid = "{ticket_id:int}"
        return [
            Route(f"{v2}/tickets", self.list_tickets, methods=["GET"]),
            Route(f"{v2}/tickets", self.create_ticket, methods=["POST"]),
            Route(f"{v2}/tickets/{tid}", self.show_ticket, methods=["GET"]),
            Route(f"{v2}/tickets/{tid}", self.update_ticket, methods=["PUT"]),
            Route(f"{v2}/tickets/{tid}", self.destroy_ticket, methods=["DELETE"]),
            Route(f"{v2}/tickets/{tid}/conversations", self.list_conversations, methods=["GET"]),
            Route(f"{v2}/tickets/{tid}/reply", self.create_reply, methods=["POST"]),
            Route(f"{v2}/tickets/{tid}/notes", self.create_note, methods=["POST"]),
            Route(f"{v2}/search/tickets", self.search_tickets, methods=["GET"]),
            Route(f"{v2}/ticket_fields", self.list_ticket_fields, methods=["GET"]),
            Route(f"{v2}/contacts", self.list_contacts, methods=["GET"]),
            Route(f"{v2}/contacts/{{contact_id:int}}", self.show_contact, methods=["GET"]),
            Route(f"{v2}/companies", self.list_companies, methods=["GET"]),
            Route(f"{v2}/companies/{{company_id:int}}", self.show_company, methods=["GET"]),
            Route(f"{v2}/agents/me", self.show_me, methods=["GET"]),
            Route(f"{v2}/agents", self.list_agents, methods=["GET"]),
            Route(f"{v2}/agents/{{agent_id:int}}", self.show_agent, methods=["GET"]),
            Route(f"{v2}/groups", self.list_groups, methods=["GET"]),
            Route(f"{v2}/groups/{{group_id:int}}", self.show_group, methods=["GET"]),
            Route(
                "/{path:path}",
                self.no_such_endpoint,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            ),
        ]

    # --- the vendor hooks of the base -----------------------------------------------------------

    def authenticate(self, request: Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials.strip().encode(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        user, _, _password = decoded.partition(":")
        return user == fixtures.API_KEY

    def rate_limit_headers(self, limit: int, remaining: int, reset: int) -> dict[str, str]:
        return {
            "x-ratelimit-total": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-used-currentrequest": str(self._cost),
        }

    def error_body(self, status: int, message: str) -> Any:
        if status == 401:
            return {
                "code": "invalid_credentials",
                "message": "You have to be logged in to perform this action.",
            }
        if status == 429:
            return {"message": "You have exceeded the limit of requests per minute"}
        if status == 404:
            return _not_found().body
        return {"code": "internal_error" if status >= 500 else "error", "message": message}

    async def _respond(self, scope: Scope, body: bytes, entry: LoggedRequest) -> Response:
        self._cost = self.credits(entry.method, entry.path, entry.query)
        return await super()._respond(scope, body, entry)

    def credits(self, method: str, path: str, query: str) -> int:
        """What a request costs: one, plus each ``include`` (two each on the ticket list)."""
        values = parse_qs(query).get("include", [])
        includes = [i for value in values for i in value.split(",") if i.strip()]
        if method != "GET" or not includes:
            return 1
        if re.fullmatch(r"/api/v2/tickets/\d+", path):
            return 1 + len(includes)
        if path == "/api/v2/tickets":
            return 1 + 2 * len(includes)
        return 1

    def _rate_headers(self) -> tuple[dict[str, str], bool]:
        limit = self.rate_limit if self.rate_limit is not None else NOMINAL_RATE_LIMIT
        now = self.clock.monotonic()
        window = int(now // 60)
        start, used = self._credits
        if start != window:
            start, used = window, 0
        reset = max(1, int((window + 1) * 60 - now + 0.999))
        over = self.rate_limit is not None and used >= limit
        if not over:
            used += self._cost
        self._credits = (start, used)
        headers = self.rate_limit_headers(limit, max(limit - used, 0), reset)
        if over:
            headers["retry-after"] = str(reset)
        return headers, over

    # --- time and ids ---------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _touch(self, ticket: FreshdeskTicket) -> None:
        ticket.updated_at = max(self.now(), ticket.updated_at)

    def _url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base_url}/api/v2/{path}{query}"

    # --- contacts, companies, agents, groups ----------------------------------------------------

    def add_company(
        self,
        name: str,
        *,
        domains: Iterable[str] = (),
        support_tier: str | None = None,
        authorized_contacts: Iterable[str] = (),
        description: str | None = None,
        health_score: str | None = None,
        account_tier: str | None = None,
        renewal_date: date | None = None,
        industry: str | None = None,
    ) -> int:
        """Add (or update) a company with the roster company fields (and the default company
        fields, unset unless given); returns its id."""
        fields = {
            fixtures.COMPANY_FIELDS["support_tier"]: support_tier,
            fixtures.COMPANY_FIELDS["authorized_contacts"]: "\n".join(authorized_contacts) or None,
        }
        existing = self._companies_by_key.get(name.lower())
        if existing is not None:
            record = self.companies[existing]
            record["custom_fields"].update({k: v for k, v in fields.items() if v is not None})
            return existing
        company_id = self._new_id()
        stamp = iso(self.now())
        self.companies[company_id] = {
            "id": company_id,
            "name": name,
            "description": description,
            "domains": list(domains),
            "note": None,
            "custom_fields": fields,
            "created_at": stamp,
            "updated_at": stamp,
            "health_score": health_score,
            "account_tier": account_tier,
            "renewal_date": (
                iso(datetime(renewal_date.year, renewal_date.month, renewal_date.day, tzinfo=UTC))
                if renewal_date
                else None
            ),
            "industry": industry,
        }
        self._companies_by_key[name.lower()] = company_id
        return company_id

    def add_contact(
        self,
        email: str,
        name: str = "",
        *,
        company: str | int | None = None,
        phone: str = "",
        unique_external_id: str | None = None,
        authorized: bool = False,
        certified_until: date | None = None,
        available_24x7: bool = False,
    ) -> int:
        """Add (or update) a contact with the roster contact fields; ``company`` is an id or a
        company's name (created when new). Returns the contact id."""
        company_id = self._company_id(company) if company is not None else None
        fields = {
            fixtures.CONTACT_FIELDS["authorized"]: authorized,
            fixtures.CONTACT_FIELDS["certified_until"]: (
                certified_until.isoformat() if certified_until else None
            ),
            fixtures.CONTACT_FIELDS["available_24x7"]: available_24x7,
        }
        existing = self._contacts_by_key.get(email.lower())
        if existing is not None:
            record = self.contacts[existing]
            record["custom_fields"].update(fields)
            record["name"] = name or record["name"]
            record["phone"] = phone or record["phone"]
            if company_id is not None:
                record["company_id"] = record["customer_id"] = company_id
            record["updated_at"] = iso(self.now())
            return existing
        contact_id = self._new_id()
        stamp = iso(self.now())
        self.contacts[contact_id] = {
            "active": True,
            "address": None,
            "company_id": company_id,
            "description": None,
            "email": email,
            "id": contact_id,
            "job_title": None,
            "language": "en",
            "mobile": None,
            "name": name or email.split("@")[0],
            "phone": phone or None,
            "time_zone": "Berlin",
            "twitter_id": None,
            "facebook_id": None,
            "unique_external_id": unique_external_id,
            "other_emails": [],
            "other_companies": [],
            "view_all_tickets": False,
            "tags": [],
            "avatar": None,
            "deleted": False,
            "custom_fields": fields,
            "created_at": stamp,
            "updated_at": stamp,
            # the recorded contact.json's (API v1 era) keys
            "customer_id": company_id,
            "external_id": unique_external_id,
            "fb_profile_id": None,
            "helpdesk_agent": False,
            "custom_field": {},
        }
        self._contacts_by_key[email.lower()] = contact_id
        if unique_external_id:
            self._contacts_by_key[f"external:{unique_external_id}"] = contact_id
        return contact_id

    def set_contact_fields(self, contact_id: int, **values: Any) -> None:
        """Set contact custom field values by name (``tw_authorized_contact=True``, …)."""
        self.contacts[contact_id]["custom_fields"].update(values)
        self.contacts[contact_id]["updated_at"] = iso(self.now())

    def _company_id(self, company: str | int) -> int:
        if isinstance(company, int):
            return company
        return self._companies_by_key.get(company.lower()) or self.add_company(company)

    def _add_agent(self, agent_id: int, name: str, email: str) -> None:
        stamp = iso(CREATED_AT)
        self.agents[agent_id] = {
            "available": True,
            "occasional": False,
            "signature": None,
            "id": agent_id,
            "ticket_scope": 1,
            "group_ids": [],
            "created_at": stamp,
            "updated_at": stamp,
            "available_since": None,
            "type": "support_agent",
            "contact": {
                "active": True,
                "email": email,
                "job_title": None,
                "language": "en",
                "last_login_at": stamp,
                "mobile": None,
                "name": name,
                "phone": None,
                "time_zone": "Berlin",
                "created_at": stamp,
                "updated_at": stamp,
            },
        }

    def _add_group(self, group_id: int, name: str) -> None:
        stamp = iso(CREATED_AT)
        self.groups[group_id] = {
            "id": group_id,
            "name": name,
            "description": f"Escalation target {name}",
            "business_hour_id": None,
            "escalate_to": None,
            "unassigned_for": "30m",
            "auto_ticket_assign": False,
            "agent_ids": [],
            "created_at": stamp,
            "updated_at": stamp,
        }

    def _group_id(self, group: str) -> int:
        if group in fixtures.GROUPS:
            return fixtures.GROUPS[group]
        if group.isdigit():
            return int(group)
        for group_id, record in self.groups.items():
            if record["name"] == group:
                return group_id
        group_id = self._new_id()
        self._add_group(group_id, group)
        return group_id

    def _agent_id(self, assignee: str) -> int:
        if assignee in fixtures.AGENTS:
            return fixtures.AGENTS[assignee]
        if assignee.isdigit():
            return int(assignee)
        for agent_id, record in self.agents.items():
            if assignee in (record["contact"]["name"], record["contact"]["email"]):
                return agent_id
        agent_id = self._new_id()
        email = assignee if "@" in assignee else f"{assignee.lower()}@agents.example"
        self._add_agent(agent_id, assignee, email)
        return agent_id

    def _person_email(self, person_id: int | None) -> str | None:
        if person_id is None:
            return None
        if person_id in self.contacts:
            return str(self.contacts[person_id]["email"])
        if person_id in self.agents:
            return str(self.agents[person_id]["contact"]["email"])
        return None

    def _person_name(self, person_id: int | None) -> str | None:
        if person_id is None:
            return None
        if person_id in self.contacts:
            return str(self.contacts[person_id]["name"])
        if person_id in self.agents:
            return str(self.agents[person_id]["contact"]["name"])
        return None

    # --- rendering ------------------------------------------------------------------------------

    def custom_fields_json(self, ticket: FreshdeskTicket) -> dict[str, Any]:
        """Every custom field of the account with the ticket's value (``null`` when unset)."""
        return {name: ticket.custom.get(name) for name in self.fields}

    def ticket_json(
        self,
        ticket: FreshdeskTicket,
        *,
        view: bool = True,
        description: bool = True,
        legacy: bool = False,
    ) -> dict[str, Any]:
        """The ticket as Freshdesk returns it: ``view`` adds what only the single-ticket
        endpoints carry (attachments, …); ``description`` the description (the list needs
        ``include=description``); ``legacy`` the keys of the recorded list and search bodies."""
        support = f"support@{fixtures.DOMAIN}"
        body: dict[str, Any] = {
            "cc_emails": [],
            "fwd_emails": [],
            "reply_cc_emails": [],
            "ticket_cc_emails": [],
            "ticket_bcc_emails": [],
            "fr_escalated": False,
            "spam": ticket.spam,
            "email_config_id": None,
            "group_id": ticket.group_id,
            "priority": ticket.priority,
            "requester_id": ticket.requester_id,
            "responder_id": ticket.responder_id,
            "source": ticket.source,
            "company_id": ticket.company_id,
            "status": ticket.status,
            "subject": ticket.subject,
            "association_type": None,
            "support_email": support if ticket.source == 1 else None,
            "to_emails": None,
            "product_id": None,
            "id": ticket.id,
            "type": ticket.type,
            "due_by": _stamp(ticket.due_by),
            "fr_due_by": _stamp(ticket.fr_due_by),
            "is_escalated": False,
            "custom_fields": self.custom_fields_json(ticket),
            "created_at": iso(ticket.created_at),
            "updated_at": iso(ticket.updated_at),
            "associated_tickets_count": None,
            "tags": list(ticket.tags),
        }
        if ticket.deleted:
            body["deleted"] = True
        if description:
            body["description"] = ticket.description
            body["description_text"] = ticket.description_text
        if view:
            body["priority_name"] = PRIORITY_NAMES[ticket.priority]
            body["attachments"] = []
            body["source_additional_info"] = None
            body["structured_description"] = None
        if legacy:
            body.update(
                {
                    "cc_email": {"cc_emails": [], "fwd_emails": [], "reply_cc": []},
                    "deleted": ticket.deleted,
                    "delta": True,
                    "frDueBy": _stamp(ticket.fr_due_by),
                    "isescalated": False,
                    "owner_id": ticket.company_id,
                    "ticket_type": ticket.type,
                    "to_email": None,
                    "trained": False,
                    "urgent": ticket.priority == 4,
                    "status_name": STATUS_NAMES[ticket.status],
                    "requester_status_name": REQUESTER_STATUS_NAMES.get(
                        ticket.status, "Being Processed"
                    ),
                    "priority_name": PRIORITY_NAMES[ticket.priority],
                    "source_name": SOURCE_NAMES.get(ticket.source, "Portal"),
                    "requester_name": self._person_name(ticket.requester_id),
                    "responder_name": self._person_name(ticket.responder_id),
                    "custom_field": {},
                }
            )
            if description:
                body["description_html"] = ticket.description
        return body

    def stats_json(self, ticket: FreshdeskTicket) -> dict[str, Any]:
        return {
            "agent_responded_at": _stamp(ticket.agent_responded_at),
            "requester_responded_at": _stamp(ticket.requester_responded_at),
            "first_responded_at": _stamp(ticket.first_responded_at),
            "status_updated_at": _stamp(ticket.status_updated_at),
            "reopened_at": _stamp(ticket.reopened_at),
            "resolved_at": _stamp(ticket.resolved_at),
            "closed_at": _stamp(ticket.closed_at),
            "pending_since": _stamp(ticket.pending_since),
        }

    def requester_json(self, contact_id: int) -> dict[str, Any]:
        contact = self.contacts.get(contact_id, {})
        return {
            "id": contact_id,
            "name": contact.get("name"),
            "email": contact.get("email"),
            "mobile": contact.get("mobile"),
            "phone": contact.get("phone"),
        }

    def conversation_json(self, conversation: Conversation) -> dict[str, Any]:
        stamp = iso(conversation.created_at)
        return {
            "body": conversation.body,
            "body_text": conversation.body_text,
            "id": conversation.id,
            "incoming": conversation.incoming,
            "private": conversation.private,
            "user_id": conversation.user_id,
            "support_email": conversation.support_email,
            "source": conversation.source,
            "category": 2 if conversation.source == NOTE_SOURCE else 1,
            "ticket_id": conversation.ticket_id,
            "to_emails": list(conversation.to_emails),
            "from_email": conversation.from_email,
            "cc_emails": [],
            "bcc_emails": None,
            "created_at": stamp,
            "updated_at": stamp,
            "last_edited_at": None,
            "last_edited_user_id": None,
            "attachments": [],
            "auto_response": False,
            "source_additional_info": None,
        }

    # --- the conformance hooks ------------------------------------------------------------------

    def add_ticket(self, ticket: Ticket) -> str:
        """Store a normalized ticket as Freshdesk would hold it; creates its requester contact
        (with the roster contact fields) and company when new."""
        company_id = None
        if ticket.organization is not None:
            company_id = self._company_id(ticket.organization.name or ticket.organization.id)
        contact = ticket.requester
        requester_id = self._contacts_by_key.get((contact.email or "").lower()) or (
            self._contacts_by_key.get(f"external:{contact.id}")
        )
        if requester_id is None:
            requester_id = self.add_contact(
                contact.email or f"{contact.id}@customers.example",
                contact.name,
                company=company_id,
                phone=contact.phone,
                unique_external_id=contact.id,
            )
        elif company_id is not None and self.contacts[requester_id]["company_id"] is None:
            self.contacts[requester_id]["company_id"] = company_id
            self.contacts[requester_id]["customer_id"] = company_id
        custom: dict[str, Any] = {}
        for name, value in ticket.fields.items():
            if name in fixtures.TICKET_FIELDS:
                custom[fixtures.TICKET_FIELDS[name]] = value
        if ticket.severity is not None:
            label = next(k for k, v in fixtures.SEVERITY_VALUES.items() if v == ticket.severity)
            custom[fixtures.TICKET_FIELDS["severity"]] = label
        if ticket.resolution_reason:
            custom[fixtures.TICKET_FIELDS["resolution_reason"]] = ticket.resolution_reason
        if ticket.follow_up_of and ticket.follow_up_of.isdigit():
            custom[fixtures.FOLLOW_UP_FIELD] = int(ticket.follow_up_of)
        created = ticket.created_at.astimezone(UTC).replace(microsecond=0)
        updated = ticket.updated_at.astimezone(UTC).replace(microsecond=0)
        priority = FRESHDESK_PRIORITY[ticket.priority] if ticket.priority else 1
        self._next_ticket += 1
        record = FreshdeskTicket(
            id=self._next_ticket,
            subject=ticket.subject,
            description=text_to_html(ticket.description),
            description_text=ticket.description,
            status=FRESHDESK_STATUS[ticket.status],
            priority=priority,
            source=fixtures.SOURCES["portal"],
            requester_id=requester_id,
            company_id=company_id,
            created_at=created,
            updated_at=updated,
            responder_id=self._agent_id(ticket.assignee) if ticket.assignee else None,
            group_id=self._group_id(ticket.group) if ticket.group else None,
            tags=sorted(ticket.tags),
            custom=custom,
        )
        self._set_due_dates(record)
        record.status_updated_at = updated
        if record.status == PENDING:
            record.pending_since = updated
        if record.status in (RESOLVED, CLOSED):
            record.resolved_at = (
                ticket.resolved_at.astimezone(UTC).replace(microsecond=0)
                if ticket.resolved_at
                else updated
            )
        if record.status == CLOSED:
            record.closed_at = updated
        self.tickets[record.id] = record
        for comment in ticket.comments:
            at = comment.created_at.astimezone(UTC).replace(microsecond=0)
            if comment.author_role == AuthorRole.CUSTOMER:
                self._add_conversation(
                    record,
                    text_to_html(comment.body),
                    incoming=True,
                    private=False,
                    user_id=requester_id,
                    at=at,
                )
            else:
                self._add_conversation(
                    record,
                    text_to_html(comment.body),
                    incoming=False,
                    private=not comment.public,
                    user_id=fixtures.AGENT_ID,
                    at=at,
                    source=REPLY_SOURCE if comment.public else NOTE_SOURCE,
                )
        return str(record.id)

    def customer_reply(self, ticket_id: str, body: str) -> None:
        """The requester replies by e-mail: an incoming public conversation; a ticket in one of
        ``reopen_on_reply`` (pending, resolved, closed) is reopened, as Freshdesk's default
        automation "reopen tickets when the customer responds" does."""
        ticket = self._live(int(ticket_id))
        self._add_conversation(
            ticket,
            text_to_html(body),
            incoming=True,
            private=False,
            user_id=ticket.requester_id,
            at=self.now(),
        )
        if ticket.status in self.reopen_on_reply:
            self._set_status(ticket, OPEN)
        self._touch(ticket)
        self._fire(ticket, EventKind.UPDATED)

    def add_unknown_field(self, ticket_id: str) -> None:
        """The account gains a custom ticket field no configuration maps; the ticket has a
        value in it (every other ticket shows it as ``null``)."""
        name = fixtures.UNKNOWN_FIELD
        if name not in self.fields:
            self.fields[name] = CustomField(name, "Legacy region", "custom_text", (), 43000400098)
        self._live(int(ticket_id)).custom[name] = "EMEA"

    def make_webhook(
        self,
        ticket_id: str,
        kind: EventKind,
        secret: str,
        *,
        delivery_id: str | None = None,
        at: datetime | None = None,
        static_secret: bool = False,
    ) -> tuple[dict[str, str], bytes]:
        """A delivery as the automation rule our docs describe sends it: the JSON body
        ``{"ticket_id", "event", "updated_at", "status"}`` (placeholders rendered: the status
        is its name, as ``{{ticket.status}}`` renders it), ``X-Ticketwarden-Delivery``
        ``{event}-{ticket id}-{updated_at}`` unless ``delivery_id`` is given, and
        ``X-Ticketwarden-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``
        with ``X-Ticketwarden-Timestamp`` (unix seconds of ``at``, default now) — or, with
        ``static_secret``, only ``X-Ticketwarden-Secret: <secret>`` and no signature."""
        sent = (at or self.now()).astimezone(UTC)
        ticket = self.tickets.get(int(ticket_id)) if ticket_id.isdigit() else None
        updated = iso(ticket.updated_at) if ticket else iso(sent)
        payload = {
            "ticket_id": ticket_id,
            "event": kind.value,
            "updated_at": updated,
            "status": STATUS_NAMES[ticket.status] if ticket else "Open",
        }
        body = json.dumps(payload).encode()
        headers = {
            "content-type": "application/json",
            fixtures.DELIVERY_HEADER: delivery_id or f"{kind.value}-{ticket_id}-{updated}",
        }
        if static_secret:
            headers[fixtures.SECRET_HEADER] = secret
            return headers, body
        timestamp = str(int(sent.timestamp()))
        digest = hmac_sha256(SecretStr(secret), timestamp.encode(), b".", body).hex()
        headers[fixtures.TIMESTAMP_HEADER] = timestamp
        headers[fixtures.SIGNATURE_HEADER] = f"sha256={digest}"
        return headers, body

    # --- more test hooks ------------------------------------------------------------------------

    def agent_update(self, ticket_id: str | int, **changes: Any) -> dict[str, Any]:
        """An agent edits the ticket in Freshdesk meanwhile: the ``PUT`` fields (``status``,
        ``priority``, ``tags`` — replacing —, ``custom_fields``, ``group_id``, ``responder_id``,
        ``subject``, …) plus ``add_tags``/``remove_tags`` (the tag widget), ``note`` (a private
        note) and ``reply`` (a public reply). ``updated_at`` moves on, automation rules fire.
        Raises :class:`FreshdeskError` as the API would refuse. Returns the ticket's JSON."""
        ticket = self._live(int(ticket_id))
        agent = self._agent_id("Agent Smith")
        note = changes.pop("note", None)
        reply = changes.pop("reply", None)
        add = [str(t) for t in changes.pop("add_tags", ()) or ()]
        remove = {str(t) for t in changes.pop("remove_tags", ()) or ()}
        if add or remove:
            tags = [str(t) for t in changes.get("tags", ticket.tags)]
            tags += [t for t in add if t not in tags]
            changes["tags"] = [t for t in tags if t not in remove]
        if changes:
            self._update(ticket, changes)
        for text, private in ((note, True), (reply, False)):
            if text is not None:
                self._add_conversation(
                    ticket,
                    text_to_html(str(text)),
                    incoming=False,
                    private=private,
                    user_id=agent,
                    at=self.now(),
                    source=NOTE_SOURCE if private else REPLY_SOURCE,
                )
                self._touch(ticket)
                self._fire(ticket, EventKind.UPDATED)
        return self.ticket_json(ticket)

    def delete_ticket(self, ticket_id: str | int) -> None:
        """Move a ticket to the trash: gone from lists and search, ``deleted: true`` on view."""
        ticket = self._live(int(ticket_id))
        ticket.deleted = True
        self._touch(ticket)

    def subscribe(self, url: str, secret: str, *, static_secret: bool = False) -> Subscription:
        """Add automation rules that call ``url`` when a ticket is created or updated."""
        subscription = Subscription(url, secret, static_secret)
        self.subscriptions.append(subscription)
        return subscription

    async def deliver_webhooks(
        self, transport: httpx.AsyncBaseTransport | None = None
    ) -> list[httpx.Response]:
        """POST every queued delivery (oldest first) and empty the queue."""
        pending, self.outbox = self.outbox, []
        responses = []
        async with httpx.AsyncClient(transport=transport, timeout=10.0) as client:
            for subscription, ticket_id, kind in pending:
                headers, body = self.make_webhook(
                    ticket_id,
                    kind,
                    subscription.secret,
                    static_secret=subscription.static_secret,
                )
                responses.append(await client.post(subscription.url, content=body, headers=headers))
        return responses

    def _fire(self, ticket: FreshdeskTicket, kind: EventKind) -> None:
        for subscription in self.subscriptions:
            self.outbox.append((subscription, str(ticket.id), kind))

    # --- the model of a ticket's life -----------------------------------------------------------

    def _live(self, ticket_id: int) -> FreshdeskTicket:
        ticket = self.tickets.get(ticket_id)
        if ticket is None or ticket.deleted:
            raise _not_found()
        return ticket

    def _set_due_dates(self, ticket: FreshdeskTicket) -> None:
        first, resolution = SLA_HOURS[ticket.priority]
        ticket.fr_due_by = ticket.created_at + timedelta(hours=first)
        ticket.due_by = ticket.created_at + timedelta(hours=resolution)

    def _add_conversation(
        self,
        ticket: FreshdeskTicket,
        body: str,
        *,
        incoming: bool,
        private: bool,
        user_id: int,
        at: datetime,
        source: int = REPLY_SOURCE,
    ) -> Conversation:
        requester = self._person_email(ticket.requester_id)
        support = f"support@{fixtures.DOMAIN}"
        if incoming:
            from_email, to_emails = requester, [support]
        elif private:
            from_email, to_emails = None, []
        else:
            from_email, to_emails = support, [requester] if requester else []
        conversation = Conversation(
            id=self._new_id(),
            ticket_id=ticket.id,
            body=body,
            body_text=html_to_text(body),
            incoming=incoming,
            private=private,
            user_id=user_id,
            source=NOTE_SOURCE if private else source,
            created_at=at,
            from_email=from_email,
            to_emails=to_emails,
            support_email=support if not private else None,
        )
        ticket.conversations.append(conversation)
        if incoming:
            ticket.requester_responded_at = at
        elif not private:
            ticket.agent_responded_at = at
            ticket.first_responded_at = ticket.first_responded_at or at
        return conversation

    def _set_status(self, ticket: FreshdeskTicket, status: int) -> None:
        if status == ticket.status:
            return
        now = self.now()
        if ticket.status in (RESOLVED, CLOSED) and status not in (RESOLVED, CLOSED):
            ticket.reopened_at = now
            ticket.resolved_at = ticket.closed_at = None
        if status == RESOLVED:
            ticket.resolved_at = now
        if status == CLOSED:
            ticket.closed_at = now
            ticket.resolved_at = ticket.resolved_at or now
        ticket.pending_since = now if status == PENDING else None
        ticket.status_updated_at = now
        ticket.status = status

    def _statuses(self) -> list[int]:
        return sorted(STATUS_NAMES)

    def _check_custom(self, values: Any) -> dict[str, Any]:
        """Validate ``custom_fields`` as Freshdesk does: known names only, drop-down choices,
        value types."""
        if not isinstance(values, Mapping):
            raise _mismatch("custom_fields", values, "key/value pair")
        errors: list[tuple[str, str, str]] = []
        for name, value in values.items():
            spec = self.fields.get(name)
            if spec is None:
                errors.append((name, "Unexpected/invalid field in request", "invalid_field"))
                continue
            if value is None:
                continue
            if spec.type == "custom_dropdown":
                if value not in spec.choices:
                    errors.append((name, _choices(spec.choices), "invalid_value"))
            elif spec.type == "custom_number":
                if isinstance(value, bool) or not isinstance(value, int):
                    errors.append(
                        (
                            name,
                            f"Value set is of type {_type_name(value)}.It should be a/an Integer",
                            "datatype_mismatch",
                        )
                    )
            elif spec.type == "custom_checkbox":
                if not isinstance(value, bool):
                    errors.append(
                        (
                            name,
                            f"Value set is of type {_type_name(value)}.It should be a/an Boolean",
                            "datatype_mismatch",
                        )
                    )
            elif spec.type == "custom_date":
                if not isinstance(value, str) or not _DAY.fullmatch(value):
                    errors.append(
                        (name, "It should be in the 'yyyy-mm-dd' format", "invalid_value")
                    )
            elif not isinstance(value, str):
                errors.append(
                    (
                        name,
                        f"Value set is of type {_type_name(value)}.It should be a/an String",
                        "datatype_mismatch",
                    )
                )
        if errors:
            raise _validation(*errors)
        return dict(values)

    def _check_tags(self, tags: Any) -> list[str]:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _mismatch("tags", tags, "Array")
        too_long = [t for t in tags if len(t) > TAG_MAX_LENGTH]
        if too_long:
            raise _validation(
                (
                    "tags",
                    f"It should only contain elements that have maximum of "
                    f"{TAG_MAX_LENGTH} characters",
                    "invalid_value",
                )
            )
        return list(dict.fromkeys(tags))

    def _check_fields(self, data: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
        """The ticket attributes of a create or update body, validated; returns the changes."""
        errors: list[tuple[str, str, str]] = []
        for name in data:
            if name not in allowed:
                errors.append((name, "Unexpected/invalid field in request", "invalid_field"))
        if errors:
            raise _validation(*errors)
        changes: dict[str, Any] = {}
        if "status" in data:
            if data["status"] not in self._statuses() or isinstance(data["status"], bool):
                raise _validation(("status", _choices(self._statuses()), "invalid_value"))
            changes["status"] = data["status"]
        if "priority" in data:
            if data["priority"] not in PRIORITY_NAMES or isinstance(data["priority"], bool):
                raise _validation(("priority", _choices(PRIORITY_NAMES), "invalid_value"))
            changes["priority"] = data["priority"]
        if "source" in data:
            if data["source"] not in SOURCE_NAMES:
                raise _validation(("source", _choices(SOURCE_NAMES), "invalid_value"))
            changes["source"] = data["source"]
        if "tags" in data:
            changes["tags"] = self._check_tags(data["tags"])
        if "custom_fields" in data:
            changes["custom_fields"] = self._check_custom(data["custom_fields"])
        if data.get("group_id") is not None and data["group_id"] not in self.groups:
            raise _validation(
                ("group_id", "There is no group matching the given group_id", "invalid_value")
            )
        if "group_id" in data:
            changes["group_id"] = data["group_id"]
        if data.get("responder_id") is not None and data["responder_id"] not in self.agents:
            raise _validation(
                (
                    "responder_id",
                    "There is no agent matching the given responder_id",
                    "invalid_value",
                )
            )
        if "responder_id" in data:
            changes["responder_id"] = data["responder_id"]
        for name in ("subject", "type", "description"):
            if name in data:
                if not isinstance(data[name], str):
                    raise _mismatch(name, data[name], "String")
                changes[name] = data[name]
        if data.get("requester_id") is not None:
            if data["requester_id"] not in self.contacts:
                raise _validation(
                    (
                        "requester_id",
                        "There is no contact matching the given requester_id",
                        "invalid_value",
                    )
                )
            changes["requester_id"] = data["requester_id"]
        if data.get("company_id") is not None:
            if data["company_id"] not in self.companies:
                raise _validation(
                    (
                        "company_id",
                        "There is no company matching the given company_id",
                        "invalid_value",
                    )
                )
            changes["company_id"] = data["company_id"]
        return changes

    def _check_closure(self, status: int, custom: Mapping[str, Any]) -> None:
        if status not in (RESOLVED, CLOSED):
            return
        missing = [name for name in self.required_for_closure if custom.get(name) in (None, "")]
        if missing:
            raise _validation(
                *((name, "It should be a/an String", "missing_field") for name in missing)
            )

    def _update(self, ticket: FreshdeskTicket, data: Mapping[str, Any]) -> None:
        """Apply a ``PUT /tickets/{id}`` body as Freshdesk does. Raises :class:`FreshdeskError`."""
        changes = self._check_fields(data, UPDATABLE)
        custom = dict(ticket.custom)
        custom.update(changes.get("custom_fields", {}))
        status = changes.get("status", ticket.status)
        if status != ticket.status:
            self._check_closure(status, custom)
        before = self.ticket_json(ticket)
        ticket.custom = custom
        if "tags" in changes:
            ticket.tags = changes["tags"]  # replaces the whole list
        if "priority" in changes and changes["priority"] != ticket.priority:
            ticket.priority = changes["priority"]
        for name in (
            "group_id",
            "responder_id",
            "subject",
            "type",
            "requester_id",
            "company_id",
            "source",
        ):
            if name in changes:
                setattr(ticket, name, changes[name])
        if "description" in changes:
            ticket.description = changes["description"]
            ticket.description_text = html_to_text(changes["description"])
        self._set_status(ticket, status)
        if self.ticket_json(ticket) != before:
            self._touch(ticket)
            self._fire(ticket, EventKind.UPDATED)

    def _create(self, data: Mapping[str, Any]) -> FreshdeskTicket:
        """Create a ticket as ``POST /tickets`` does."""
        changes = self._check_fields(
            {k: v for k, v in data.items() if k not in ("name", "email", "phone")}, CREATABLE
        )
        requester_id = changes.get("requester_id")
        if requester_id is None and isinstance(data.get("email"), str):
            requester_id = self.add_contact(data["email"], str(data.get("name") or ""))
        if requester_id is None:
            raise _validation(
                (
                    "requester_id",
                    "Please fill at least 1 of requester_id, email, phone, "
                    "twitter_id, unique_external_id fields",
                    "missing_field",
                )
            )
        if not changes.get("subject"):
            raise _validation(("subject", "It should be a/an String", "missing_field"))
        status = changes.get("status", OPEN)
        custom = changes.get("custom_fields", {})
        self._check_closure(status, custom)
        now = self.now()
        description = str(changes.get("description") or "")
        self._next_ticket += 1
        ticket = FreshdeskTicket(
            id=self._next_ticket,
            subject=changes["subject"],
            description=description,
            description_text=html_to_text(description),
            status=OPEN,
            priority=changes.get("priority", 1),
            source=changes.get("source", fixtures.SOURCES["portal"]),
            requester_id=requester_id,
            company_id=changes.get("company_id") or self.contacts[requester_id]["company_id"],
            created_at=now,
            updated_at=now,
            responder_id=changes.get("responder_id"),
            group_id=changes.get("group_id"),
            type=changes.get("type", "Question"),
            tags=changes.get("tags", []),
            custom=dict(custom),
        )
        self._set_due_dates(ticket)
        ticket.status_updated_at = now
        self._set_status(ticket, status)
        ticket.status_updated_at = now
        self.tickets[ticket.id] = ticket
        self._fire(ticket, EventKind.CREATED)
        return ticket

    # --- request helpers ------------------------------------------------------------------------

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if "application/json" not in request.headers.get("content-type", ""):
            raise FreshdeskError(
                415,
                {
                    "code": "invalid_content_type",
                    "message": "Content-Type header should have application/json",
                },
            )
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise FreshdeskError(
                400, {"code": "invalid_json", "message": "Request body has invalid json format"}
            ) from None
        if not isinstance(data, dict):
            raise FreshdeskError(
                400, {"code": "invalid_json", "message": "Request body has invalid json format"}
            )
        return data

    async def _answer(self, call: Callable[[], Any]) -> Response:
        try:
            result = call()
            if hasattr(result, "__await__"):
                result = await result
            assert isinstance(result, Response)
            return result
        except FreshdeskError as error:
            return self.json(error.body, error.status)

    @staticmethod
    def _positive(params: Mapping[str, str], name: str, default: int, most: int | None) -> int:
        raw = params.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) < 1 or (most is not None and int(raw) > most):
            bound = f" less than or equal to {most}" if most is not None else ""
            raise _validation((name, f"It should be a Positive Integer{bound}", "invalid_value"))
        return int(raw)

    @staticmethod
    def _includes(params: Mapping[str, str], allowed: tuple[str, ...]) -> list[str]:
        wanted = [i.strip() for i in (params.get("include") or "").split(",") if i.strip()]
        for item in wanted:
            if item not in allowed:
                raise _validation(("include", _choices(allowed), "invalid_value"))
        return wanted

    def _link(self, path: str, params: Mapping[str, str], page: int) -> dict[str, str]:
        query = {k: v for k, v in params.items() if k != "page"}
        query["page"] = str(page)
        return {"link": f'<{self._url(path, query)}>; rel="next"'}

    # --- routes: tickets ------------------------------------------------------------------------

    async def show_ticket(self, request: Request) -> Response:
        def answer() -> Response:
            ticket = self.tickets.get(request.path_params["ticket_id"])
            if ticket is None:  # a deleted ticket still shows, with "deleted": true
                raise _not_found()
            body = self.ticket_json(ticket)
            for include in self._includes(request.query_params, VIEW_INCLUDES):
                if include == "conversations":
                    body["conversations"] = [
                        self.conversation_json(c)
                        for c in ticket.conversations[:INCLUDED_CONVERSATIONS]
                    ]
                elif include == "requester":
                    body["requester"] = self.requester_json(ticket.requester_id)
                elif include == "company":
                    company = self.companies.get(ticket.company_id or 0)
                    body["company"] = (
                        {"id": company["id"], "name": company["name"]} if company else {}
                    )
                else:
                    body["stats"] = self.stats_json(ticket)
            return self.json(body)

        return await self._answer(answer)

    async def list_tickets(self, request: Request) -> Response:
        def answer() -> Response:
            params = request.query_params
            per_page = self._positive(params, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
            page = self._positive(params, "page", 1, None)
            if page > LIST_PAGE_LIMIT:
                raise _validation(
                    (
                        "page",
                        "You cannot access tickets beyond the 300th page. Please provide "
                        "a smaller page number.",
                        "invalid_value",
                    )
                )
            includes = self._includes(params, LIST_INCLUDES)
            order_by = params.get("order_by", "created_at")
            if order_by not in ORDER_BY:
                raise _validation(("order_by", _choices(ORDER_BY), "invalid_value"))
            order_type = params.get("order_type", "desc")
            if order_type not in ("asc", "desc"):
                raise _validation(("order_type", _choices(("asc", "desc")), "invalid_value"))
            rows = self._filter_list(params)
            rows.sort(key=lambda t: (_order_key(t, order_by), t.id), reverse=order_type == "desc")
            chunk = rows[(page - 1) * per_page : page * per_page]
            items = []
            for ticket in chunk:
                item = self.ticket_json(
                    ticket, view=False, description="description" in includes, legacy=True
                )
                if "stats" in includes:
                    item["stats"] = self.stats_json(ticket)
                if "requester" in includes:
                    item["requester"] = self.requester_json(ticket.requester_id)
                items.append(item)
            more = page * per_page < len(rows)
            headers = self._link("tickets", params, page + 1) if more else {}
            return self.json(items, 200, headers)

        return await self._answer(answer)

    def _filter_list(self, params: Mapping[str, str]) -> list[FreshdeskTicket]:
        predefined = params.get("filter")
        if predefined not in (None, "new_and_my_open", "watching", "spam", "deleted"):
            raise _validation(
                (
                    "filter",
                    _choices(("new_and_my_open", "watching", "spam", "deleted")),
                    "invalid_value",
                )
            )
        since_raw = params.get("updated_since")
        since = _parse_time(since_raw) if since_raw is not None else None
        if since_raw is not None and since is None:
            raise _validation(
                ("updated_since", "It should be in the 'valid datetime' format", "invalid_value")
            )
        rows = []
        for ticket in self.tickets.values():
            if predefined == "deleted":
                if not ticket.deleted:
                    continue
            elif ticket.deleted or (ticket.spam != (predefined == "spam")):
                continue
            if predefined == "new_and_my_open" and not (
                ticket.status == OPEN and ticket.responder_id in (None, fixtures.AGENT_ID)
            ):
                continue
            if predefined == "watching":
                continue
            if since is not None:
                if ticket.updated_at < since:
                    continue
            elif ticket.created_at < self.now() - LIST_DEFAULT_WINDOW:
                continue
            if "requester_id" in params and str(ticket.requester_id) != params["requester_id"]:
                continue
            if "company_id" in params and str(ticket.company_id) != params["company_id"]:
                continue
            if "email" in params:
                email = self._person_email(ticket.requester_id) or ""
                if email.lower() != params["email"].lower():
                    continue
            rows.append(ticket)
        return rows

    async def create_ticket(self, request: Request) -> Response:
        async def answer() -> Response:
            ticket = self._create(await self._body(request))
            return self.json(
                self.ticket_json(ticket),
                201,
                {"location": self._url(f"tickets/{ticket.id}")},
            )

        return await self._answer(answer)

    async def update_ticket(self, request: Request) -> Response:
        async def answer() -> Response:
            ticket = self._live(request.path_params["ticket_id"])
            self._update(ticket, await self._body(request))
            return self.json(self.ticket_json(ticket))

        return await self._answer(answer)

    async def destroy_ticket(self, request: Request) -> Response:
        def answer() -> Response:
            self.delete_ticket(request.path_params["ticket_id"])
            return Response(status_code=204)

        return await self._answer(answer)

    async def list_conversations(self, request: Request) -> Response:
        def answer() -> Response:
            ticket = self._live(request.path_params["ticket_id"])
            params = request.query_params
            per_page = self._positive(params, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
            page = self._positive(params, "page", 1, None)
            rows = ticket.conversations
            chunk = rows[(page - 1) * per_page : page * per_page]
            more = page * per_page < len(rows)
            headers = (
                self._link(f"tickets/{ticket.id}/conversations", params, page + 1) if more else {}
            )
            return self.json([self.conversation_json(c) for c in chunk], 200, headers)

        return await self._answer(answer)

    async def _conversation(self, request: Request, *, note: bool) -> Response:
        async def answer() -> Response:
            ticket = self._live(request.path_params["ticket_id"])
            data = await self._body(request)
            allowed = (
                {"body", "private", "incoming", "notify_emails", "user_id"}
                if note
                else {"body", "from_email", "user_id", "cc_emails", "bcc_emails"}
            )
            unexpected = [k for k in data if k not in allowed]
            if unexpected:
                raise _validation(
                    *(
                        (k, "Unexpected/invalid field in request", "invalid_field")
                        for k in unexpected
                    )
                )
            body = data.get("body")
            if not isinstance(body, str) or not body.strip():
                raise _validation(("body", "It should be a/an String", "missing_field"))
            private = data.get("private", True) if note else False
            if not isinstance(private, bool):
                raise _mismatch("private", private, "Boolean")
            user_id = data.get("user_id", fixtures.AGENT_ID)
            incoming = bool(data.get("incoming", False)) if note else False
            made = self._add_conversation(
                ticket,
                body,
                incoming=incoming,
                private=private,
                user_id=user_id,
                at=self.now(),
                source=NOTE_SOURCE if note else REPLY_SOURCE,
            )
            self._touch(ticket)
            self._fire(ticket, EventKind.UPDATED)
            return self.json(self.conversation_json(made), 201)

        return await self._answer(answer)

    async def create_reply(self, request: Request) -> Response:
        return await self._conversation(request, note=False)

    async def create_note(self, request: Request) -> Response:
        return await self._conversation(request, note=True)

    # --- routes: the filter API -----------------------------------------------------------------

    def matches(self, ticket: FreshdeskTicket, query: Query) -> bool:
        """Whether the ticket satisfies a parsed filter query."""
        if isinstance(query, Junction):
            results = (self.matches(ticket, part) for part in query.parts)
            return all(results) if query.kind == "AND" else any(results)
        name = query.field
        if name in ("status", "priority", "group_id", "requester_id"):
            return _number_matches(query, getattr(ticket, name))
        if name == "agent_id":
            return _number_matches(query, ticket.responder_id)
        if name in ("created_at", "updated_at", "due_by", "fr_due_by"):
            return _date_matches(query, getattr(ticket, name))
        if name == "type":
            return _string_matches(query, [ticket.type])
        if name == "tag":
            if query.value is None:
                return query.op == ":" and not ticket.tags
            return _string_matches(query, ticket.tags)
        spec = self.fields.get(name)
        if spec is None:
            raise _validation((name, "Unexpected/invalid field in request", "invalid_field"))
        value = ticket.custom.get(name)
        if spec.type == "custom_number":
            return _number_matches(query, value)
        if spec.type == "custom_date":
            return _date_matches(query, _parse_time(value) if isinstance(value, str) else None)
        if spec.type == "custom_checkbox":
            wanted = query.value
            if not isinstance(wanted, bool):
                raise _mismatch(name, wanted, "Boolean")
            return bool(value) == wanted
        return _string_matches(query, [value])

    def search(self, raw_query: str) -> list[FreshdeskTicket]:
        """Every live ticket the filter query matches, newest first."""
        query = parse_query(raw_query)
        found = [
            t
            for t in self.tickets.values()
            if not t.deleted and not t.spam and self.matches(t, query)
        ]
        found.sort(key=lambda t: (t.created_at, t.id), reverse=True)
        return found

    async def search_tickets(self, request: Request) -> Response:
        def answer() -> Response:
            params = request.query_params
            raw = params.get("query")
            if raw is None:
                raise _validation(("query", "It should be a/an String", "missing_field"))
            page = self._positive(params, "page", 1, SEARCH_PAGE_LIMIT)
            found = self.search(raw)
            chunk = found[(page - 1) * SEARCH_PAGE_SIZE : page * SEARCH_PAGE_SIZE]
            return self.json(
                {
                    "results": [self.ticket_json(t, view=False, legacy=True) for t in chunk],
                    "total": len(found),
                }
            )

        return await self._answer(answer)

    async def list_ticket_fields(self, request: Request) -> Response:
        stamp = iso(CREATED_AT)
        fields: list[dict[str, Any]] = [
            {
                "id": 43000400001 + i,
                "name": name,
                "label": name.title(),
                "description": None,
                "position": i + 1,
                "required_for_closure": False,
                "required_for_agents": False,
                "type": f"default_{name}",
                "default": True,
                "customers_can_edit": False,
                "created_at": stamp,
                "updated_at": stamp,
                **(
                    {"choices": {n: c for c, n in STATUS_NAMES.items()}} if name == "status" else {}
                ),
                **(
                    {"choices": {n: c for c, n in PRIORITY_NAMES.items()}}
                    if name == "priority"
                    else {}
                ),
            }
            for i, name in enumerate(
                ("requester", "subject", "status", "priority", "group", "agent", "description")
            )
        ]
        for position, spec in enumerate(self.fields.values(), start=len(fields) + 1):
            fields.append(
                {
                    "id": spec.id,
                    "name": spec.name,
                    "label": spec.label,
                    "description": None,
                    "position": position,
                    "required_for_closure": spec.name in self.required_for_closure,
                    "required_for_agents": False,
                    "type": spec.type,
                    "default": False,
                    "customers_can_edit": False,
                    "created_at": stamp,
                    "updated_at": stamp,
                    **({"choices": list(spec.choices)} if spec.choices else {}),
                }
            )
        return self.json(fields)

    # --- routes: contacts, companies, agents, groups --------------------------------------------

    def _one(self, table: Mapping[int, dict[str, Any]], item_id: int) -> Response:
        record = table.get(item_id)
        if record is None:
            return self.json(_not_found().body, 404)
        return self.json(record)

    def _page(self, request: Request, path: str, rows: list[dict[str, Any]]) -> Response:
        def answer() -> Response:
            params = request.query_params
            per_page = self._positive(params, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
            page = self._positive(params, "page", 1, None)
            chunk = rows[(page - 1) * per_page : page * per_page]
            more = page * per_page < len(rows)
            return self.json(chunk, 200, self._link(path, params, page + 1) if more else {})

        try:
            return answer()
        except FreshdeskError as error:
            return self.json(error.body, error.status)

    async def show_contact(self, request: Request) -> Response:
        return self._one(self.contacts, request.path_params["contact_id"])

    async def list_contacts(self, request: Request) -> Response:
        params = request.query_params
        rows = [
            c
            for c in self.contacts.values()
            if ("email" not in params or str(c["email"]).lower() == params["email"].lower())
            and ("company_id" not in params or str(c["company_id"]) == params["company_id"])
        ]
        return self._page(request, "contacts", rows)

    async def show_company(self, request: Request) -> Response:
        return self._one(self.companies, request.path_params["company_id"])

    async def list_companies(self, request: Request) -> Response:
        return self._page(request, "companies", list(self.companies.values()))

    async def show_me(self, request: Request) -> Response:
        return self._one(self.agents, fixtures.AGENT_ID)

    async def show_agent(self, request: Request) -> Response:
        return self._one(self.agents, request.path_params["agent_id"])

    async def list_agents(self, request: Request) -> Response:
        return self._page(request, "agents", list(self.agents.values()))

    async def show_group(self, request: Request) -> Response:
        return self._one(self.groups, request.path_params["group_id"])

    async def list_groups(self, request: Request) -> Response:
        return self._page(request, "groups", list(self.groups.values()))

    async def no_such_endpoint(self, request: Request) -> Response:
        return self.json(_not_found().body, 404)


def _order_key(ticket: FreshdeskTicket, order_by: str) -> Any:
    if order_by == "status":
        return ticket.status
    moment = getattr(ticket, order_by)
    return moment or datetime.min.replace(tzinfo=UTC)


__all__ = [
    "Condition",
    "Conversation",
    "CustomField",
    "FreshdeskEmulator",
    "FreshdeskError",
    "FreshdeskTicket",
    "Junction",
    "Subscription",
    "html_to_text",
    "parse_query",
    "text_to_html",
]
