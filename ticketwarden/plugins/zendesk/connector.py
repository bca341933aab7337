"""The Zendesk Support connector (API v2).

Endpoints, as Zendesk's API reference describes them (paths relative to the desk's origin,
``https://{subdomain}.zendesk.com`` or an emulator):

- ``GET /api/v2/tickets/{id}.json?include=users,organizations,groups`` — a ticket;
- ``GET /api/v2/tickets/{id}/comments.json?include=users`` — its comments (cursor-paged);
- ``PUT /api/v2/tickets/{id}.json`` — every write, with ``safe_update`` and ``updated_stamp``;
- ``PUT``/``DELETE /api/v2/tickets/{id}/tags.json`` — tags, with
  ``options.tag_method = "tags_endpoint"``;
- ``POST /api/v2/tickets.json`` — follow-ups (``via_followup_source_id``), and
  ``GET /api/v2/tickets.json?external_id=…`` to find one whose response was lost;
- ``GET /api/v2/incremental/tickets/cursor.json`` — the change feed (10 requests a minute);
- ``GET /api/v2/search/export.json`` — candidates (``filter[type]=ticket``) and authorized
  contacts (``filter[type]=user``);
- ``GET /api/v2/organizations.json`` — authorized contacts kept in organization fields;
- ``GET /api/v2/users/me.json`` — the API user's id, once, when ``options.agent_id`` is unset.

Design choices (each explained where it is implemented):

* **Reads cost two requests** — the ticket with its sideloads, then its comments (one more per
  further 100 comments). Zendesk's show-ticket endpoint returns no comments and the comments
  endpoint returns no ticket, so two is the floor.
* **One safe update per evaluation.** :meth:`ZendeskConnector.apply` folds every field change
  of one evaluation and its first comment into a single ``PUT`` with ``safe_update`` (one
  request, one audit, one trigger run); each further comment and a close after solving take
  one more. A 409 raises :class:`~ticketwarden.core.errors.ConflictError`: the caller re-reads
  and re-evaluates — nothing is retried blindly or overwritten.
* **A PUT carrying a comment is not idempotent**: it is sent with ``idempotent=False`` through
  :func:`~ticketwarden.core.http.create_once`, which, after a timeout, looks for the comment
  (same author, same body, created after the stamp the update was based on) before sending
  again.
* **The incremental export has its own client** (its own request budget of
  ``options.incremental_requests_per_minute``), so its low limit neither slows ticket reads
  nor is overrun by them, and a 429 from it holds only the change feed.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Final, Literal

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
    NotFoundError,
    ProtocolError,
    RejectedError,
    TicketwardenError,
)
from ticketwarden.core.http import (
    BasicCredentials,
    ClientStats,
    DeskClient,
    RateBudget,
    create_once,
    paginate_cursor,
    paginate_links,
)
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
from ticketwarden.plugins.zendesk.search import search_field_key, ticket_search_query

__all__ = ["ZENDESK_STATUSES", "ZendeskConnector", "ZendeskOptions", "zendesk_time"]

ZENDESK_STATUSES: Final[Mapping[str, Status]] = {
    "new": Status.NEW,
    "open": Status.OPEN,
    "pending": Status.WAITING_ON_CUSTOMER,
    "hold": Status.ON_HOLD,
    "solved": Status.RESOLVED,
    "closed": Status.CLOSED,
}
"""Zendesk's built-in statuses (with custom ticket statuses: the status *categories*)."""

_STATUS_VALUES: Final[Mapping[Status, str]] = {v: k for k, v in ZENDESK_STATUSES.items()}

_SEVERITY_OF_PRIORITY: Final[Mapping[str, int]] = {"urgent": 1, "high": 2, "normal": 3, "low": 4}
"""Severity read from the native priority when ``fields.severity = "native:priority"`` and no
``severity_values`` are configured."""

TICKET_SIDELOADS: Final = "users,organizations,groups"
COMMENTS_PAGE_SIZE: Final = 100  # the comments endpoint's maximum
_START_PREFIX: Final = "start_time:"
_TICKET_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_PROTECTED_NATIVE: Final = frozenset(
    {
        "id",
        "url",
        "status",
        "custom_status_id",
        "tags",
        "additional_tags",
        "remove_tags",
        "comment",
        "custom_fields",
        "fields",
        "safe_update",
        "updated_stamp",
        "requester_id",
        "submitter_id",
        "via",
        "created_at",
        "updated_at",
    }
)
"""Native fields ``set_field`` must never write: state the connector manages itself."""


