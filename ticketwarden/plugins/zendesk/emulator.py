"""The Zendesk Support emulator: the subset of API v2 the Zendesk connector uses, in Zendesk's
own shapes (taken from the real responses in ``../shared/vendor/zendesk/recorded.json`` and
Zendesk's OpenAPI description), statuses, transitions and limits.

Served routes (each also without the ``.json`` suffix)::

    GET    /api/v2/tickets.json                      list (cursor or offset paging), ?external_id=
    POST   /api/v2/tickets.json                      create (follow-ups: via_followup_source_id)
    GET    /api/v2/tickets/show_many.json?ids=…      several tickets
    GET    /api/v2/tickets/{id}.json                 one ticket, ?include=users,organizations,groups
    PUT    /api/v2/tickets/{id}.json                 update (comment rides along, safe update)
    DELETE /api/v2/tickets/{id}.json                 delete (shows as "deleted" in the export)
    GET    /api/v2/tickets/{id}/comments.json        comments, cursor or offset paging, sideloads
    GET    /api/v2/incremental/tickets/cursor.json   cursor-based incremental ticket export
    GET    /api/v2/search.json                       search, offset paging (1,000 results at most)
    GET    /api/v2/search/export.json                search export, cursor paging, filter[type]
    GET    /api/v2/users/{id}.json, /users/show_many.json, /users/me.json
    GET    /api/v2/organizations/{id}.json, /organizations/show_many.json
    GET    /api/v2/groups/{id}.json

Behaviour, and where it comes from:

- **Authentication**: ``{email}/token:{api_token}`` basic or an OAuth bearer token (the values
  in :mod:`fixtures`); anything else is a 401 ``{"error": "Couldn't authenticate you"}``.
- **Rate limits**: every authenticated response carries ``x-rate-limit``,
  ``x-rate-limit-remaining``, ``ratelimit-limit``, ``ratelimit-remaining`` and
  ``ratelimit-reset`` (the real recordings show the last three only on list endpoints). With no
  ``rate_limit`` the headers report Zendesk's 700-a-minute Enterprise limit but nothing is
  refused. The incremental export has its own limit (``export_rate_limit``, 10 a minute),
  counted apart from the account limit, reported in ``zendesk-ratelimit-incremental-exports``
  and answered with its own 429 + ``Retry-After``; the search export has its own 100 a minute.
- **Statuses** (Zendesk's native system rules): a ticket never goes back to ``new``; ``closed``
  only from ``solved``, and a closed ticket refuses every update (422 ``RecordInvalid``,
  ``Status: closed prevents ticket update``); solving a ticket without an assignee assigns the
  acting agent ("auto assign tickets upon solve"); assigning a new ticket opens it; an end
  user's comment reopens a pending, on-hold or solved ticket.
- **Safe update**: ``safe_update`` with an ``updated_stamp`` that is not the ticket's
  ``updated_at`` is a 409 ``UpdateConflict``. Every change moves ``updated_at`` on by at least a
  second, so two changes within one second still differ (an agent edit is never hidden).
- **Follow-ups**: ``via_followup_source_id`` links the new ticket only when the source is
  closed ("it has no effect with other tickets"); the follow-up's ``via`` is
  ``{"channel": "api", "source": {"from": {"ticket_id", "subject"}, "to": {}, "rel":
  "follow_up"}}``, it inherits the source's tags unless ``tags`` are given, and the source lists
  it in ``followup_ids``.
- **Custom fields**: every ticket lists every custom field of the account (``null`` when
  unset); values for field ids the account does not have are ignored, as Zendesk does.

Test hooks besides the conformance ones: :meth:`ZendeskEmulator.agent_update` (an agent's
concurrent edit), :meth:`~ZendeskEmulator.add_user`, :meth:`~ZendeskEmulator.add_organization`,
:meth:`~ZendeskEmulator.delete_ticket`, and trigger-like webhooks:
:meth:`~ZendeskEmulator.subscribe` queues a signed delivery for every change and
:meth:`~ZendeskEmulator.deliver_webhooks` POSTs them.
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
from urllib.parse import quote

import httpx
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ticketwarden.core.connector import hmac_sha256
from ticketwarden.core.model import EventKind, Status, Ticket
from ticketwarden.plugins.zendesk import fixtures
from ticketwarden.testing.emulator import Clock, Emulator, iso

# --- Zendesk's constants ------------------------------------------------------------------------

ACCOUNT_RATE_LIMIT = 700
"""The account limit the headers report when the emulator enforces none (Enterprise plan)."""
EXPORT_RATE_LIMIT = 10
"""Incremental export requests a minute (Zendesk: "You can make up to 10 requests per minute")."""
SEARCH_EXPORT_RATE_LIMIT = 100
"""Search export requests a minute ("rate-limited to 100 requests per minute per account")."""
SEARCH_RESULT_LIMIT = 1000
"""``/search.json`` returns at most the first 1,000 results."""

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
"""Zendesk's statuses in their search order (``status<solved`` means new, open, pending, hold)."""
PRIORITIES = ("low", "normal", "high", "urgent")
ZENDESK_STATUS = {
    Status.NEW: "new",
    Status.OPEN: "open",
    Status.WAITING_ON_CUSTOMER: "pending",
    Status.ON_HOLD: "hold",
    Status.RESOLVED: "solved",
    Status.CLOSED: "closed",
}
CUSTOM_STATUS_IDS = {
    "new": 6130830355738,  # as recorded
    "open": 6130892426138,  # as recorded
    "pending": 6130892426266,
    "hold": 6130892426394,
    "solved": 6130892426522,
    "closed": 6130892426650,
}
BRAND_ID = 6130830354842
TICKET_FORM_ID = 6130830344474
UNKNOWN_FIELD_ID = 6164040575099
"""A custom ticket field the account has but no ticketwarden configuration maps."""
WEBHOOK_ID = "01JDQ4T8ZK3M5N6P7R9S0VWXYZ"
CREATED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""When the emulated account's users, organizations and groups were created."""