class ZendeskOptions(BaseModel):
    """``options`` of a Zendesk desk in ``ticketwarden.toml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_page: int = Field(
        1000, ge=1, le=1000, description="tickets per page of the incremental export (max 1000)"
    )
    incremental_requests_per_minute: float = Field(
        10.0, gt=0, description="the incremental export's own limit (Zendesk: 10 a minute)"
    )
    search_page_size: int = Field(100, ge=1, le=1000, description="page[size] of search export")
    agent_id: int | None = Field(
        None,
        description="author of ticketwarden's comments and the user whose API comments read as "
        "'system'; default: the API user (looked up once through /users/me.json)",
    )
    tag_method: Literal["update", "tags_endpoint"] = Field(
        "update",
        description="'update': additional_tags/remove_tags inside the ticket update (checked "
        "against the response); 'tags_endpoint': PUT/DELETE /tickets/{id}/tags.json",
    )
    followups_only_of_closed: bool = Field(
        False,
        description="refuse create_follow_up for tickets that are not closed (Zendesk links "
        "follow-ups to closed tickets only; otherwise the link is kept in a tag)",
    )
    follow_up_tag_prefix: str = Field(
        "tw_follow_up_of_",
        pattern=r"^[a-z0-9_-]+$",
        description="tag linking a follow-up to a ticket that was not closed",
    )
    create_settle_seconds: float = Field(
        2.0, ge=0, description="wait after a timed-out create before looking for it"
    )


# --- small readers of Zendesk JSON ----------------------------------------------------------------


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 time, got {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:  # Zendesk's times are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment


def zendesk_time(at: datetime) -> str:
    """A datetime the way Zendesk writes ``updated_at``: ``2026-11-23T08:00:00Z``.

    Zendesk's timestamps have whole seconds, so a ticket's ``updated_at`` read, parsed and
    written back with this is the exact ``updated_stamp`` a safe update needs.
    """
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _id_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _next_link(body: Any, response: httpx.Response) -> str | None:
    """The next page of a Zendesk list: cursor paging (``meta.has_more``, ``meta.after_cursor``,
    ``links.next``) or offset paging (``next_page``).

    With cursor paging the next page is this page's URL with ``page[after]`` set to
    ``after_cursor``: it keeps every parameter (``include=users`` among them) whether or not
    the server's ``links.next`` repeats them.
    """
    if not isinstance(body, dict):
        return None
    meta = body.get("meta")
    if isinstance(meta, dict) and "has_more" in meta:
        if not meta.get("has_more"):
            return None
        cursor = meta.get("after_cursor")
        if cursor:
            return str(response.request.url.copy_set_param("page[after]", str(cursor)))
        links = body.get("links")
        following = links.get("next") if isinstance(links, dict) else None
        if following:
            return str(following)
        raise ValueError("has_more without an after_cursor or a next link")
    following = body.get("next_page")
    return str(following) if following else None


def _export_cursor(body: Any) -> str | None:
    meta = body["meta"]
    if not meta.get("has_more"):
        return None
    cursor = meta.get("after_cursor")
    return str(cursor) if cursor else None


@dataclass(frozen=True)
class _Sideloads:
    """Records sideloaded next to a ticket (``include=users,organizations,groups``)."""

    users: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    organizations: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, body: Any, extra_users: Iterable[Mapping[str, Any]] = ()) -> _Sideloads:
        def index(items: Any) -> dict[int, Mapping[str, Any]]:
            found: dict[int, Mapping[str, Any]] = {}
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict) and isinstance(item.get("id"), int):
                    found[item["id"]] = item
            return found

        users = index(body.get("users") if isinstance(body, dict) else None)
        users.update(index(list(extra_users)))
        organizations = index(body.get("organizations") if isinstance(body, dict) else None)
        return cls(users=users, organizations=organizations)


# --- one safe update ---------------------------------------------------------------------------


@dataclass
class _Update:
    """One ``PUT /api/v2/tickets/{id}.json``: what it sets and which actions it reports."""

    fields: dict[str, Any] = field(default_factory=dict)
    custom: dict[int, Any] = field(default_factory=dict)
    add_tags: dict[str, None] = field(default_factory=dict)  # ordered sets
    remove_tags: dict[str, None] = field(default_factory=dict)
    comment: AddComment | None = None
    riders: list[int] = field(default_factory=list)
    tag_checks: dict[int, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)

    def add(self, tags: Iterable[str]) -> None:
        for tag in tags:
            self.remove_tags.pop(tag, None)
            self.add_tags[tag] = None

    def remove(self, tags: Iterable[str]) -> None:
        for tag in tags:
            self.add_tags.pop(tag, None)
            self.remove_tags[tag] = None

    def has_changes(self, *, with_tags: bool = True) -> bool:
        tags = bool(self.add_tags or self.remove_tags) and with_tags
        return bool(self.fields or self.custom or self.comment or tags)

    def body(self, stamp: str, author_id: int | None, *, with_tags: bool) -> dict[str, Any]:
        """``{"ticket": {...}}`` as Zendesk's Update Ticket takes it."""
        ticket: dict[str, Any] = dict(self.fields)
        if self.custom:
            ticket["custom_fields"] = [{"id": k, "value": v} for k, v in self.custom.items()]
        if with_tags and self.add_tags:
            ticket["additional_tags"] = list(self.add_tags)
        if with_tags and self.remove_tags:
            ticket["remove_tags"] = list(self.remove_tags)
        if self.comment is not None:
            comment: dict[str, Any] = {"body": self.comment.body, "public": self.comment.public}
            if author_id is not None:
                comment["author_id"] = author_id
            ticket["comment"] = comment
        ticket["safe_update"] = True
        ticket["updated_stamp"] = stamp
        return {"ticket": ticket}


class _Refused(Exception):
    """An action that cannot be carried out as configured (reported ``failed``, never sent)."""


# --- the connector -----------------------------------------------------------------------------


class ZendeskConnector(Connector):
    """Zendesk Support: reads, the incremental change feed, search, every action, webhooks and
    the authorized-contact roster.

    Authentication is ``DeskSecrets.credentials``: :class:`BasicCredentials` with user name
    ``{email}/token`` and the API token as password, or a ``BearerToken`` (OAuth).
    ``DeskConfig.base_url`` is the desk's origin, ``https://{subdomain}.zendesk.com`` (see
    :meth:`base_url_for`) or an emulator's.
    """

    changes_are_complete: ClassVar[bool] = False  # the export carries no comments
    name: ClassVar[str] = "zendesk"
    capabilities: ClassVar[frozenset[str]] = EVERY_CAPABILITY
    Options: ClassVar[type[BaseModel]] = ZendeskOptions

    def __init__(
        self,
        config: DeskConfig,
        secrets: DeskSecrets | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        if httpx.URL(config.base_url).path.rstrip("/").endswith("/api/v2"):
            raise ValueError(
                f"{config.base_url!r}: base_url is the desk's origin, e.g. "
                "https://acme.zendesk.com, without /api/v2"
            )
        super().__init__(config, secrets, runtime)
        options = self.opts
        self._author_id: int | None = options.agent_id
        # The incremental export allows 10 requests a minute per account, far below the
        # account's general limit. A second client gives it its own token bucket (and its own
        # 429 hold), so the feed is paced to that limit without slowing reads and writes, and
        # reads cannot use up its budget. A token bucket lets `burst` requests out at once and
        # then `share × limit` a minute, so the burst is taken out of the share: even the
        # first minute stays within the endpoint's limit.
        budget = config.http.budget
        per_minute = options.incremental_requests_per_minute
        burst = max(1, min(budget.burst, int(per_minute * (1 - budget.share))))
        export_budget = RateBudget(
            requests_per_minute=per_minute,
            share=max(0.01, min(budget.share, (per_minute - burst) / per_minute)),
            burst=burst,
            slow_when_remaining_below=budget.slow_when_remaining_below,
        )
        self.export_client = DeskClient(
            config.name,
            config.base_url,
            credentials=self.secrets.credentials,
            settings=config.http.model_copy(update={"budget": export_budget}),
            transport=self.runtime.transport,
            clock=self.runtime.clock,
            sleep=self.runtime.sleep,
            wall_clock=self.runtime.wall_clock,
        )

    @property
    def opts(self) -> ZendeskOptions:
        """The validated ``options`` of this desk."""
        options = self.options
        if not isinstance(options, ZendeskOptions):  # pragma: no cover - set by the base class
            raise TypeError(f"options are {type(options).__name__}, not ZendeskOptions")
        return options

    @staticmethod
    def base_url_for(subdomain: str) -> str:
        """``https://{subdomain}.zendesk.com`` for a Zendesk subdomain (``acme``)."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", subdomain):
            raise ValueError(f"{subdomain!r} is not a Zendesk subdomain")
        return f"https://{subdomain}.zendesk.com"

    async def aclose(self) -> None:
        """Release both HTTP clients."""
        await self.export_client.aclose()
        await super().aclose()

    # --- emulator and conformance ----------------------------------------------------------

    @classmethod
    def emulator(cls) -> type[Any]:
        """:class:`ticketwarden.plugins.zendesk.emulator.ZendeskEmulator` (imported lazily)."""
        module = importlib.import_module("ticketwarden.plugins.zendesk.emulator")
        emulator_class: type[Any] = module.ZendeskEmulator
        return emulator_class

    @classmethod
    def secrets_from(cls, values: Mapping[str, SecretStr]) -> DeskSecrets:
        """Zendesk's credentials: ``EMAIL`` + ``API_TOKEN`` (basic ``{email}/token``), or an
        ``OAUTH_TOKEN`` (bearer, preferred when both are set); ``WEBHOOK_SECRET`` signs webhooks.
        """
        if "OAUTH_TOKEN" not in values and "EMAIL" in values and "API_TOKEN" in values:
            email = values["EMAIL"].get_secret_value()
            return DeskSecrets(
                credentials=BasicCredentials(
                    username=f"{email}/token", password=values["API_TOKEN"]
                ),
                webhook_secret=values.get("WEBHOOK_SECRET"),
            )
        return super().secrets_from(values)

    @classmethod
    def conformance_config(cls, base_url: str) -> tuple[DeskConfig, DeskSecrets]:
        """The emulator's fixed account (``fixtures.py``) as a desk configuration."""
        from ticketwarden.plugins.zendesk import fixtures

        ids = fixtures.TICKET_FIELDS
        # The suite's set_field round trip writes the *first* mapped field: a text field.
        order = ("server_url", "module", "steps", "sample_machines", "version", "sev1_contact")
        fields = {name: f"custom:{ids[name]}" for name in order}
        fields["severity"] = f"custom:{ids['severity']}"
        fields["resolution_reason"] = f"custom:{ids['resolution_reason']}"
        config = DeskConfig.model_validate(
            {
                "name": "zendesk",
                "connector": cls.name,
                "base_url": base_url,
                "fields": fields,
                "severity_values": dict(fixtures.SEVERITY_VALUES),
                "escalation": {
                    target: {"group": str(group)} for target, group in fixtures.GROUPS.items()
                },
                "contacts": {
                    "where": "user",
                    "authorized_field": fixtures.USER_FIELDS["authorized"],
                    "certified_until_field": fixtures.USER_FIELDS["certified_until"],
                    "available_24x7_field": fixtures.USER_FIELDS["available_24x7"],
                },
                "options": {"per_page": 100, "agent_id": fixtures.AGENT_ID},
            }
        )
        secrets = DeskSecrets(
            credentials=BasicCredentials(
                username=f"{fixtures.AGENT_EMAIL}/token",
                password=SecretStr(fixtures.API_TOKEN),
            ),
            webhook_secret=SecretStr(fixtures.WEBHOOK_SECRET),
        )
        return config, secrets

    # --- reading --------------------------------------------------------------------------------

    async def read_ticket(self, ticket_id: str) -> Ticket:
        """The ticket with its comments, requester, organization and mapped fields.

        **Two requests** (Zendesk's minimum: the show-ticket endpoint carries no comments):
        ``GET /api/v2/tickets/{id}.json?include=users,organizations,groups`` (the requester,
        organization and group come along as sideloads) and
        ``GET /api/v2/tickets/{id}/comments.json?include=users&page[size]=100`` (the comment
        authors come along), plus one per further 100 comments — and, once per connector, one
        ``GET /api/v2/users/me.json`` if ``options.agent_id`` is not configured.
        """
        tid = self._checked_id(ticket_id)
        body = await self.client.get_json(
            f"/api/v2/tickets/{tid}.json", params={"include": TICKET_SIDELOADS}
        )
        record = self._object(body, "ticket")
        comments, authors = await self._comments(tid)
        sideloads = _Sideloads.of(body, authors)
        author = await self._ticketwarden_author() if comments else self._author_id
        return self._ticket(record, sideloads, comments, author)

    async def _comments(self, tid: str) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
        """Every comment of the ticket (cursor-paged, 100 a page) and their sideloaded authors."""
        found: dict[str, list[Mapping[str, Any]]] = {"comments": [], "users": []}

        def items(body: Any) -> list[tuple[str, Mapping[str, Any]]]:
            users = [("users", u) for u in body.get("users") or () if isinstance(u, dict)]
            return users + [("comments", c) for c in body["comments"]]

        async for key, record in paginate_links(
            self.client,
            f"/api/v2/tickets/{tid}/comments.json",
            params={"include": "users", "page[size]": COMMENTS_PAGE_SIZE},
            items=items,
            next_url=_next_link,
        ):
            found[key].append(record)
        return found["comments"], found["users"]

    async def _ticketwarden_author(self) -> int:
        """The user id ticketwarden's comments carry: ``options.agent_id`` or the API user."""
        if self._author_id is None:
            body = await self.client.get_json("/api/v2/users/me.json")
            user = self._object(body, "user")
            if not isinstance(user.get("id"), int):
                raise self._shape("users/me.json has no user id", body)
            self._author_id = user["id"]
        return self._author_id

    async def changes(self, cursor: str | None, *, since: datetime | None = None) -> ChangePage:
        """One page of the cursor-based incremental ticket export.

        The first call sends ``start_time`` (``since``, or the beginning; Zendesk wants it at
        least a minute in the past, so it is clamped there), every later one the stored
        ``cursor`` (Zendesk's ``after_cursor``); ``has_more`` is ``not end_of_stream``. The
        requests go through :attr:`export_client`, paced to the endpoint's own limit.
        Deleted tickets are excluded. The tickets carry their sideloaded requester and
        organization but **no comments** (the export has none): read a ticket to evaluate it.
        """
        params: dict[str, Any] = {
            "per_page": self.opts.per_page,
            "include": TICKET_SIDELOADS,
            "exclude_deleted": "true",
        }
        if cursor and not cursor.startswith(_START_PREFIX):
            params["cursor"] = cursor
        else:
            if cursor:
                start = int(cursor.removeprefix(_START_PREFIX))
            else:
                start = int(since.timestamp()) if since is not None else 0
            latest = int(self.runtime.wall_clock()) - 60
            params["start_time"] = max(0, min(start, latest))
        body = await self.export_client.get_json(
            "/api/v2/incremental/tickets/cursor.json", params=params
        )
        try:
            records = [r for r in body["tickets"] if r.get("status") != "deleted"]
            end_of_stream = body["end_of_stream"]
            after = body.get("after_cursor")
            if not isinstance(end_of_stream, bool):
                raise TypeError(f"end_of_stream is {end_of_stream!r}")
        except (KeyError, TypeError, AttributeError) as exc:
            raise self._shape(f"unexpected incremental export page ({exc!r})", body) from exc
        sideloads = _Sideloads.of(body)
        tickets = tuple(self._ticket(r, sideloads) for r in records)
        following = str(after) if after else (cursor or f"{_START_PREFIX}{params['start_time']}")
        if not end_of_stream and following == cursor:
            raise self._shape("the incremental export did not advance its cursor", body)
        return ChangePage(tickets=tickets, cursor=following, has_more=not end_of_stream)

    async def candidates(self, query: CandidateQuery) -> AsyncIterator[Ticket]:
        """Tickets in one of ``query.statuses`` updated before/after the given times.

        One search export per Zendesk status (``GET /api/v2/search/export.json`` with
        ``filter[type]=ticket``, ``query=status:"pending" updated<…``, ``page[size]``, paged by
        ``meta.after_cursor``); every value is quoted or format-checked
        (:mod:`ticketwarden.plugins.zendesk.search`). The search index lags a little, so each
        result is checked again against the query before it is yielded; tickets carry no
        comments.
        """
        seen: set[str] = set()
        for keyword, value in self._status_terms(query.statuses):
            search = ticket_search_query(
                keyword,
                value,
                updated_before=query.updated_before,
                updated_after=query.updated_after,
            )
            params = {
                "query": search,
                "filter[type]": "ticket",
                "page[size]": self.opts.search_page_size,
            }
            async for record in paginate_cursor(
                self.client,
                "/api/v2/search/export.json",
                params=params,
                items=lambda body: list(body["results"]),
                next_cursor=_export_cursor,
                cursor_param="page[after]",
            ):
                if record.get("result_type", "ticket") != "ticket":
                    continue
                ticket = self._ticket(record, _Sideloads())
                if ticket.id in seen or ticket.status not in query.statuses:
                    continue
                if query.updated_before and not ticket.updated_at < query.updated_before:
                    continue
                if query.updated_after and not ticket.updated_at > query.updated_after:
                    continue
                seen.add(ticket.id)
                yield ticket

    def _status_terms(self, statuses: frozenset[Status]) -> list[tuple[str, str]]:
        terms = [("status", name) for name in ZENDESK_STATUSES if self._named(name) in statuses]
        terms += [
            ("custom_status_id", key)
            for key, status in self.config.statuses.items()
            if _DIGITS.match(key) and status in statuses
        ]
        return terms

    async def roster(self) -> Roster:
        """The authorized contacts, from user fields or organization fields.

        ``contacts.where = "user"``: every user whose checkbox ``authorized_field`` is set,
        with ``certified_until_field`` (a date field) and ``available_24x7_field`` (a
        checkbox), grouped by the user's organization (users without one cannot be matched to
        a ticket's organization and are left out). Found with the search export
        (``filter[type]=user``, ``query={authorized_field}:true``): one request per 100
        authorized contacts, not per 100 users of the account; the search index lags by
        minutes, so every user found is checked again.

        ``contacts.where = "organization"``: each organization's ``authorized_field`` (a text
        field) lists its authorized contacts' e-mail addresses (separated by commas,
        semicolons, spaces or new lines); ``available_24x7_field`` lists those reachable around
        the clock the same way; ``certified_until_field`` (a date field) applies to all of
        them. ``GET /api/v2/organizations.json``, cursor-paged.
        """
        source = self.config.contacts
        if source.where == "roster_file":
            raise CapabilityMissing(
                "contacts.where = 'roster_file': the roster is read from the file, not Zendesk"
            )
        if not source.authorized_field:
            raise TicketwardenError(
                f"desk {self.config.name}: contacts.authorized_field names no {source.where} field"
            )
        if source.where == "user":
            return await self._user_roster(source)
        return await self._organization_roster(source)

    async def _user_roster(self, source: ContactSource) -> Roster:
        key = search_field_key(source.authorized_field or "")
        by_org: dict[str, dict[str, AuthorizedContact]] = {}
        async for user in paginate_cursor(
            self.client,
            "/api/v2/search/export.json",
            params={"query": f"{key}:true", "filter[type]": "user", "page[size]": 100},
            items=lambda body: list(body["results"]),
            next_cursor=_export_cursor,
            cursor_param="page[after]",
        ):
            values = user.get("user_fields") or {}
            org = user.get("organization_id")
            email = user.get("email")
            if not _truthy(values.get(key)) or org is None or not email:
                continue  # the search index lags: what it found is checked again
            contact = AuthorizedContact(
                email=email,
                name=user.get("name") or "",
                phone=user.get("phone") or "",
                certified_until=_date(values.get(source.certified_until_field or "")),
                available_24x7=_truthy(values.get(source.available_24x7_field or "")),
            )
            by_org.setdefault(str(org), {})[contact.email] = contact
        return _roster(by_org)

    async def _organization_roster(self, source: ContactSource) -> Roster:
        by_org: dict[str, dict[str, AuthorizedContact]] = {}
        split = re.compile(r"[,;\s]+")
        async for org in paginate_links(
            self.client,
            "/api/v2/organizations.json",
            params={"page[size]": 100},
            items=lambda body: list(body["organizations"]),
            next_url=_next_link,
        ):
            values = org.get("organization_fields") or {}
            listed = _text(values.get(source.authorized_field or "")) or ""
            emails = [e for e in split.split(listed) if "@" in e]
            if not emails:
                continue
            around_the_clock = {
                e.lower()
                for e in split.split(_text(values.get(source.available_24x7_field or "")) or "")
            }
            certified = _date(values.get(source.certified_until_field or ""))
            contacts = by_org.setdefault(str(org["id"]), {})
            for email in emails:
                contact = AuthorizedContact(
                    email=email,
                    certified_until=certified,
                    available_24x7=email.lower() in around_the_clock,
                )
                contacts[contact.email] = contact
        return _roster(by_org)

    # --- mapping Zendesk records to the model ------------------------------------------------

    def _named(self, name: str) -> Status:
        configured = self.config.statuses.get(name)
        return configured if configured is not None else ZENDESK_STATUSES[name]

    def _status(self, record: Mapping[str, Any]) -> Status:
        custom = record.get("custom_status_id")
        if custom is not None and str(custom) in self.config.statuses:
            return self.config.statuses[str(custom)]
        value = record.get("status")
        if isinstance(value, str) and value in self.config.statuses:
            return self.config.statuses[value]
        if isinstance(value, str) and value in ZENDESK_STATUSES:
            return ZENDESK_STATUSES[value]
        raise ValueError(f"unknown Zendesk status {value!r} (map it in the desk's statuses)")

    def _priority(self, value: Any) -> Priority | None:
        if value is None:
            return None
        for priority, desk_value in self.config.priorities.items():
            if desk_value == value:
                return priority
        try:
            return Priority(value)
        except ValueError:
            return None

    def _priority_value(self, priority: Priority) -> str:
        return self.config.priorities.get(priority, priority.value)

    def _field_value(self, record: Mapping[str, Any], source: FieldSource) -> str | None:
        if source.kind == "custom":
            for entry in record.get("custom_fields") or ():
                if isinstance(entry, dict) and str(entry.get("id")) == source.id:
                    return _text(entry.get("value"))
            return None
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
            mapped = _SEVERITY_OF_PRIORITY.get(value)
        if mapped is None and value in ("1", "2", "3", "4"):
            mapped = int(value)
        return Severity(mapped) if mapped is not None else None

    def _severity_value(self, severity: Severity, source: FieldSource) -> str:
        for value, level in self.config.severity_values.items():
            if level == int(severity):
                return value
        if source == FieldSource(kind="native", id="priority"):
            priority = Priority(list(_SEVERITY_OF_PRIORITY)[int(severity) - 1])
            return self._priority_value(priority)
        if source.kind == "tag":
            return str(int(severity))
        raise _Refused(f"severity_values has no desk value for severity {int(severity)}")

    def _role(
        self,
        comment: Mapping[str, Any],
        requester: Any,
        users: Mapping[int, Mapping[str, Any]],
        ticketwarden: int | None,
    ) -> AuthorRole:
        """Who wrote a comment.

        The requester is the customer; ticketwarden's own comments — by its author id *and*
        sent through the API — are ``system``, so a human agent who shares the API user's
        account and replies in the agent workspace still counts as an agent; other agents and
        admins are agents; end users are the customer side. An author the desk no longer
        knows is counted as the customer, so a lost user never silences a response
        obligation; Zendesk's own system comments (author id -1) are ``system``.
        """
        author = comment.get("author_id")
        if author is not None and author == requester:
            return AuthorRole.CUSTOMER
        if isinstance(author, int) and author <= 0:
            return AuthorRole.SYSTEM
        via = comment.get("via")
        channel = via.get("channel") if isinstance(via, dict) else None
        if ticketwarden is not None and author == ticketwarden and channel in (None, "api"):
            return AuthorRole.SYSTEM
        role = users.get(author, {}).get("role") if isinstance(author, int) else None
        if role in ("agent", "admin"):
            return AuthorRole.AGENT
        return AuthorRole.CUSTOMER

    def ticket_from(
        self,
        record: Mapping[str, Any],
        *,
        users: Iterable[Mapping[str, Any]] = (),
        organizations: Iterable[Mapping[str, Any]] = (),
        comments: Sequence[Mapping[str, Any]] = (),
    ) -> Ticket:
        """A ticket record as Zendesk returns it, with sideloaded ``users`` and
        ``organizations`` and its ``comments``, as the normalized model — the mapping
        :meth:`read_ticket`, :meth:`changes` and :meth:`candidates` use.

        :raises ProtocolError: the record lacks what a ticket needs.
        """
        sideloads = _Sideloads.of({"users": list(users), "organizations": list(organizations)})
        return self._ticket(record, sideloads, comments, self._author_id)

    def _ticket(
        self,
        record: Mapping[str, Any],
        sideloads: _Sideloads,
        comments: Sequence[Mapping[str, Any]] = (),
        ticketwarden: int | None = None,
    ) -> Ticket:
        """A Zendesk ticket record (with its sideloads and comments) as the normalized model."""
        try:
            return self._build_ticket(record, sideloads, comments, ticketwarden)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._shape(f"unexpected ticket record ({exc!r})", record) from exc

    def _build_ticket(
        self,
        record: Mapping[str, Any],
        sideloads: _Sideloads,
        comments: Sequence[Mapping[str, Any]],
        ticketwarden: int | None,
    ) -> Ticket:
        tid = record["id"]
        if not isinstance(tid, int):
            raise TypeError(f"ticket id {tid!r} is not an integer")
        requester_id = record["requester_id"]
        user = sideloads.users.get(requester_id, {}) if isinstance(requester_id, int) else {}
        requester = Contact(
            id=str(requester_id),
            name=user.get("name") or "",
            email=user.get("email") or "",
            phone=user.get("phone") or "",
        )
        org_id = record.get("organization_id")
        organization = None
        if org_id is not None:
            org = sideloads.organizations.get(org_id, {}) if isinstance(org_id, int) else {}
            organization = Organization(id=str(org_id), name=org.get("name") or "")
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
        normalized = [
            Comment(
                id=str(c["id"]),
                author_role=self._role(c, requester_id, sideloads.users, ticketwarden),
                author=_author_name(c, sideloads.users),
                body=c.get("body") or c.get("plain_body") or "",
                public=bool(c.get("public", True)),
                created_at=_parse_time(c["created_at"]),
            )
            for c in comments
        ]
        normalized.sort(key=lambda c: c.created_at)
        return Ticket(
            id=str(tid),
            number=f"#{tid}",
            desk=self.config.name,
            subject=record.get("subject") or "",
            description=record.get("description") or "",
            status=self._status(record),
            severity=self._severity(record),
            priority=self._priority(record.get("priority")),
            requester=requester,
            organization=organization,
            fields=fields,
            tags=frozenset(tags),
            comments=tuple(normalized),
            group=_id_text(record.get("group_id")),
            assignee=_id_text(record.get("assignee_id")),
            created_at=_parse_time(record["created_at"]),
            updated_at=_parse_time(record["updated_at"]),
            resolution_reason=reason,
            follow_up_of=self._follow_up_of(record, tags),
        )

    def _follow_up_of(self, record: Mapping[str, Any], tags: Sequence[str]) -> str | None:
        """``via.source.rel == "follow_up"`` names the closed ticket (``via.source.from``);
        follow-ups ticketwarden opened for tickets that were not closed carry a link tag."""
        via = record.get("via")
        source = via.get("source") if isinstance(via, dict) else None
        if isinstance(source, dict) and source.get("rel") == "follow_up":
            origin = source.get("from")
            if isinstance(origin, dict) and origin.get("ticket_id") is not None:
                return str(origin["ticket_id"])
        prefix = self.opts.follow_up_tag_prefix
        for tag in tags:
            rest = tag[len(prefix) :]
            if tag.startswith(prefix) and _TICKET_ID.match(rest):
                return rest
        return None

    # --- writing ------------------------------------------------------------------------------

    def http_stats(self) -> ClientStats:
        """Both clients' counters: the account's and the incremental export's."""
        return self.client.stats + self.export_client.stats

    async def already_applied(self, ticket: Ticket, action: BaseAction) -> bool:
        """A follow-up is found by its ``external_id`` marker; comments by the base rule."""
        if isinstance(action, CreateFollowUp) and action.key:
            marker = f"tw:{action.key}"
            body = await self.client.get_json(
                "/api/v2/tickets.json", params={"external_id": marker}
            )
            return any(t.get("external_id") == marker for t in self._list(body, "tickets"))
        return await super().already_applied(ticket, action)

    async def apply(self, ticket: Ticket, actions: Sequence[BaseAction]) -> list[ActionResult]:
        """Carry out one evaluation's actions with as few safe updates as Zendesk allows.

        Every field change — status, priority, severity, custom fields, tags, group/assignee,
        the resolution — and the *first* comment go into **one**
        ``PUT /api/v2/tickets/{id}.json`` with ``safe_update: true`` and ``updated_stamp`` = the
        ``updated_at`` that was read: one request, one audit entry, one run of the desk's
        triggers, and atomic (the customer never sees the reply without the status change it
        came with). Zendesk takes one comment per update, so each further comment is one
        more update; closing a ticket that is not solved is solve-then-close, the close being
        a second update (Zendesk closes only solved tickets, and its "solved" triggers and
        SLAs should see the solve). Each update's stamp is the ``updated_at`` the previous
        one returned. A follow-up is one ``POST``. Every action still gets its own result.

        A 409 raises :class:`~ticketwarden.core.errors.ConflictError` (an agent changed the
        ticket after it was read): the caller re-reads and re-evaluates; earlier updates of
        the same call may have landed, which re-evaluation sees. A 422 (the desk refuses the
        update as such) reports the actions of that update and every later one ``failed``
        with the desk's message. Actions on a closed ticket fail without a request.
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
            elif ticket.status == Status.CLOSED and _closes(action):
                results[index] = self.result(action, Outcome.UNCHANGED, "already closed")
            elif ticket.status == Status.CLOSED:
                detail = (
                    f"ticket {ticket.id} is closed: Zendesk refuses updates to closed tickets; "
                    "a follow-up ticket is the way"
                )
                results[index] = self.result(action, Outcome.FAILED, detail)
            elif isinstance(action, AddComment):
                comments.append((index, action))
            elif _closes(action):
                close.append(index)
            else:
                try:
                    self._plan(main, ticket, index, action)
                except _Refused as problem:
                    results[index] = self.result(action, Outcome.FAILED, str(problem))
                else:
                    main.riders.append(index)

        updates = [main]
        if comments:
            main.comment = comments[0][1]
            main.riders.append(comments[0][0])
            for index, comment in comments[1:]:
                updates.append(_Update(comment=comment, riders=[index]))
        if close:
            if "status" not in main.fields and ticket.status == Status.RESOLVED:
                main.fields["status"] = "closed"
                main.riders.extend(close)
            else:
                main.fields.pop("custom_status_id", None)
                main.fields["status"] = "solved"
                updates.append(_Update(fields={"status": "closed"}, riders=list(close)))

        stamp: str | None = zendesk_time(ticket.updated_at)
        refused: str | None = None
        for update in updates:
            if refused is not None:
                for index in update.riders:
                    detail = f"not sent: an earlier update was refused ({refused})"
                    results[index] = self.result(actions[index], Outcome.FAILED, detail)
                continue
            try:
                stamp, ignored = await self._send_update(ticket, update, stamp)
            except RejectedError as exc:
                refused = exc.message
                for index in update.riders:
                    results[index] = self.result(actions[index], Outcome.FAILED, exc.message)
                continue
            for index in update.riders:
                outcome = Outcome.FAILED if index in ignored else Outcome.APPLIED
                results[index] = self.result(actions[index], outcome, ignored.get(index, ""))

        for index, follow_up in follow_ups:
            results[index] = await self._create_follow_up(ticket, follow_up)
        return [results[index] for index in range(len(actions))]

    # Each apply_<kind> is apply() on one action (the contract's per-kind entry points).

    def _plan(self, update: _Update, ticket: Ticket, index: int, action: BaseAction) -> None:
        """Fold one field-changing action into ``update``; :class:`_Refused` if it cannot be."""
        if isinstance(action, SetStatus):
            update.fields.pop("status", None)
            update.fields.pop("custom_status_id", None)
            update.fields.update(self._status_fields(action.status))
        elif isinstance(action, SetPriority):
            update.fields["priority"] = self._priority_value(action.priority)
        elif isinstance(action, SetSeverity):
            source = self.config.field_source("severity")
            if source is None:
                raise _Refused("severity is not mapped (fields.severity in the desk config)")
            self._write(update, ticket, source, self._severity_value(action.severity, source))
        elif isinstance(action, AddTags):
            update.add(sorted(action.tags))
            update.tag_checks[index] = (action.tags, frozenset())
        elif isinstance(action, RemoveTags):
            update.remove(sorted(action.tags))
            update.tag_checks[index] = (frozenset(), action.tags)
        elif isinstance(action, SetField):
            source = self.config.field_source(action.field)
            if source is None:
                raise _Refused(f"field {action.field!r} is not mapped (fields in the desk config)")
            self._write(update, ticket, source, action.value)
        elif isinstance(action, Escalate):
            target = self.config.escalation.get(action.target)
            if target is None:
                raise _Refused(
                    f"escalation target {action.target!r} is not mapped "
                    f"(escalation.{action.target} in the desk config)"
                )
            update.fields.update(self._escalation_fields(action.target, target))
        elif isinstance(action, Resolve):
            update.fields.pop("custom_status_id", None)
            update.fields["status"] = "solved"
            source = self.config.field_source("resolution_reason")
            if source is not None:
                self._write(update, ticket, source, action.resolution)
            tag = re.sub(r"\s+", "_", f"{self.config.resolution_tag_prefix}{action.resolution}")
            update.add([tag])
        else:  # pragma: no cover - every declared kind is handled above or in apply()
            raise _Refused(f"{self.name} has no plan for {action.kind}")

    def _write(self, update: _Update, ticket: Ticket, source: FieldSource, value: str) -> None:
        if source.kind == "custom":
            if not _DIGITS.match(source.id):
                raise _Refused(f"custom:{source.id} is not a Zendesk custom field id (digits)")
            update.custom[int(source.id)] = value
        elif source.kind == "native":
            if source.id in _PROTECTED_NATIVE:
                raise _Refused(f"native:{source.id} is managed by the connector, not set_field")
            update.fields[source.id] = value
        else:
            stale = sorted(t for t in ticket.tags if t.startswith(source.id))
            update.remove(t for t in stale if t != source.id + value)
            update.add([source.id + value])

    def _status_fields(self, status: Status) -> dict[str, Any]:
        """The update fields moving a ticket to ``status``: a configured status name, a
        configured custom status id, or Zendesk's built-in name."""
        for key, mapped in self.config.statuses.items():
            if mapped == status and key in ZENDESK_STATUSES:
                return {"status": key}
        for key, mapped in self.config.statuses.items():
            if mapped == status and _DIGITS.match(key):
                return {"custom_status_id": int(key)}
        return {"status": _STATUS_VALUES[status]}

    def _escalation_fields(self, name: str, target: EscalationTarget) -> dict[str, int]:
        unsupported = target.unsupported(frozenset({"group", "assignee"}))
        if unsupported:
            raise _Refused(
                f"escalation target {name!r} names {', '.join(unsupported)}, which Zendesk "
                "does not have (a group and/or an assignee)"
            )
        fields: dict[str, int] = {}
        for key, value in (("group_id", target.group), ("assignee_id", target.assignee)):
            if value is None:
                continue
            if not _DIGITS.match(value):
                raise _Refused(
                    f"escalation target {name!r}: {key.removesuffix('_id')} {value!r} is not a "
                    "Zendesk id (digits)"
                )
            fields[key] = int(value)
        return fields

    async def _send_update(
        self, ticket: Ticket, update: _Update, stamp: str | None
    ) -> tuple[str | None, dict[int, str]]:
        """Send one safe update (and, with ``tag_method = "tags_endpoint"``, its tag calls).

        :returns: the ticket's new ``updated_at`` (``None`` when unknown: the next update
            re-reads it) and the tag actions Zendesk did not carry out, with why.
        """
        inline = self.opts.tag_method == "update"
        tid = self._checked_id(ticket.id)
        ignored: dict[int, str] = {}
        if not update.has_changes(with_tags=True):
            return stamp, ignored
        if stamp is None:
            stamp = await self._current_stamp(tid)
        new_stamp: str | None = stamp
        if update.has_changes(with_tags=inline):
            payload = update.body(stamp, self.opts.agent_id, with_tags=inline)
            path = f"/api/v2/tickets/{tid}.json"
            if update.comment is None:
                body = await self.client.send_json("PUT", path, payload)
                record = self._object(body, "ticket") if body is not None else None
            else:
                known = frozenset(c.id for c in ticket.comments)
                record = await self._put_comment(tid, path, payload, update.comment, stamp, known)
            if inline and record is not None:
                ignored = _ignored_tags(update, record)
            new_stamp = _stamp_of(record)
        if not inline and (update.add_tags or update.remove_tags):
            await self._send_tags(tid, update, new_stamp)
            new_stamp = None
        return new_stamp, ignored

    async def _put_comment(
        self,
        tid: str,
        path: str,
        payload: Mapping[str, Any],
        comment: AddComment,
        stamp: str,
        known: frozenset[str],
    ) -> Mapping[str, Any] | None:
        """Send an update carrying a comment exactly once.

        Such a PUT appends, so it is sent with ``idempotent=False``: after a read timeout, a
        dropped connection or a 5xx the client raises ``OutcomeUnknownError`` instead of
        re-sending, and :func:`create_once` first looks for the comment — ticketwarden's
        author, the same body and public flag, created at or after the stamp the update was
        based on and not among the comments already read (so the same text sent on an
        earlier occasion does not count) — in the ticket's comments, which are strongly
        consistent. Found: the update landed (a PUT is
        atomic, so its fields did too). Not found: it is sent again, with the same
        ``updated_stamp`` — had the first one landed after all, Zendesk would answer 409
        rather than add the comment twice.
        """
        since = _parse_time(stamp)

        async def send() -> Mapping[str, Any] | None:
            body = await self.client.send_json("PUT", path, payload, idempotent=False)
            return self._object(body, "ticket") if body is not None else None

        async def find() -> Mapping[str, Any] | None:
            author = await self._ticketwarden_author()
            wanted = comment.body.strip()
            existing, _ = await self._comments(tid)
            for found in existing:
                if (
                    str(found.get("id")) not in known
                    and found.get("author_id") == author
                    and (found.get("body") or "").strip() == wanted
                    and bool(found.get("public", True)) == comment.public
                    and _parse_time(found.get("created_at")) >= since
                ):
                    body = await self.client.get_json(f"/api/v2/tickets/{tid}.json")
                    return self._object(body, "ticket")
            return None

        return await create_once(
            send, find, settle_seconds=self.opts.create_settle_seconds, sleep=self.runtime.sleep
        )

    async def _send_tags(self, tid: str, update: _Update, stamp: str | None) -> None:
        """``PUT /tickets/{id}/tags.json`` (add, safe) and ``DELETE`` (remove).

        The tags endpoint answers with the tag list only, so after the first call no newer
        ``updated_stamp`` is known: the second goes without one (removing named tags cannot
        overwrite anyone's change) and the next update re-reads the stamp.
        """
        path = f"/api/v2/tickets/{tid}/tags.json"
        safe: dict[str, Any] = {"safe_update": True, "updated_stamp": stamp} if stamp else {}
        if update.add_tags:
            await self.client.send_json("PUT", path, {"tags": list(update.add_tags), **safe})
            safe = {}
        if update.remove_tags:
            await self.client.request(
                "DELETE", path, json={"tags": list(update.remove_tags), **safe}
            )

    async def _current_stamp(self, tid: str) -> str:
        body = await self.client.get_json(f"/api/v2/tickets/{tid}.json")
        stamp = _stamp_of(self._object(body, "ticket"))
        if stamp is None:
            raise self._shape("the ticket has no updated_at", body)
        return stamp

    async def _create_follow_up(self, ticket: Ticket, action: CreateFollowUp) -> ActionResult:
        """``POST /api/v2/tickets.json``: the requester, the customer's text as the first
        (public) comment in their name, ``via_followup_source_id`` and the ``external_id``
        marker ``tw:{key}``.

        Zendesk links a follow-up (``via.source.rel = "follow_up"``) only to a *closed*
        ticket and ignores ``via_followup_source_id`` otherwise; for a ticket that is not
        closed the link is kept in the tag ``{follow_up_tag_prefix}{id}`` (a closed ticket's
        follow-up gets no tags from us: tags in the request would replace the ones Zendesk
        copies from the closed ticket). After a lost response, ``create_once`` looks the
        marker up with ``GET /api/v2/tickets.json?external_id=…`` — a database lookup, not
        the lagging search index — before sending again.
        """
        closed = ticket.status == Status.CLOSED
        if self.opts.followups_only_of_closed and not closed:
            detail = (
                f"ticket {ticket.id} is {ticket.status.value}, and this desk creates follow-ups "
                "of closed tickets only (options.followups_only_of_closed)"
            )
            return self.result(action, Outcome.FAILED, detail)
        if not _TICKET_ID.match(ticket.requester.id):
            detail = f"requester id {ticket.requester.id!r} is not a Zendesk user id"
            return self.result(action, Outcome.FAILED, detail)
        requester = int(ticket.requester.id)
        marker = f"tw:{action.key or uuid.uuid4().hex}"
        new: dict[str, Any] = {
            "subject": action.subject,
            "comment": {"body": action.body, "public": True, "author_id": requester},
            "requester_id": requester,
            "via_followup_source_id": int(self._checked_id(ticket.id)),
            "external_id": marker,
        }
        if not closed:
            new["tags"] = [f"{self.opts.follow_up_tag_prefix}{ticket.id}"]

        async def send() -> Mapping[str, Any]:
            body = await self.client.send_json("POST", "/api/v2/tickets.json", {"ticket": new})
            return self._object(body, "ticket")

        async def find() -> Mapping[str, Any] | None:
            body = await self.client.get_json(
                "/api/v2/tickets.json", params={"external_id": marker}
            )
            found = [t for t in self._list(body, "tickets") if t.get("external_id") == marker]
            return found[0] if found else None

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

    # --- webhooks ---------------------------------------------------------------------------------

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> list[WebhookEvent]:
        """Verify and normalize one delivery of the trigger's webhook.

        ``X-Zendesk-Webhook-Signature`` must be base64(HMAC-SHA256(signing secret,
        ``X-Zendesk-Webhook-Signature-Timestamp`` + raw body)), compared in constant time
        before the body is parsed; the timestamp (ISO 8601 as Zendesk sends it, or Unix
        seconds) must lie within the replay window. The body is the JSON our docs tell the
        administrator to paste: ``{"ticket_id": "{{ticket.id}}", "event": "created"|"updated",
        "updated_at": "{{ticket.updated_at_with_timestamp}}", "status": "{{ticket.status}}"}``.
        The delivery id is ``X-Zendesk-Webhook-Invocation-Id``.
        """
        signature = headers.get("x-zendesk-webhook-signature", "").strip()
        stamp = headers.get("x-zendesk-webhook-signature-timestamp", "").strip()
        if not signature or not stamp:
            raise WebhookRejected(
                "unsigned",
                "X-Zendesk-Webhook-Signature or X-Zendesk-Webhook-Signature-Timestamp missing",
            )
        expected = base64.b64encode(hmac_sha256(self.webhook_secret, stamp.encode(), body))
        if not signatures_match(expected, signature.encode()):
            raise WebhookRejected("bad_signature", "the signature does not match the body")
        sent = _webhook_time(stamp)
        if sent is None:
            raise WebhookRejected("malformed", f"unreadable signature timestamp {stamp!r}")
        check_timestamp(sent, now, self.replay_window)
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise TypeError("the body is not a JSON object")
            ticket_id = str(data["ticket_id"]).strip()
            if not _TICKET_ID.match(ticket_id):
                raise ValueError(f"ticket_id {data['ticket_id']!r} is not a Zendesk ticket id")
            kind = EventKind(str(data["event"]).strip().lower())
            if kind not in (EventKind.CREATED, EventKind.UPDATED):
                raise ValueError(f"event {data['event']!r} is neither created nor updated")
            updated = data.get("updated_at")
            at = _parse_time(updated) if isinstance(updated, str) and updated.strip() else sent
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected("malformed", str(exc)) from None
        delivery = headers.get("x-zendesk-webhook-invocation-id", "").strip()
        return [
            WebhookEvent(
                delivery_id=delivery or f"{ticket_id}:{kind.value}:{stamp}",
                ticket_id=ticket_id,
                kind=kind,
                at=at,
            )
        ]

    # --- helpers ----------------------------------------------------------------------------------

    def _checked_id(self, ticket_id: str) -> str:
        if not _TICKET_ID.match(ticket_id):
            raise NotFoundError(self.config.name, f"{ticket_id!r} is not a Zendesk ticket id")
        return ticket_id

    def _shape(self, message: str, body: Any) -> ProtocolError:
        try:
            excerpt = json.dumps(body, default=str)
        except ValueError:
            excerpt = repr(body)
        return ProtocolError(
            self.config.name, message, excerpt=excerpt, secrets=self.client.secrets()
        )

    def _object(self, body: Any, key: str) -> Mapping[str, Any]:
        value = body.get(key) if isinstance(body, dict) else None
        if not isinstance(value, dict):
            raise self._shape(f"the response has no {key!r} object", body)
        return value

    def _list(self, body: Any, key: str) -> list[Mapping[str, Any]]:
        value = body.get(key) if isinstance(body, dict) else None
        if not isinstance(value, list):
            raise self._shape(f"the response has no {key!r} list", body)
        return [item for item in value if isinstance(item, dict)]


def _closes(action: BaseAction) -> bool:
    return isinstance(action, Close) or (
        isinstance(action, SetStatus) and action.status == Status.CLOSED
    )


def _author_name(comment: Mapping[str, Any], users: Mapping[int, Mapping[str, Any]]) -> str:
    author = comment.get("author_id")
    user = users.get(author, {}) if isinstance(author, int) else {}
    return str(user.get("name") or user.get("email") or ("" if author is None else author))


def _ignored_tags(update: _Update, record: Mapping[str, Any]) -> dict[int, str]:
    """Tag actions the returned ticket does not reflect.

    Zendesk's reference documents ``additional_tags``/``remove_tags`` for bulk updates
    (``update_many.json``); the returned ticket is checked so that a tag change the desk
    ignored is reported ``failed``, never faked.
    """
    tags = record.get("tags")
    if not isinstance(tags, list):
        return {}
    present = frozenset(t for t in tags if isinstance(t, str))
    ignored: dict[int, str] = {}
    for index, (added, removed) in update.tag_checks.items():
        wrong = sorted(added - present) + sorted(removed & present)
        if wrong:
            ignored[index] = (
                f"Zendesk did not apply the tag change ({', '.join(wrong)}); set "
                "options.tag_method = 'tags_endpoint' for this desk"
            )
    return ignored


def _stamp_of(record: Mapping[str, Any] | None) -> str | None:
    value = record.get("updated_at") if record is not None else None
    return value if isinstance(value, str) and value else None


def _webhook_time(stamp: str) -> datetime | None:
    try:
        if re.fullmatch(r"[0-9]{9,11}", stamp):
            return datetime.fromtimestamp(int(stamp), UTC)
        return _parse_time(stamp)
    except (ValueError, OverflowError, OSError):
        return None


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