UPDATE_CONFLICT = {
    "error": "UpdateConflict",
    "description": (
        "Safe Update prevented the update due to outdated ticket data. "
        "Please fetch the latest ticket data and try again."
    ),
}
NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class ZendeskError(Exception):
    """An API error with Zendesk's status and body (raised by the hooks, answered by routes)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def _invalid(attribute: str, description: str, error: str = "InvalidValue") -> ZendeskError:
    return ZendeskError(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {attribute: [{"description": description, "error": error}]},
        },
    )


def _bad_request(description: str, error: str = "InvalidValue") -> ZendeskError:
    return ZendeskError(400, {"error": error, "description": description})


# --- state --------------------------------------------------------------------------------------


@dataclass
class ZendeskTicket:
    """One ticket's state; :meth:`ZendeskEmulator.ticket_json` renders Zendesk's shape."""

    id: int
    subject: str
    description: str
    status: str
    priority: str | None
    requester_id: int
    submitter_id: int
    organization_id: int | None
    created_at: datetime
    updated_at: datetime
    assignee_id: int | None = None
    group_id: int | None = None
    type: str | None = None
    tags: list[str] = field(default_factory=list)
    custom: dict[int, Any] = field(default_factory=dict)
    external_id: str | None = None
    via: dict[str, Any] = field(default_factory=lambda: _via("api"))
    followup_ids: list[int] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False


@dataclass
class Subscription:
    """A webhook connected to a trigger that fires on ticket creation and update."""

    url: str
    secret: str


@dataclass
class _Window:
    """A fixed one-minute window counter on the emulator's clock (an endpoint's own limit)."""

    limit: int
    start: int = -1
    count: int = 0

    def hit(self, now: float) -> tuple[int, int, bool]:
        """Count a request: ``(remaining, seconds to reset, over the limit)``."""
        window = int(now // 60)
        if window != self.start:
            self.start, self.count = window, 0
        reset = max(1, int((window + 1) * 60 - now + 0.999))
        if self.count >= self.limit:
            return 0, reset, True
        self.count += 1
        return self.limit - self.count, reset, False


def _via(
    channel: str, source_from: dict[str, Any] | None = None, rel: str | None = None
) -> dict[str, Any]:
    return {"channel": channel, "source": {"from": source_from or {}, "to": {}, "rel": rel}}


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(token: str) -> str | None:
    try:
        return base64.b64decode(token.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


# --- Zendesk search syntax ----------------------------------------------------------------------

SearchOp = Literal[":", "<", ">", "<=", ">="]


@dataclass(frozen=True)
class SearchTerm:
    """One term of a Zendesk search query: ``key OP value``, or free text when ``key`` is None.

    ``quoted`` values are literals: nothing inside the quotes is syntax (``status:"pending OR
    type:user"`` asks for the status ``pending OR type:user``, which no ticket has).
    """

    key: str | None
    op: SearchOp
    value: str
    quoted: bool = False
    negated: bool = False


_TERM = re.compile(
    r"""
    (?P<neg>-)?
    (?:
        (?P<key>[A-Za-z_][A-Za-z0-9_.]*)
        (?P<op><=|>=|:<=|:>=|:<|:>|:|<|>)
        (?P<value>"(?:\\.|[^"\\])*"?|\S*)
      | (?P<phrase>"(?:\\.|[^"\\])*"?)
      | (?P<word>\S+)
    )
    """,
    re.VERBOSE,
)


def _unquote(token: str) -> str:
    inner = token[1:-1] if len(token) >= 2 and token.endswith('"') else token[1:]
    return re.sub(r"\\(.)", r"\1", inner)


def parse_query(query: str) -> list[SearchTerm]:
    """Split a Zendesk search query into terms (all of which must match)."""
    terms: list[SearchTerm] = []
    position = 0
    while position < len(query):
        if query[position].isspace():
            position += 1
            continue
        match = _TERM.match(query, position)
        if match is None or match.end() == position:  # pragma: no cover - \S+ always matches
            break
        position = match.end()
        negated = match.group("neg") is not None
        if match.group("key") is not None:
            raw = match.group("value")
            quoted = raw.startswith('"')
            op = match.group("op").lstrip(":") or ":"
            value = _unquote(raw) if quoted else raw
            key = match.group("key").lower()
            terms.append(SearchTerm(key, op, value, quoted, negated))  # type: ignore[arg-type]
        elif match.group("phrase") is not None:
            terms.append(SearchTerm(None, ":", _unquote(match.group("phrase")), True, negated))
        else:
            terms.append(SearchTerm(None, ":", match.group("word"), False, negated))
    return terms


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == ":":
        return bool(left == right)
    if op == "<":
        return bool(left < right)
    if op == ">":
        return bool(left > right)
    if op == "<=":
        return bool(left <= right)
    return bool(left >= right)


def _text_matches(term: SearchTerm, texts: Iterable[str]) -> bool:
    """Free text: a word matches a word of the text or its beginning; a phrase matches as is."""
    wanted = term.value.lower()
    if not wanted:
        return True
    for text in texts:
        lowered = text.lower()
        if term.quoted:
            if wanted in lowered:
                return True
        elif any(word.startswith(wanted.rstrip("*")) for word in re.split(r"[^\w@.+-]+", lowered)):
            return True
    return False


def _value_matches(term: SearchTerm, candidates: Iterable[Any]) -> bool:
    """Equality (case-insensitive; ``*`` is a wildcard outside quotes) or ordering of text."""
    wanted = term.value.lower()
    for candidate in candidates:
        if candidate is None:
            if wanted == "none" and not term.quoted and term.op == ":":
                return True
            continue
        text = str(candidate).lower()
        if term.op == ":":
            if not term.quoted and "*" in wanted:
                pattern = "^" + ".*".join(re.escape(p) for p in wanted.split("*")) + "$"
                if re.match(pattern, text):
                    return True
            elif text == wanted:
                return True
        elif _compare(term.op, text, wanted):
            return True
    return False


def _time_matches(term: SearchTerm, moment: datetime | None) -> bool:
    """``created``/``updated`` against an ISO date (the whole day) or date-time."""
    if moment is None:
        return False
    value = term.value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        day = date.fromisoformat(value)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
    else:
        parsed = _parse_time(value)
        if parsed is None:
            return False
        start, end = parsed, parsed + timedelta(seconds=1)
    if term.op == ":":
        return start <= moment < end
    if term.op == "<":
        return moment < start
    if term.op == "<=":
        return moment < end
    if term.op == ">":
        return moment >= end
    return moment >= start


def _ordered_matches(term: SearchTerm, value: str | None, order: tuple[str, ...]) -> bool:
    wanted = term.value.lower()
    if value is None:
        return wanted == "none" and term.op == ":" and not term.quoted
    if wanted not in order:
        return False
    return _compare(term.op, order.index(value), order.index(wanted))


def _field_value_matches(term: SearchTerm, value: Any) -> bool:
    """A user or organization field: checkbox ``true``/``false``, dates and text ordered."""
    if isinstance(value, bool):
        return term.op == ":" and term.value.lower() == str(value).lower()
    return _value_matches(term, [value])


# --- the emulator -------------------------------------------------------------------------------


class ZendeskEmulator(Emulator):
    """Zendesk Support API v2 with the account set up in :mod:`fixtures`."""

    name = "zendesk"
    page_size = 100

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rate_limit: int | None = None,
        seed: int = 0,
        base_url: str = f"https://{fixtures.SUBDOMAIN}.zendesk.com",
        export_rate_limit: int = EXPORT_RATE_LIMIT,
        export_lag_seconds: int = 0,
    ) -> None:
        """``export_lag_seconds``: leave tickets changed this recently out of the incremental
        export, as Zendesk does for the last minute since October 2024 (``60`` for that; the
        default ``0`` lets tests read their changes without waiting a minute)."""
        self.tickets: dict[int, ZendeskTicket] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.ticket_fields: list[int] = sorted(fixtures.TICKET_FIELDS.values())
        self.subscriptions: list[Subscription] = []
        self.outbox: list[tuple[Subscription, str, EventKind]] = []
        self.export_limit = _Window(export_rate_limit)
        self.search_export_limit = _Window(SEARCH_EXPORT_RATE_LIMIT)
        self.export_lag_seconds = export_lag_seconds
        self._nominal = _Window(ACCOUNT_RATE_LIMIT)
        self._next_ticket = 1000
        self._next_user = 6164120117000
        self._next_org = 6164110479000
        self._next_event = 6164039218000
        self._users_by_key: dict[str, int] = {}
        self._orgs_by_key: dict[str, int] = {}
        super().__init__(clock=clock, rate_limit=rate_limit, seed=seed, base_url=base_url)
        home = self.add_organization("Example Support", external_id="example-support")
        self._add_user_record(
            fixtures.AGENT_ID, "ticketwarden", fixtures.AGENT_EMAIL, role="admin", org_id=home
        )
        for group_name, group_id in fixtures.GROUPS.items():
            self._add_group(group_id, group_name)

    # --- routing ------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        def both(path: str, endpoint: Callable[[Request], Any], method: str) -> list[Route]:
            return [
                Route(f"{path}.json", endpoint, methods=[method]),
                Route(path, endpoint, methods=[method]),
            ]

        v2 = "/api/v2"
        return [
            *both(f"{v2}/tickets", self.list_tickets, "GET"),
            *both(f"{v2}/tickets", self.create_ticket, "POST"),
            *both(f"{v2}/tickets/show_many", self.show_many_tickets, "GET"),
            *both(f"{v2}/tickets/{{ticket_id:int}}", self.show_ticket, "GET"),
            *both(f"{v2}/tickets/{{ticket_id:int}}", self.update_ticket, "PUT"),
            *both(f"{v2}/tickets/{{ticket_id:int}}", self.destroy_ticket, "DELETE"),
            *both(f"{v2}/tickets/{{ticket_id:int}}/comments", self.list_comments, "GET"),
            *both(f"{v2}/tickets/{{ticket_id:int}}/audits", self.list_audits, "GET"),
            *both(f"{v2}/incremental/tickets/cursor", self.incremental_tickets, "GET"),
            *both(f"{v2}/search/export", self.search_export, "GET"),
            *both(f"{v2}/search", self.search, "GET"),
            *both(f"{v2}/users/me", self.show_me, "GET"),
            *both(f"{v2}/users/show_many", self.show_many_users, "GET"),
            *both(f"{v2}/users/{{user_id:int}}", self.show_user, "GET"),
            *both(f"{v2}/organizations/show_many", self.show_many_organizations, "GET"),
            *both(f"{v2}/organizations/{{org_id:int}}", self.show_organization, "GET"),
            *both(f"{v2}/groups/{{group_id:int}}", self.show_group, "GET"),
            Route(
                "/{path:path}",
                self.no_such_endpoint,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            ),
        ]

    # --- the vendor hooks of the base -----------------------------------------------------------

    def authenticate(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip() == fixtures.OAUTH_TOKEN
        if scheme.lower() == "basic":
            decoded = _unb64(credentials.strip())
            return decoded == f"{fixtures.AGENT_EMAIL}/token:{fixtures.API_TOKEN}"
        return False

    def rate_limit_headers(self, limit: int, remaining: int, reset: int) -> dict[str, str]:
        return {
            "x-rate-limit": str(limit),
            "x-rate-limit-remaining": str(remaining),
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(reset),
        }

    def _rate_headers(self) -> tuple[dict[str, str], bool]:
        if self.rate_limit is not None:
            return super()._rate_headers()
        # no enforced limit: still report Zendesk's headers against the nominal plan limit
        now = self.clock.monotonic()
        window = int(now // 60)
        if window != self._nominal.start:
            self._nominal.start, self._nominal.count = window, 0
        self._nominal.count += 1
        reset = max(1, int((window + 1) * 60 - now + 0.999))
        remaining = max(ACCOUNT_RATE_LIMIT - self._nominal.count, 0)
        return self.rate_limit_headers(ACCOUNT_RATE_LIMIT, remaining, reset), False

    def error_body(self, status: int, message: str) -> Any:
        if status == 401:
            return {"error": "Couldn't authenticate you"}
        if status == 429:
            return {
                "error": "APIRateLimitExceeded",
                "description": "Number of allowed API requests per minute exceeded",
            }
        return {
            "error": "InternalServerError" if status >= 500 else "Error",
            "description": message,
        }

    # --- time and ids ---------------------------------------------------------------------------

    def _event_id(self) -> int:
        self._next_event += 128
        return self._next_event

    def _touch(self, ticket: ZendeskTicket) -> None:
        """A change: ``updated_at`` moves to now, and at least a second past its last value."""
        ticket.updated_at = max(self.now(), ticket.updated_at + timedelta(seconds=1))

    def _url(self, path: str) -> str:
        return f"{self.base_url}/api/v2/{path}"

    # --- users, organizations, groups -----------------------------------------------------------

    def _add_user_record(
        self,
        user_id: int,
        name: str,
        email: str | None,
        *,
        role: str = "end-user",
        org_id: int | None = None,
        phone: str | None = None,
        external_id: str | None = None,
        user_fields: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        stamp = iso(CREATED_AT)
        fields: dict[str, Any] = {
            fixtures.USER_FIELDS["authorized"]: False,
            fixtures.USER_FIELDS["certified_until"]: None,
            fixtures.USER_FIELDS["available_24x7"]: False,
        }
        fields.update(user_fields or {})
        record: dict[str, Any] = {
            "id": user_id,
            "url": self._url(f"users/{user_id}.json"),
            "name": name,
            "email": email,
            "created_at": stamp,
            "updated_at": stamp,
            "time_zone": "Europe/Berlin",
            "iana_time_zone": "Europe/Berlin",
            "phone": phone,
            "shared_phone_number": None,
            "photo": None,
            "locale_id": 1,
            "locale": "en-US",
            "organization_id": org_id,
            "role": role,
            "verified": True,
            "external_id": external_id,
            "tags": [],
            "alias": None,
            "active": True,
            "shared": False,
            "shared_agent": False,
            "last_login_at": None,
            "two_factor_auth_enabled": None,
            "signature": None,
            "details": None,
            "notes": None,
            "role_type": 4 if role == "admin" else None,
            "custom_role_id": None,
            "moderator": role != "end-user",
            "ticket_restriction": "requested" if role == "end-user" else None,
            "only_private_comments": False,
            "restricted_agent": role == "end-user",
            "suspended": False,
            "default_group_id": None,
            "report_csv": role != "end-user",
            "user_fields": fields,
        }
        self.users[user_id] = record
        if email:
            self._users_by_key[email.lower()] = user_id
        return record

    def add_user(
        self,
        email: str,
        name: str = "",
        *,
        organization: str | int | None = None,
        phone: str = "",
        role: str = "end-user",
        external_id: str | None = None,
        authorized: bool = False,
        certified_until: date | None = None,
        available_24x7: bool = False,
    ) -> int:
        """Add (or update) a user with the roster user fields; ``organization`` is an id, an
        organization's name or its external id (created when new). Returns the user id."""
        org_id = self._org_id(organization) if organization is not None else None
        fields = {
            fixtures.USER_FIELDS["authorized"]: authorized,
            fixtures.USER_FIELDS["certified_until"]: (
                certified_until.isoformat() if certified_until else None
            ),
            fixtures.USER_FIELDS["available_24x7"]: available_24x7,
        }
        existing = self._users_by_key.get(email.lower())
        if existing is not None:
            record = self.users[existing]
            record["user_fields"].update(fields)
            record.update(name=name or record["name"], phone=phone or record["phone"])
            if org_id is not None:
                record["organization_id"] = org_id
            return existing
        self._next_user += 128
        user_id = self._next_user
        self._add_user_record(
            user_id,
            name or email.split("@")[0],
            email,
            role=role,
            org_id=org_id,
            phone=phone or None,
            external_id=external_id,
            user_fields=fields,
        )
        if external_id:
            self._users_by_key[f"external:{external_id}"] = user_id
        return user_id

    def set_user_fields(self, user_id: int, **values: Any) -> None:
        """Set user field values by key (``tw_authorized_contact=True``, …)."""
        self.users[user_id]["user_fields"].update(values)
        self.users[user_id]["updated_at"] = iso(self.now())

    def add_organization(
        self, name: str, *, external_id: str | None = None, fields: Mapping[str, Any] | None = None
    ) -> int:
        """Add an organization (``organization_fields`` from ``fields``); returns its id."""
        for key in (f"external:{external_id}" if external_id else None, f"name:{name.lower()}"):
            if key and key in self._orgs_by_key:
                org_id = self._orgs_by_key[key]
                self.organizations[org_id]["organization_fields"].update(fields or {})
                return org_id
        self._next_org += 128
        org_id = self._next_org
        stamp = iso(CREATED_AT)
        self.organizations[org_id] = {
            "url": self._url(f"organizations/{org_id}.json"),
            "id": org_id,
            "name": name,
            "shared_tickets": False,
            "shared_comments": False,
            "external_id": external_id,
            "created_at": stamp,
            "updated_at": stamp,
            "domain_names": [],
            "details": None,
            "notes": None,
            "group_id": None,
            "tags": [],
            "organization_fields": dict(fields or {}),
        }
        self._orgs_by_key[f"name:{name.lower()}"] = org_id
        if external_id:
            self._orgs_by_key[f"external:{external_id}"] = org_id
        return org_id

    def _org_id(self, organization: str | int) -> int:
        if isinstance(organization, int):
            return organization
        for key in (f"external:{organization}", f"name:{organization.lower()}"):
            if key in self._orgs_by_key:
                return self._orgs_by_key[key]
        return self.add_organization(organization, external_id=organization)

    def _add_group(self, group_id: int, name: str) -> None:
        stamp = iso(CREATED_AT)
        self.groups[group_id] = {
            "url": self._url(f"groups/{group_id}.json"),
            "id": group_id,
            "is_public": True,
            "name": name,
            "description": "",
            "default": False,
            "deleted": False,
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
        new_id = max(self.groups) + 1
        self._add_group(new_id, group)
        return new_id

    def _agent_id(self, assignee: str) -> int:
        if assignee.isdigit():
            return int(assignee)
        email = assignee if "@" in assignee else f"{assignee.lower()}@agents.example"
        return self.add_user(email, assignee, role="agent")

    # --- rendering ------------------------------------------------------------------------------

    def custom_fields_json(self, ticket: ZendeskTicket) -> list[dict[str, Any]]:
        """Every custom field of the account with the ticket's value (``null`` when unset)."""
        return [{"id": fid, "value": ticket.custom.get(fid)} for fid in self.ticket_fields]

    def ticket_json(self, ticket: ZendeskTicket, *, fields: bool = True) -> dict[str, Any]:
        """The ticket as Zendesk returns it (``fields`` as in show, create and update answers;
        the list endpoint leaves it out, as the recordings show)."""
        custom = self.custom_fields_json(ticket)
        body: dict[str, Any] = {
            "url": self._url(f"tickets/{ticket.id}.json"),
            "id": ticket.id,
            "external_id": ticket.external_id,
            "via": ticket.via,
            "created_at": iso(ticket.created_at),
            "updated_at": iso(ticket.updated_at),
            "type": ticket.type,
            "subject": ticket.subject,
            "raw_subject": ticket.subject,
            "description": ticket.description,
            "priority": ticket.priority,
            "status": "deleted" if ticket.deleted else ticket.status,
            "recipient": None,
            "requester_id": ticket.requester_id,
            "submitter_id": ticket.submitter_id,
            "assignee_id": ticket.assignee_id,
            "organization_id": ticket.organization_id,
            "group_id": ticket.group_id,
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "forum_topic_id": None,
            "problem_id": None,
            "has_incidents": False,
            "is_public": any(c["public"] for c in ticket.comments) or not ticket.comments,
            "due_at": None,
            "tags": list(ticket.tags),
            "custom_fields": custom,
            "satisfaction_rating": None,
            "sharing_agreement_ids": [],
            "custom_status_id": CUSTOM_STATUS_IDS.get(ticket.status, CUSTOM_STATUS_IDS["open"]),
            "followup_ids": list(ticket.followup_ids),
            "ticket_form_id": TICKET_FORM_ID,
            "brand_id": BRAND_ID,
            "allow_channelback": False,
            "allow_attachments": True,
            "from_messaging_channel": False,
        }
        if fields:
            body["fields"] = [dict(item) for item in custom]
        return body

    def _sideloads(
        self, tickets: Iterable[ZendeskTicket], include: str | None, allowed: Iterable[str]
    ) -> dict[str, list[dict[str, Any]]]:
        wanted = {w.strip() for w in (include or "").split(",")} & set(allowed)
        tickets = list(tickets)
        out: dict[str, list[dict[str, Any]]] = {}
        if "users" in wanted:
            ids: list[int] = []
            for t in tickets:
                ids += [t.requester_id, t.submitter_id]
                ids += [t.assignee_id] if t.assignee_id else []
                ids += [c["author_id"] for c in t.comments]
            out["users"] = [self.users[i] for i in dict.fromkeys(ids) if i in self.users]
        if "organizations" in wanted:
            org_ids = dict.fromkeys(t.organization_id for t in tickets if t.organization_id)
            out["organizations"] = [
                self.organizations[i] for i in org_ids if i in self.organizations
            ]
        if "groups" in wanted:
            group_ids = dict.fromkeys(t.group_id for t in tickets if t.group_id)
            out["groups"] = [self.groups[i] for i in group_ids if i in self.groups]
        return out

    def _comment(
        self,
        ticket: ZendeskTicket,
        data: Mapping[str, Any],
        author_id: int,
        audit_id: int,
        at: datetime,
    ) -> dict[str, Any]:
        html_body = data.get("html_body")
        if isinstance(html_body, str) and not data.get("body"):
            body = html.unescape(re.sub(r"<[^>]+>", "", html_body))
        else:
            body = str(data.get("body") or "")
            paragraphs = html.escape(body).replace("\n", "<br>")
            html_body = f'<div class="zd-comment" dir="auto"><p dir="auto">{paragraphs}</p></div>'
        comment = {
            "id": self._event_id(),
            "type": "Comment",
            "author_id": author_id,
            "body": body,
            "html_body": html_body,
            "plain_body": body,
            "public": bool(data.get("public", True)),
            "attachments": [],
            "audit_id": audit_id,
            "via": _via("api"),
            "created_at": iso(at),
            "metadata": {"system": {"client": "ticketwarden-emulator"}, "via": _via("api")},
        }
        ticket.comments.append(comment)
        return comment

    def _audit(
        self,
        ticket: ZendeskTicket,
        author_id: int,
        audit_id: int,
        events: list[dict[str, Any]],
        metadata: Any = None,
    ) -> dict[str, Any]:
        """An audit of a change; kept (for ``GET /tickets/{id}/audits``) when it has events.
        ``metadata.custom`` of the request is stored as the audit's custom metadata."""
        custom = metadata.get("custom") if isinstance(metadata, Mapping) else None
        audit = {
            "id": audit_id,
            "ticket_id": ticket.id,
            "created_at": iso(ticket.updated_at),
            "author_id": author_id,
            "metadata": {
                "system": {"client": "ticketwarden-emulator", "ip_address": "127.0.0.1"},
                "custom": dict(custom) if isinstance(custom, Mapping) else {},
            },
            "events": events,
            "via": _via("api"),
        }
        if events:
            ticket.audits.append(audit)
        return audit

    # --- the conformance hooks ------------------------------------------------------------------

    def add_ticket(self, ticket: Ticket) -> str:
        """Store a normalized ticket as Zendesk would hold it; creates its requester (with the
        roster user fields) and organization when new."""
        org_id = None
        if ticket.organization is not None:
            org_id = self._org_id(ticket.organization.id)
            if ticket.organization.name:
                self.organizations[org_id]["name"] = ticket.organization.name
        contact = ticket.requester
        requester_id = self._users_by_key.get((contact.email or "").lower()) or (
            self._users_by_key.get(f"external:{contact.id}")
        )
        if requester_id is None:
            requester_id = self.add_user(
                contact.email or f"{contact.id}@customers.example",
                contact.name,
                organization=org_id,
                phone=contact.phone,
                external_id=contact.id,
            )
        elif org_id is not None and self.users[requester_id]["organization_id"] is None:
            self.users[requester_id]["organization_id"] = org_id
        self._next_ticket += 1
        custom: dict[int, Any] = {}
        for name, value in ticket.fields.items():
            if name in fixtures.TICKET_FIELDS:
                custom[fixtures.TICKET_FIELDS[name]] = value
        if ticket.severity is not None:
            tag = next(t for t, n in fixtures.SEVERITY_VALUES.items() if n == int(ticket.severity))
            custom[fixtures.TICKET_FIELDS["severity"]] = tag
        if ticket.resolution_reason:
            custom[fixtures.TICKET_FIELDS["resolution_reason"]] = ticket.resolution_reason
        via = _via("web")
        if ticket.follow_up_of and ticket.follow_up_of.isdigit():
            source = self.tickets.get(int(ticket.follow_up_of))
            via = _via(
                "api",
                {
                    "ticket_id": int(ticket.follow_up_of),
                    "subject": source.subject if source else "",
                },
                "follow_up",
            )
            if source is not None:
                source.followup_ids.append(self._next_ticket)
        record = ZendeskTicket(
            id=self._next_ticket,
            subject=ticket.subject,
            description=ticket.description,
            status=ZENDESK_STATUS[ticket.status],
            priority=ticket.priority.value if ticket.priority else None,
            requester_id=requester_id,
            submitter_id=requester_id,
            organization_id=org_id,
            created_at=ticket.created_at.astimezone(UTC).replace(microsecond=0),
            updated_at=ticket.updated_at.astimezone(UTC).replace(microsecond=0),
            assignee_id=self._agent_id(ticket.assignee) if ticket.assignee else None,
            group_id=self._group_id(ticket.group) if ticket.group else None,
            tags=sorted(ticket.tags),
            custom=custom,
            external_id=None,
            via=via,
        )
        if record.status == "solved" and record.assignee_id is None:
            record.assignee_id = fixtures.AGENT_ID
        self.tickets[record.id] = record
        self._seed_comment(record, ticket.description, True, requester_id, record.created_at)
        for comment in ticket.comments:
            author = requester_id if comment.author_role.value == "customer" else fixtures.AGENT_ID
            at = comment.created_at.astimezone(UTC).replace(microsecond=0)
            self._seed_comment(record, comment.body, comment.public, author, at)
        return str(record.id)

    def _seed_comment(
        self, ticket: ZendeskTicket, body: str, public: bool, author: int, at: datetime
    ) -> None:
        audit_id = self._event_id()
        made = self._comment(ticket, {"body": body, "public": public}, author, audit_id, at)
        audit = self._audit(ticket, author, audit_id, [{k: made[k] for k in _COMMENT_EVENT_KEYS}])
        audit["created_at"] = iso(at)

    def customer_reply(self, ticket_id: str, body: str) -> None:
        """The requester writes a public comment. A pending, on-hold or solved ticket reopens
        (Zendesk's native rule); a reply to a closed ticket becomes a follow-up ticket, as an
        e-mail reply to a closed ticket does."""
        ticket = self._live(int(ticket_id))
        if ticket.status == "closed":
            self._create(
                {
                    "via_followup_source_id": ticket.id,
                    "requester_id": ticket.requester_id,
                    "subject": ticket.subject,
                    "comment": {"body": body, "public": True, "author_id": ticket.requester_id},
                },
                acting=ticket.requester_id,
            )
            return
        self._update(
            ticket,
            {"comment": {"body": body, "public": True, "author_id": ticket.requester_id}},
            acting=ticket.requester_id,
        )

    def add_unknown_field(self, ticket_id: str) -> None:
        """The account gains a custom field no configuration maps; the ticket has a value."""
        if UNKNOWN_FIELD_ID not in self.ticket_fields:
            self.ticket_fields.append(UNKNOWN_FIELD_ID)
        self._live(int(ticket_id)).custom[UNKNOWN_FIELD_ID] = "something new"

    def make_webhook(
        self,
        ticket_id: str,
        kind: EventKind,
        secret: str,
        *,
        delivery_id: str | None = None,
        at: datetime | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A delivery as a trigger's webhook sends it, with the JSON body template our docs give
        administrators, signed ``base64(HMAC-SHA256(secret, timestamp + body))``."""
        sent = (at or self.now()).astimezone(UTC)
        ticket = self.tickets.get(int(ticket_id)) if ticket_id.isdigit() else None
        payload = {
            "ticket_id": ticket_id,
            "event": kind.value,
            "updated_at": iso(ticket.updated_at) if ticket else iso(sent),
            "status": ("deleted" if ticket.deleted else ticket.status) if ticket else "new",
        }
        body = json.dumps(payload).encode()
        stamp = iso(sent)
        signature = base64.b64encode(hmac_sha256(SecretStr(secret), stamp.encode(), body))
        headers = {
            "content-type": "application/json",
            "user-agent": "Zendesk Webhook",
            "X-Zendesk-Webhook-Id": WEBHOOK_ID,
            "X-Zendesk-Webhook-Invocation-Id": delivery_id or self._ulid(),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Signature": signature.decode(),
        }
        return headers, body

    def _ulid(self) -> str:
        return "01" + "".join(self.random.choice(_ULID_ALPHABET) for _ in range(24))

    # --- more test hooks ------------------------------------------------------------------------

    def agent_update(self, ticket_id: str | int, **changes: Any) -> dict[str, Any]:
        """An agent edits the ticket in Zendesk meanwhile (``status``, ``priority``, ``tags``,
        ``additional_tags``, ``remove_tags``, ``custom_fields``, ``group_id``, ``assignee_id``,
        ``subject``, ``comment``): the same rules as the API, ``updated_at`` moves on, triggers
        fire. Raises :class:`ZendeskError` as the API would refuse."""
        agent = self.add_user("agent.smith@example.com", "Agent Smith", role="agent")
        ticket = self._live(int(ticket_id))
        if isinstance(changes.get("comment"), str):
            changes["comment"] = {"body": changes["comment"], "public": True}
        self._update(ticket, changes, acting=agent)
        return self.ticket_json(ticket)

    def delete_ticket(self, ticket_id: str | int) -> None:
        """Delete a ticket: gone from reads, ``"status": "deleted"`` in the incremental export."""
        ticket = self._live(int(ticket_id))
        ticket.deleted = True
        self._touch(ticket)

    def subscribe(self, url: str, secret: str) -> Subscription:
        """Connect a webhook to a trigger on ticket creation and update."""
        subscription = Subscription(url, secret)
        self.subscriptions.append(subscription)
        return subscription

    async def deliver_webhooks(
        self, transport: httpx.AsyncBaseTransport | None = None
    ) -> list[httpx.Response]:
        """POST every queued delivery (oldest first) and empty the queue."""
        pending, self.outbox = self.outbox, []
        return [
            await self.emit(sub.url, ticket_id, kind, sub.secret, transport=transport)
            for sub, ticket_id, kind in pending
        ]

    def _fire(self, ticket: ZendeskTicket, kind: EventKind) -> None:
        for subscription in self.subscriptions:
            self.outbox.append((subscription, str(ticket.id), kind))

    # --- the model of a ticket's life -----------------------------------------------------------

    def _live(self, ticket_id: int) -> ZendeskTicket:
        ticket = self.tickets.get(ticket_id)
        if ticket is None or ticket.deleted:
            raise ZendeskError(404, dict(NOT_FOUND))
        return ticket

    def _custom_values(self, data: Any) -> dict[int, Any]:
        """``[{"id", "value"}]`` (or an ``{id: value}`` mapping from the hooks); ids the account
        has no field for are ignored."""
        items: Iterable[Any]
        if isinstance(data, Mapping):
            items = [{"id": k, "value": v} for k, v in data.items()]
        elif isinstance(data, list):
            items = data
        else:
            raise _bad_request("custom_fields must be an array of {id, value}")
        values: dict[int, Any] = {}
        for item in items:
            if not isinstance(item, Mapping) or "id" not in item:
                raise _bad_request("custom_fields must be an array of {id, value}")
            try:
                field_id = int(item["id"])
            except (TypeError, ValueError):
                continue
            if field_id in self.ticket_fields:
                values[field_id] = item.get("value")
        return values

    def _update(
        self, ticket: ZendeskTicket, data: Mapping[str, Any], *, acting: int
    ) -> dict[str, Any]:
        """Apply an update as Zendesk does; returns the audit. Raises :class:`ZendeskError`."""
        if "safe_update" in data and data.get("updated_stamp"):
            stamp = _parse_time(str(data["updated_stamp"]))
            if stamp != ticket.updated_at:
                raise ZendeskError(409, dict(UPDATE_CONFLICT))
        if ticket.status == "closed":
            raise _invalid("status", "Status: closed prevents ticket update", "ClosedTicket")
        changes: dict[str, tuple[Any, Any]] = {}

        def change(name: str, before: Any, after: Any) -> None:
            if before != after:
                changes[name] = (before, after)

        status = ticket.status
        explicit_status = data.get("status")
        if explicit_status is not None:
            if explicit_status not in STATUSES:
                raise _invalid("status", f"Status: {explicit_status} is not a valid status")
            if explicit_status == "new" and ticket.status != "new":
                raise _invalid("status", "Status: cannot be set back to New")
            if explicit_status == "closed" and ticket.status != "solved":
                raise _invalid("status", "Status: closed is only reachable from solved")
            status = explicit_status
        priority = ticket.priority
        if data.get("priority") is not None:  # a priority can never be reset to none
            if data["priority"] not in PRIORITIES:
                raise _invalid("priority", f"Priority: {data['priority']} is not valid")
            priority = data["priority"]
        custom = dict(ticket.custom)
        if "custom_fields" in data:
            custom.update(self._custom_values(data["custom_fields"]))
        tags = list(ticket.tags)
        if "tags" in data:
            tags = list(dict.fromkeys(str(t) for t in data["tags"] or ()))
        for tag in data.get("additional_tags") or ():
            if str(tag) not in tags:
                tags.append(str(tag))
        removed = {str(t) for t in data.get("remove_tags") or ()}
        tags = sorted(t for t in tags if t not in removed)
        group_id = data.get("group_id", ticket.group_id)
        assignee_id = data.get("assignee_id", ticket.assignee_id)
        subject = str(data["subject"]) if data.get("subject") else ticket.subject
        comment = data.get("comment")
        if comment is not None and not isinstance(comment, Mapping):
            raise _bad_request("comment must be an object")
        if comment is not None and not (comment.get("body") or comment.get("html_body")):
            raise _invalid("comment", "Comment: body cannot be blank")
        author = int(comment.get("author_id") or acting) if comment else acting
        author_role = self.users.get(author, {}).get("role", "end-user")
        if explicit_status is None:
            if status == "new" and assignee_id is not None and ticket.assignee_id is None:
                status = "open"
            if comment and author_role == "end-user" and status in ("pending", "hold", "solved"):
                status = "open"
        if status == "solved" and assignee_id is None:
            acting_role = self.users.get(acting, {}).get("role", "end-user")
            assignee_id = acting if acting_role != "end-user" else fixtures.AGENT_ID
        change("status", ticket.status, status)
        change("priority", ticket.priority, priority)
        change("tags", ticket.tags, tags)
        change("group_id", ticket.group_id, group_id)
        change("assignee_id", ticket.assignee_id, assignee_id)
        change("subject", ticket.subject, subject)
        for field_id in sorted(set(custom) | set(ticket.custom)):
            change(str(field_id), ticket.custom.get(field_id), custom.get(field_id))
        audit_id = self._event_id()
        events: list[dict[str, Any]] = []
        if comment is not None or changes:
            self._touch(ticket)
        if comment is not None:
            made = self._comment(ticket, comment, author, audit_id, ticket.updated_at)
            events.append({k: made[k] for k in _COMMENT_EVENT_KEYS})
        ticket.status, ticket.priority, ticket.tags = status, priority, tags
        ticket.group_id, ticket.assignee_id, ticket.subject = group_id, assignee_id, subject
        ticket.custom = custom
        for name, (before, after) in changes.items():
            events.append(
                {
                    "id": self._event_id(),
                    "type": "Change",
                    "value": _event_value(after),
                    "field_name": name,
                    "previous_value": _event_value(before),
                }
            )
        audit = self._audit(ticket, acting, audit_id, events, data.get("metadata"))
        if events:
            self._fire(ticket, EventKind.UPDATED)
        return audit

    def _create(self, data: Mapping[str, Any], *, acting: int) -> tuple[ZendeskTicket, Any]:
        """Create a ticket as ``POST /tickets`` does; returns it and its audit."""
        comment = data.get("comment") or {}
        if not isinstance(comment, Mapping):
            raise _bad_request("comment must be an object")
        if not (comment.get("body") or comment.get("html_body")) and data.get("description"):
            comment = {"body": data["description"], **comment}
        if not (comment.get("body") or comment.get("html_body")):
            raise _invalid("description", "Description: cannot be blank")
        requester_id = data.get("requester_id")
        requester = data.get("requester")
        if requester_id is None and isinstance(requester, Mapping) and requester.get("email"):
            requester_id = self.add_user(str(requester["email"]), str(requester.get("name", "")))
        requester_id = int(requester_id) if requester_id is not None else acting
        if requester_id not in self.users:
            raise _invalid("requester", "Requester: is invalid")
        status = data.get("status") or "new"
        if status not in STATUSES or status == "closed":
            raise _invalid("status", f"Status: {status} is not valid for a new ticket")
        priority = data.get("priority")
        if priority is not None and priority not in PRIORITIES:
            raise _invalid("priority", f"Priority: {priority} is not valid")
        source = None
        source_id = data.get("via_followup_source_id")
        if source_id is not None:
            candidate = self.tickets.get(int(source_id))
            # "The parameter only works with closed tickets. It has no effect with other tickets."
            if candidate is not None and not candidate.deleted and candidate.status == "closed":
                source = candidate
        tags: list[str] = list(source.tags) if source is not None else []
        if "tags" in data:
            tags = [str(t) for t in data["tags"] or ()]
        now = self.now()
        self._next_ticket += 1
        assignee_id = data.get("assignee_id")
        if assignee_id is not None and status == "new":
            status = "open"
        if status == "solved" and assignee_id is None:
            assignee_id = acting
        ticket = ZendeskTicket(
            id=self._next_ticket,
            subject=str(data.get("subject") or ""),
            description="",
            status=status,
            priority=priority,
            requester_id=requester_id,
            submitter_id=acting,
            organization_id=data.get("organization_id")
            or self.users[requester_id]["organization_id"],
            created_at=now,
            updated_at=now,
            assignee_id=assignee_id,
            group_id=data.get("group_id"),
            type=data.get("type"),
            tags=sorted(dict.fromkeys(tags)),
            custom=self._custom_values(data.get("custom_fields") or []),
            external_id=data.get("external_id"),
        )
        if source is not None:
            ticket.via = _via(
                "api", {"ticket_id": source.id, "subject": source.subject}, "follow_up"
            )
            source.followup_ids.append(ticket.id)
        audit_id = self._event_id()
        author = int(comment.get("author_id") or acting)
        made = self._comment(ticket, comment, author, audit_id, now)
        ticket.description = made["body"]
        self.tickets[ticket.id] = ticket
        events = [{k: made[k] for k in _COMMENT_EVENT_KEYS}] + [
            {
                "id": self._event_id(),
                "type": "Create",
                "value": None if value is None else str(value),
                "field_name": name,
            }
            for name, value in (
                ("subject", ticket.subject),
                ("requester_id", ticket.requester_id),
                ("priority", ticket.priority),
                ("type", ticket.type),
                ("status", ticket.status),
                ("organization_id", ticket.organization_id),
                ("brand_id", BRAND_ID),
                ("ticket_form_id", TICKET_FORM_ID),
                ("custom_status_id", CUSTOM_STATUS_IDS[ticket.status]),
            )
        ]
        audit = self._audit(ticket, acting, audit_id, events, data.get("metadata"))
        audit["via"] = ticket.via
        self._fire(ticket, EventKind.CREATED)
        return ticket, audit

    # --- routes: tickets ------------------------------------------------------------------------

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            raise _bad_request("The request body is not valid JSON", "InvalidJSON") from None
        if not isinstance(data, dict):
            raise _bad_request("The request body must be a JSON object", "InvalidJSON")
        return data

    def _answer(self, call: Callable[[], Response]) -> Response:
        try:
            return call()
        except ZendeskError as error:
            return self.json(error.body, error.status)

    async def show_ticket(self, request: Request) -> Response:
        def answer() -> Response:
            ticket = self._live(request.path_params["ticket_id"])
            body: dict[str, Any] = {"ticket": self.ticket_json(ticket)}
            include = request.query_params.get("include")
            body.update(self._sideloads([ticket], include, ("users", "organizations", "groups")))
            return self.json(body)

        return self._answer(answer)

    async def show_many_tickets(self, request: Request) -> Response:
        ids = [int(i) for i in re.findall(r"\d+", request.query_params.get("ids", ""))]
        if len(ids) > 100:
            return self.json(
                {
                    "error": "TooManyValues",
                    "description": "Parameter ids cannot specify more than 100 values",
                    "max_count": 100,
                },
                400,
            )
        found = [self.tickets[i] for i in ids if i in self.tickets and not self.tickets[i].deleted]
        body: dict[str, Any] = {
            "tickets": [self.ticket_json(t) for t in found],
            "next_page": None,
            "previous_page": None,
            "count": len(found),
        }
        include = request.query_params.get("include")
        body.update(self._sideloads(found, include, ("users", "organizations", "groups")))
        return self.json(body)

    async def list_tickets(self, request: Request) -> Response:
        params = request.query_params
        rows = [t for t in self.tickets.values() if not t.deleted]
        external_id = params.get("external_id")
        if external_id is not None:
            rows = [t for t in rows if t.external_id == external_id]
        rows.sort(key=lambda t: t.id)
        return self._answer(
            lambda: self.json(
                self._paged(
                    request, "tickets", [self.ticket_json(t, fields=False) for t in rows], "tickets"
                )
            )
        )

    def _paged(
        self, request: Request, path: str, items: list[dict[str, Any]], key: str
    ) -> dict[str, Any]:
        """Cursor pagination (``page[size]``/``page[after]``) or offset (``page``/``per_page``)."""
        params = request.query_params
        if "page[size]" in params or "page[after]" in params:
            size = self._int(params.get("page[size]"), 100, 1, 100)
            start = 0
            after = params.get("page[after]")
            if after:
                start = self._cursor_index(after)
            page = items[start : start + size]
            more = start + size < len(items)
            after_cursor = _b64(json.dumps({"o": "id", "v": start + len(page)}))
            before_cursor = _b64(json.dumps({"o": "-id", "v": start}))
            query = f"page%5Bsize%5D={size}"
            return {
                key: page,
                "meta": {
                    "has_more": more,
                    "after_cursor": after_cursor if page else None,
                    "before_cursor": before_cursor if page else None,
                },
                "links": {
                    "prev": self._url(f"{path}.json?page%5Bbefore%5D={before_cursor}&{query}")
                    if page
                    else None,
                    "next": self._url(f"{path}.json?page%5Bafter%5D={after_cursor}&{query}")
                    if page
                    else None,
                },
            }
        per_page = self._int(params.get("per_page"), 100, 1, 100)
        number = self._int(params.get("page"), 1, 1, 10**6)
        page = items[(number - 1) * per_page : number * per_page]
        return {
            key: page,
            "next_page": self._url(f"{path}.json?page={number + 1}&per_page={per_page}")
            if number * per_page < len(items)
            else None,
            "previous_page": self._url(f"{path}.json?page={number - 1}&per_page={per_page}")
            if number > 1
            else None,
            "count": len(items),
        }

    def _cursor_index(self, token: str) -> int:
        decoded = _unb64(token)
        try:
            value = json.loads(decoded or "")["v"]
            return max(0, int(value))
        except (ValueError, KeyError, TypeError):
            raise _bad_request(
                "page[after] is not a valid cursor", "InvalidPaginationParameter"
            ) from None

    @staticmethod
    def _int(value: str | None, default: int, low: int, high: int) -> int:
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise _bad_request(f"{value!r} is not a number") from None
        return min(max(number, low), high)

    async def create_ticket(self, request: Request) -> Response:
        try:
            data = (await self._body(request)).get("ticket")
            if not isinstance(data, dict):
                raise _bad_request("Missing the ticket object", "InvalidValue")
            ticket, audit = self._create(data, acting=fixtures.AGENT_ID)
        except ZendeskError as error:
            return self.json(error.body, error.status)
        return self.json(
            {"ticket": self.ticket_json(ticket), "audit": audit},
            201,
            {"location": self._url(f"tickets/{ticket.id}.json")},
        )

    async def update_ticket(self, request: Request) -> Response:
        try:
            ticket = self._live(request.path_params["ticket_id"])
            data = (await self._body(request)).get("ticket")
            if not isinstance(data, dict):
                raise _bad_request("Missing the ticket object", "InvalidValue")
            audit = self._update(ticket, data, acting=fixtures.AGENT_ID)
        except ZendeskError as error:
            return self.json(error.body, error.status)
        return self.json({"ticket": self.ticket_json(ticket), "audit": audit})

    async def destroy_ticket(self, request: Request) -> Response:
        try:
            self.delete_ticket(request.path_params["ticket_id"])
        except ZendeskError as error:
            return self.json(error.body, error.status)
        return Response(status_code=204)

    async def list_comments(self, request: Request) -> Response:
        def answer() -> Response:
            ticket = self._live(request.path_params["ticket_id"])
            comments = list(ticket.comments)
            if request.query_params.get("sort") == "-created_at" or (
                request.query_params.get("sort_order") == "desc"
            ):
                comments.reverse()
            body = self._paged(request, f"tickets/{ticket.id}/comments", comments, "comments")
            if "users" in (request.query_params.get("include") or "").split(","):
                authors = dict.fromkeys(c["author_id"] for c in body["comments"])
                body["users"] = [self.users[a] for a in authors if a in self.users]
            return self.json(body)

        return self._answer(answer)

    async def list_audits(self, request: Request) -> Response:
        def answer() -> Response:
            ticket = self._live(request.path_params["ticket_id"])
            path = f"tickets/{ticket.id}/audits"
            return self.json(self._paged(request, path, list(ticket.audits), "audits"))

        return self._answer(answer)

    async def no_such_endpoint(self, request: Request) -> Response:
        return self.json({"error": "InvalidEndpoint", "description": "Not found"}, 404)

    # --- routes: incremental export -------------------------------------------------------------

    def _export_cursor(self, stamp: int, ticket_id: int) -> str:
        return _b64(f"{stamp}.0||{ticket_id}|")  # the shape of Zendesk's own cursors

    def _export_position(self, cursor: str) -> tuple[int, int]:
        decoded = _unb64(cursor)
        match = re.fullmatch(r"(\d+)(?:\.\d+)?\|\|(\d+)\|", decoded or "")
        if match is None:
            raise _bad_request("cursor is not a valid cursor", "InvalidPaginationParameter")
        return int(match.group(1)), int(match.group(2))

    async def incremental_tickets(self, request: Request) -> Response:
        remaining, reset, over = self.export_limit.hit(self.clock.monotonic())
        limit_header = {
            "zendesk-ratelimit-incremental-exports": (
                f"total={self.export_limit.limit}; remaining={remaining}; resets={reset}"
            )
        }
        if over:
            return self.json(
                {
                    "error": "APIRateLimitExceeded",
                    "description": "Number of allowed incremental export API requests per "
                    "minute exceeded",
                },
                429,
                {**limit_header, "retry-after": str(reset)},
            )
        try:
            body = self._export_page(request)
        except ZendeskError as error:
            return self.json(error.body, error.status, limit_header)
        return self.json(body, 200, limit_header)

    def _export_page(self, request: Request) -> dict[str, Any]:
        params = request.query_params
        now = int(self.clock.time())
        cursor = params.get("cursor")
        if cursor:
            position = self._export_position(cursor)
        elif params.get("start_time"):
            start = self._int(params.get("start_time"), 0, 0, 2**62)
            if start > now - 60:
                raise ZendeskError(
                    422,
                    {
                        "error": "InvalidValue",
                        "description": "Too recent start_time. Use a start_time older than "
                        "1 minute",
                    },
                )
            # "all the items that were created or changed on or after the start time"
            position = (start - 1, 2**62) if start > 0 else (0, 0)
        else:
            raise _bad_request("start_time or cursor is required", "InvalidValue")
        per_page = self._int(params.get("per_page"), 1000, 1, 1000)
        exclude_deleted = params.get("exclude_deleted") in ("true", "1")
        horizon = now - self.export_lag_seconds if self.export_lag_seconds else None
        rows = sorted(
            (
                t
                for t in self.tickets.values()
                if (int(t.updated_at.timestamp()), t.id) > position
                and (horizon is None or int(t.updated_at.timestamp()) <= horizon)
                and not (exclude_deleted and t.deleted)
            ),
            key=lambda t: (int(t.updated_at.timestamp()), t.id),
        )
        page = rows[:per_page]
        before: str | None = None
        after = self._export_cursor(*position)
        if page:
            last = page[-1]
            before = after
            after = self._export_cursor(int(last.updated_at.timestamp()), last.id)
        extra = "".join(
            f"&{k}={_quote(params[k])}"
            for k in ("per_page", "include", "exclude_deleted")
            if k in params
        )
        tickets = []
        for t in page:
            item = self.ticket_json(t, fields=False)
            item["generated_timestamp"] = int(t.updated_at.timestamp())
            tickets.append(item)
        body: dict[str, Any] = {
            "tickets": tickets,
            "after_url": self._url(
                f"incremental/tickets/cursor.json?cursor={_quote(after)}{extra}"
            ),
            "after_cursor": after,
            "before_url": self._url(
                f"incremental/tickets/cursor.json?cursor={_quote(before)}{extra}"
            )
            if before
            else None,
            "before_cursor": before,
            "end_of_stream": len(rows) <= per_page,
        }
        body.update(
            self._sideloads(page, params.get("include"), ("users", "organizations", "groups"))
        )
        return body

    # --- routes: search -------------------------------------------------------------------------

    def _records(self, kind: str) -> list[dict[str, Any]]:
        if kind == "ticket":
            return [
                self.ticket_json(t, fields=False) for t in self.tickets.values() if not t.deleted
            ]
        if kind == "user":
            return list(self.users.values())
        if kind == "organization":
            return list(self.organizations.values())
        if kind == "group":
            return list(self.groups.values())
        return []

    def _matches(self, kind: str, record: Mapping[str, Any], term: SearchTerm) -> bool:
        result = self._term_matches(kind, record, term)
        return result != term.negated

    def _term_matches(self, kind: str, record: Mapping[str, Any], term: SearchTerm) -> bool:
        key = term.key
        if key == "type":
            return term.op == ":" and term.value.lower() == kind
        if key in ("order_by", "sort"):
            return True
        if key is None:
            return _text_matches(term, self._texts(kind, record))
        if key in ("created", "updated", "created_at", "updated_at"):
            stamp = _parse_time(str(record.get(key if "_" in key else f"{key}_at") or ""))
            return _time_matches(term, stamp)
        if key in ("tags", "tag"):
            return _value_matches(term, record.get("tags") or [])
        if kind == "ticket":
            return self._ticket_term(record, term, key)
        if kind == "user":
            return self._user_term(record, term, key)
        if kind == "organization":
            if key in ("name", "external_id", "details", "notes"):
                return _value_matches(term, [record.get(key)])
            fields = record.get("organization_fields") or {}
            return key in fields and _field_value_matches(term, fields[key])
        if kind == "group":
            return key == "name" and _value_matches(term, [record.get("name")])
        return False

    def _texts(self, kind: str, record: Mapping[str, Any]) -> list[str]:
        if kind == "ticket":
            ticket = self.tickets[record["id"]]
            return [ticket.subject, ticket.description, *(c["body"] for c in ticket.comments)]
        return [str(record.get(k) or "") for k in ("name", "email", "details", "notes")]

    def _user_values(self, user_id: int | None) -> list[Any]:
        user = self.users.get(user_id) if user_id is not None else None
        if user is None:
            return [None]
        return [user["id"], user["name"], user["email"]]

    def _org_values(self, org_id: int | None) -> list[Any]:
        org = self.organizations.get(org_id) if org_id is not None else None
        if org is None:
            return [None]
        return [org["id"], org["name"], org["external_id"]]

    def _ticket_term(self, record: Mapping[str, Any], term: SearchTerm, key: str) -> bool:
        if key == "status":
            return _ordered_matches(term, record["status"], STATUSES)
        if key == "priority":
            return _ordered_matches(term, record["priority"], PRIORITIES)
        if key == "ticket_type":
            return _value_matches(term, [record["type"]])
        if key in ("subject", "description"):
            return _text_matches(term, [str(record[key] or "")])
        if key in ("requester", "submitter", "assignee"):
            return _value_matches(term, self._user_values(record[f"{key}_id"]))
        if key == "organization":
            return _value_matches(term, self._org_values(record["organization_id"]))
        if key == "group":
            group = self.groups.get(record["group_id"]) if record["group_id"] else None
            return _value_matches(term, [group["id"], group["name"]] if group else [None])
        if key in ("external_id", "custom_status_id"):
            return _value_matches(term, [record[key]])
        if key.startswith("custom_field_") and key[13:].isdigit():
            values = {f["id"]: f["value"] for f in record["custom_fields"]}
            return int(key[13:]) in values and _value_matches(term, [values[int(key[13:])]])
        return False

    def _user_term(self, record: Mapping[str, Any], term: SearchTerm, key: str) -> bool:
        if key in ("name", "email", "role", "external_id", "phone"):
            return _value_matches(term, [record.get(key)])
        if key == "organization":
            return _value_matches(term, self._org_values(record.get("organization_id")))
        fields = record.get("user_fields") or {}
        return key in fields and _field_value_matches(term, fields[key])

    def _search(self, query: str, kinds: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
        terms = parse_query(query)
        wanted_types = {t.value.lower() for t in terms if t.key == "type" and not t.negated}
        found: list[tuple[str, dict[str, Any]]] = []
        for kind in kinds:
            if wanted_types and kind not in wanted_types:
                continue
            for record in self._records(kind):
                if all(self._matches(kind, record, term) for term in terms):
                    found.append((kind, record))
        return found

    async def search(self, request: Request) -> Response:
        def answer() -> Response:
            params = request.query_params
            query = params.get("query") or ""
            found = self._search(query, ("ticket", "user", "organization", "group"))
            sort_by = params.get("sort_by") or ""
            descending = params.get("sort_order", "desc") == "desc"
            if sort_by in ("created_at", "updated_at"):
                found.sort(key=lambda kr: (str(kr[1][sort_by]), kr[1]["id"]), reverse=descending)
            elif sort_by == "status":
                order = {s: i for i, s in enumerate(STATUSES)}
                found.sort(
                    key=lambda kr: order.get(str(kr[1].get("status")), 0), reverse=descending
                )
            per_page = self._int(params.get("per_page"), 100, 1, 100)
            number = self._int(params.get("page"), 1, 1, 10**6)
            if (number - 1) * per_page >= SEARCH_RESULT_LIMIT:
                raise ZendeskError(
                    422,
                    {
                        "error": "invalid",
                        "description": "Invalid search: Requested response size was greater "
                        "than Search Response Limits",
                    },
                )
            page = found[(number - 1) * per_page : number * per_page]
            base = f"search.json?query={_quote(query)}&per_page={per_page}"
            for k in ("sort_by", "sort_order"):
                if k in params:
                    base += f"&{k}={params[k]}"
            total = min(len(found), SEARCH_RESULT_LIMIT)
            return self.json(
                {
                    "results": [{**record, "result_type": kind} for kind, record in page],
                    "facets": None,
                    "next_page": self._url(f"{base}&page={number + 1}")
                    if number * per_page < total
                    else None,
                    "previous_page": self._url(f"{base}&page={number - 1}") if number > 1 else None,
                    "count": len(found),
                }
            )

        return self._answer(answer)

    async def search_export(self, request: Request) -> Response:
        _, reset, over = self.search_export_limit.hit(self.clock.monotonic())
        if over:
            return self.json(
                {
                    "error": "APIRateLimitExceeded",
                    "description": "Number of allowed search export API requests per minute "
                    "exceeded",
                },
                429,
                {"retry-after": str(reset)},
            )

        def answer() -> Response:
            params = request.query_params
            kind = params.get("filter[type]")
            if kind not in ("ticket", "user", "organization", "group"):
                raise _bad_request(
                    "filter[type] must be one of ticket, user, organization, group", "invalid"
                )
            query = params.get("query") or ""
            if any(t.key == "type" for t in parse_query(query)):
                raise _bad_request(
                    "Searches with type in the query string are not supported; use filter[type]",
                    "invalid",
                )
            found = [record for _, record in self._search(query, (kind,))]
            found.sort(key=lambda r: (str(r["created_at"]), r["id"]))
            size = self._int(params.get("page[size]"), 100, 1, 1000)
            start = self._cursor_index(params["page[after]"]) if params.get("page[after]") else 0
            page = found[start : start + size]
            more = start + size < len(found)
            after = _b64(json.dumps({"o": "created_at", "v": start + len(page)}))
            next_url = self._url(
                f"search/export.json?filter%5Btype%5D={kind}&page%5Bafter%5D={_quote(after)}"
                f"&page%5Bsize%5D={size}&query={_quote(query)}"
            )
            return self.json(
                {
                    "results": [{**record, "result_type": kind} for record in page],
                    "facets": None,
                    "meta": {"has_more": more, "after_cursor": after, "before_cursor": None},
                    "links": {"prev": None, "next": next_url if more else None},
                }
            )

        return self._answer(answer)

    # --- routes: users, organizations, groups ---------------------------------------------------

    def _one(self, table: Mapping[int, dict[str, Any]], key: str, item_id: int) -> Response:
        record = table.get(item_id)
        if record is None:
            return self.json(dict(NOT_FOUND), 404)
        return self.json({key: record})

    def _many(self, request: Request, table: Mapping[int, dict[str, Any]], key: str) -> Response:
        ids = [int(i) for i in re.findall(r"\d+", request.query_params.get("ids", ""))]
        found = [table[i] for i in ids if i in table]
        return self.json(
            {key: found, "next_page": None, "previous_page": None, "count": len(found)}
        )

    async def show_user(self, request: Request) -> Response:
        return self._one(self.users, "user", request.path_params["user_id"])

    async def show_me(self, request: Request) -> Response:
        return self._one(self.users, "user", fixtures.AGENT_ID)

    async def show_many_users(self, request: Request) -> Response:
        return self._many(request, self.users, "users")

    async def show_organization(self, request: Request) -> Response:
        return self._one(self.organizations, "organization", request.path_params["org_id"])

    async def show_many_organizations(self, request: Request) -> Response:
        return self._many(request, self.organizations, "organizations")

    async def show_group(self, request: Request) -> Response:
        return self._one(self.groups, "group", request.path_params["group_id"])


_COMMENT_EVENT_KEYS = (
    "id",
    "type",
    "author_id",
    "body",
    "html_body",
    "plain_body",
    "public",
    "attachments",
    "audit_id",
)


def _event_value(value: Any) -> Any:
    """Audit events carry values as text (ids too), tag changes as lists, unset as null."""
    if value is None or isinstance(value, list):
        return value
    return str(value).lower() if isinstance(value, bool) else str(value)


def _quote(value: str) -> str:
    return quote(value, safe="")


__all__ = [
    "EXPORT_RATE_LIMIT",
    "SearchTerm",
    "Subscription",
    "ZendeskEmulator",
    "ZendeskError",
    "ZendeskTicket",
    "parse_query",
]
