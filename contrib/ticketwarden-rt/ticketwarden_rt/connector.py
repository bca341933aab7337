"""The Request Tracker 5 connector (REST 2, ``/REST/2.0/``), built on the public SDK only.

Endpoints (RT's REST 2 documentation, and checked against a real RT 5.0.3 — see
``tests/test_rt_shapes.py``), relative to the desk's ``base_url`` (RT's web root):

- ``GET /REST/2.0/ticket/{id}`` — the ticket: status, priority, queue, owner, requestors,
  custom fields (``CustomFields: [{name, id, values}]``), links in ``_hyperlinks``;
- ``GET /REST/2.0/ticket/{id}/history?fields=Type,Creator,Created`` — its transactions;
  ``Create`` and ``Correspond`` are public, ``Comment`` is private;
- ``GET /REST/2.0/ticket/{id}/attachments?fields=TransactionId,ContentType,Content`` — the
  message bodies (one request for all of them; ``Parent`` must not be asked for: RT 5.0.3
  answers 500);
- ``GET /REST/2.0/tickets?query=…`` — TicketSQL: the change feed and the candidates;
- ``PUT /REST/2.0/ticket/{id}`` — every field write; ``POST …/comment`` and ``…/correspond``;
- ``POST /REST/2.0/ticket`` — a follow-up (``RefersTo`` the original);
- ``GET /REST/2.0/queue/{id}`` and ``/user/{name}`` — queue names and who is privileged
  (cached for the connector's lifetime).

**RT says "no" with a 200.** A ``PUT`` that RT refuses still answers 200 with a message list
(``["Ticket 1: Status 'bogus' isn't a valid status for this ticket."]``), and a custom field
it does not know is dropped without a word (``[]``). :meth:`RTConnector.update_ticket`
therefore reads the messages *and* reads the ticket back, and raises
:class:`~ticketwarden.core.errors.RejectedError` when a value did not land: a refused change
is never reported as applied.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ticketwarden.core.actions import (
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
    ActionResult,
    CandidateQuery,
    ChangePage,
    Connector,
    DeskConfig,
    DeskSecrets,
    FieldSource,
    Outcome,
    Runtime,
    WebhookEvent,
    WebhookRejected,
    check_timestamp,
    hmac_sha256,
    signatures_match,
)
from ticketwarden.core.errors import NotFoundError, ProtocolError, RejectedError
from ticketwarden.core.http import BasicCredentials, create_once, paginate_links
from ticketwarden.core.model import (
    AuthorRole,
    Comment,
    Contact,
    EventKind,
    Organization,
    Priority,
    Severity,
    Status,
    Ticket,
)
from ticketwarden_rt import ticketsql
from ticketwarden_rt.auth import RTToken

__all__ = [
    "DEFAULT_PRIORITIES",
    "DEFAULT_STATUSES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "RTConnector",
    "RTOptions",
    "WebhookPayload",
    "sign_webhook",
]

API: Final = "/REST/2.0"

DEFAULT_STATUSES: Final[Mapping[str, Status]] = {
    "new": Status.NEW,
    "open": Status.OPEN,
    "stalled": Status.WAITING_ON_CUSTOMER,
    "resolved": Status.RESOLVED,
    "rejected": Status.CLOSED,
}
"""RT's default lifecycle mapped to ticketwarden's statuses; ``DeskConfig.statuses`` adds to
and overrides it (a custom lifecycle's ``closed``, ``waiting``, …). The default lifecycle has
no "closed for good", so ``rejected`` plays that part unless the desk maps another status."""

DEFAULT_PRIORITIES: Final[Mapping[Priority, int]] = {
    Priority.LOW: 0,
    Priority.NORMAL: 50,
    Priority.HIGH: 75,
    Priority.URGENT: 100,
}
"""RT priorities are numbers (RT 5 shows 0 as Low, 50 Medium, 100 High). A number reads as the
highest priority whose value it reaches; ``DeskConfig.priorities`` overrides the values."""

SIGNATURE_HEADER: Final = "x-ticketwarden-signature"
TIMESTAMP_HEADER: Final = "x-ticketwarden-timestamp"

_EPOCH_ZERO: Final = "1970-01-01T00:00:00Z"  # RT's "not set" for dates
_CURSOR = re.compile(r"^rt1:(?P<at>[0-9]{1,12}):(?P<id>[0-9]{1,18})$")
_MESSAGE_TYPES: Final = {"Create": True, "Correspond": True, "Comment": False}
_REFUSAL = re.compile(
    r"(isn't a valid|is not a valid|not a valid|does not exist|doesn't exist|invalid|"
    r"permission denied|no permission|not permitted|not allowed|couldn't|could not|can't|"
    r"cannot|failed|illegal|must be|required|unknown|no such)",
    re.IGNORECASE,
)


class RTOptions(BaseModel):
    """``options`` of an RT desk in ``ticketwarden.toml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queues: tuple[str, ...] = Field(
        (), description="queues ticketwarden watches (names); empty: every queue"
    )
    page_size: int = Field(100, ge=1, le=100, description="tickets per page of TicketSQL results")
    agent_user: str | None = Field(
        None,
        description="the RT user ticketwarden acts as (its own comments are not events); "
        "default: the basic-auth user name. Required with token authentication",
    )
    tags_field: str | None = Field(
        None, description="a multi-value custom field that holds tags (RT has no native tags)"
    )
    settle_seconds: float = Field(
        1.0,
        ge=0,
        description="the change feed leaves out the last seconds, so a ticket updated in the "
        "same second as the cursor is never skipped (RT keeps whole seconds)",
    )
    create_settle_seconds: float = Field(
        1.0, ge=0, description="wait after a timed-out create before looking for it"
    )


class WebhookPayload(BaseModel):
    """The JSON body the RT Scrip posts (docs/helpdesks/rt.md has the Scrip).

    ``transaction`` is RT's transaction id: with the ticket id it is the delivery id.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    ticket: int = Field(gt=0)
    transaction: int = Field(gt=0)
    type: str
    field: str = ""
    new_value: str = ""
    created: datetime


def sign_webhook(secret: SecretStr, timestamp: str, body: bytes) -> str:
    """The signature header value the Scrip sends: ``sha256=`` + hex HMAC-SHA256 of the
    timestamp followed by the raw body."""
    return "sha256=" + hmac_sha256(secret, timestamp.encode(), body).hex()


def _time(value: Any) -> datetime | None:
    """An RT timestamp (``2026-11-25T02:57:02Z``, UTC); ``None`` for RT's unset 1970 date."""
    if not isinstance(value, str) or not value or value == _EPOCH_ZERO:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ref_id(value: Any) -> str | None:
    """The ``id`` of an RT reference object (``{"id": "root", "type": "user", …}``)."""
    if isinstance(value, dict) and value.get("id") not in (None, ""):
        return str(value["id"])
    if isinstance(value, str | int) and str(value):
        return str(value)
    return None


def _next_page(body: Any, response: httpx.Response) -> str | None:
    link = body.get("next_page") if isinstance(body, dict) else None
    return link if isinstance(link, str) and link else None


def _items(body: Any) -> list[Mapping[str, Any]]:
    items = body["items"]
    if not isinstance(items, list):
        raise TypeError(f"items is {type(items).__name__}")
    return [i for i in items if isinstance(i, dict)]


class _Refused(Exception):
    """An action that cannot be carried out as configured (reported ``failed``, never sent)."""


class RTConnector(Connector):
    """Request Tracker 5 through REST 2: reads, a TicketSQL change feed with a (time, id)
    cursor, TicketSQL candidates, every action kind but ``on_hold`` statuses the lifecycle
    lacks, and Scrip-posted webhooks.

    Authentication: :class:`~ticketwarden.core.http.BasicCredentials` (an RT user and
    password) or :class:`~ticketwarden_rt.auth.RTToken` (an RT auth token, sent as
    ``Authorization: token …``). ``DeskConfig.base_url`` is RT's web root, without
    ``/REST/2.0``.
    """

    name: ClassVar[str] = "rt"
    changes_are_complete: ClassVar[bool] = True  # changes() reads each ticket whole
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {
            "read",
            "changes",
            "candidates",
            "webhooks",
            "comment",
            "set_status",
            "set_severity",
            "set_priority",
            "add_tags",
            "remove_tags",
            "set_field",
            "escalate",
            "resolve",
            "close",
            "create_follow_up",
        }
    )
    Options: ClassVar[type[BaseModel]] = RTOptions

    def __init__(
        self,
        config: DeskConfig,
        secrets: DeskSecrets | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        if httpx.URL(config.base_url).path.rstrip("/").endswith("/REST/2.0"):
            raise ValueError(
                f"{config.base_url!r}: base_url is RT's web root, e.g. https://rt.example.com, "
                "without /REST/2.0"
            )
        super().__init__(config, secrets, runtime)
        opts = self.opts
        credentials = self.secrets.credentials
        agent = opts.agent_user
        if agent is None and isinstance(credentials, BasicCredentials):
            username = credentials.username
            agent = username.get_secret_value() if isinstance(username, SecretStr) else username
        if agent is None and credentials is not None:
            raise ValueError(
                f"desk {config.name}: with token authentication set options.agent_user to the "
                "RT user the token belongs to"
            )
        self.agent_user = agent or ""
        self.statuses: dict[str, Status] = {**DEFAULT_STATUSES, **config.statuses}
        self.priorities: dict[Priority, int] = dict(DEFAULT_PRIORITIES)
        for priority, value in config.priorities.items():
            if not value.strip().lstrip("-").isdigit():
                raise ValueError(f"priorities.{priority.value} = {value!r}: RT wants a number")
            self.priorities[priority] = int(value)
        for canonical, source in config.fields.items():
            if source.kind == "native" and source.id not in _WRITABLE_NATIVE:
                raise ValueError(
                    f"fields.{canonical} = native:{source.id}: RT's writable native fields are "
                    f"{sorted(_WRITABLE_NATIVE)}"
                )
        self._queues: dict[str, str] = {}
        self._privileged: dict[str, bool] = {}
        self._users: dict[str, Mapping[str, Any]] = {}

    @property
    def opts(self) -> RTOptions:
        """The validated ``options`` of this desk."""
        options = self.options
        if not isinstance(options, RTOptions):  # pragma: no cover - set by the base class
            raise TypeError(f"options are {type(options).__name__}, not RTOptions")
        return options

    # --- emulator, secrets, conformance ----------------------------------------------------------

    @classmethod
    def emulator(cls) -> type[Any]:
        """:class:`ticketwarden_rt.emulator.RTEmulator` (imported lazily)."""
        module = importlib.import_module("ticketwarden_rt.emulator")
        emulator_class: type[Any] = module.RTEmulator
        return emulator_class

    @classmethod
    def secrets_from(cls, values: Mapping[str, SecretStr]) -> DeskSecrets:
        """RT's credentials: ``TOKEN`` (an RT auth token, preferred) or ``USERNAME`` +
        ``PASSWORD``; ``WEBHOOK_SECRET`` is the secret the Scrip signs with."""
        if "TOKEN" in values:
            return DeskSecrets(
                credentials=RTToken(token=values["TOKEN"]),
                webhook_secret=values.get("WEBHOOK_SECRET"),
            )
        return super().secrets_from(values)

    @classmethod
    def conformance_config(cls, base_url: str) -> tuple[DeskConfig, DeskSecrets]:
        """The emulator's fixed set-up (the same custom fields and queue as the real-server
        tests' initialdata, ``tests/rt_initialdata.pl``) as a desk configuration."""
        from ticketwarden_rt import emulator

        return emulator.desk_config(base_url, settle_seconds=0.0)

    # --- reading ------------------------------------------------------------------------------

    async def read_ticket(self, ticket_id: str) -> Ticket:
        """The ticket with its messages, requester (and their organization) and mapped fields.

        Three requests — the ticket, its history, its attachments (plus one per further 100
        transactions or attachments) — and, once per connector, one per queue and per user
        met (their names and whether they are privileged, i.e. agents).
        """
        tid = self._id(ticket_id)
        record = await self._get_object(f"{API}/ticket/{tid}")
        history = [
            t
            async for t in paginate_links(
                self.client,
                f"{API}/ticket/{tid}/history",
                params={"fields": "Type,Creator,Created", "per_page": 100},
                items=_items,
                next_url=_next_page,
            )
        ]
        bodies = await self._bodies(tid)
        return await self._ticket(record, history, bodies)

    async def _bodies(self, tid: str) -> dict[str, str]:
        """Each transaction's message text: its first ``text/plain`` part (else ``text/html``)."""
        plain: dict[str, str] = {}
        html: dict[str, str] = {}
        async for part in paginate_links(
            self.client,
            f"{API}/ticket/{tid}/attachments",
            params={"fields": "TransactionId,ContentType,Content", "per_page": 100},
            items=_items,
            next_url=_next_page,
        ):
            txn = _ref_id(part.get("TransactionId"))
            content = part.get("Content")
            if txn is None or not isinstance(content, str) or not content:
                continue
            kind = str(part.get("ContentType") or "").lower()
            if kind.startswith("text/plain"):
                plain.setdefault(txn, content)
            elif kind.startswith("text/html"):
                html.setdefault(txn, re.sub(r"<[^>]+>", "", content))
        return {**html, **plain}

    async def changes(self, cursor: str | None, *, since: datetime | None = None) -> ChangePage:
        """One page of tickets changed after ``cursor``, oldest first.

        TicketSQL ``LastUpdated > 'T' OR (LastUpdated >= 'T' AND id > N)`` ordered by
        ``LastUpdated`` then ``id``; the cursor ``rt1:{epoch}:{id}`` is the last ticket
        returned, so tickets sharing one second are neither lost nor repeated across pages.
        The last ``options.settle_seconds`` are left out (a ticket updated later in the very
        second of the cursor would otherwise sort before it). Without a cursor the feed starts
        at ``since`` (or the beginning). Each ticket is read whole (:meth:`read_ticket`):
        TicketSQL results carry neither messages nor links, and the sync job would read every
        changed ticket anyway.
        """
        if cursor:
            match = _CURSOR.match(cursor)
            if match is None:
                raise ValueError(f"{cursor!r} is not an RT change cursor")
            at = datetime.fromtimestamp(int(match["at"]), UTC)
            after_id = int(match["id"])
            where = (
                f"(LastUpdated > {ticketsql.rt_time(at)} OR "
                f"(LastUpdated >= {ticketsql.rt_time(at)} AND id > {after_id}))"
            )
        elif since is not None:
            where = f"LastUpdated >= {ticketsql.rt_time(since)}"
        else:
            where = "id > 0"
        settle = self.opts.settle_seconds
        if settle > 0:
            horizon = datetime.fromtimestamp(self.runtime.wall_clock() - settle, UTC)
            where += f" AND LastUpdated < {ticketsql.rt_time(horizon)}"
        body = await self.client.get_json(
            f"{API}/tickets",
            params={
                "query": self._scoped(where),
                "orderby": ["LastUpdated", "id"],
                "order": ["ASC", "ASC"],
                "per_page": self.opts.page_size,
                "page": 1,
                "fields": "LastUpdated",
            },
        )
        try:
            records = _items(body)
        except (KeyError, TypeError) as exc:
            raise self._shape(f"unexpected search result ({exc!r})", body) from exc
        if not records:
            return ChangePage(tickets=(), cursor=cursor or "rt1:0:0", has_more=False)
        tickets = tuple([await self.read_ticket(str(r["id"])) for r in records])
        # the position is the listing's (LastUpdated, id), not the re-read ticket's: a ticket
        # changed in between comes again later, as the change it is
        last = records[-1]
        stamp = _time(last.get("LastUpdated"))
        if stamp is None:
            raise self._shape("a search result has no LastUpdated", last)
        following = f"rt1:{int(stamp.timestamp())}:{self._id(str(last['id']))}"
        return ChangePage(
            tickets=tickets, cursor=following, has_more=len(records) >= self.opts.page_size
        )

    async def candidates(self, query: CandidateQuery) -> AsyncIterator[Ticket]:
        """Tickets in one of ``query.statuses`` updated before/after the given times: one
        TicketSQL search, every value quoted (:mod:`ticketwarden_rt.ticketsql`), paged by
        RT's ``next_page`` links. The tickets carry no messages."""
        values = sorted(k for k, v in self.statuses.items() if v in query.statuses)
        if not values:
            return
        terms = [ticketsql.any_of("Status", values)]
        if query.updated_before is not None:
            terms.append(f"LastUpdated < {ticketsql.rt_time(query.updated_before)}")
        if query.updated_after is not None:
            terms.append(f"LastUpdated > {ticketsql.rt_time(query.updated_after)}")
        async for record in paginate_links(
            self.client,
            f"{API}/tickets",
            params={
                "query": self._scoped(" AND ".join(terms)),
                "orderby": "id",
                "order": "ASC",
                "per_page": self.opts.page_size,
                "fields": _LIST_FIELDS,
            },
            items=_items,
            next_url=_next_page,
        ):
            ticket = await self._ticket(record, (), {})
            if ticket.status in query.statuses:
                yield ticket

    def _scoped(self, where: str) -> str:
        """``where`` limited to the watched queues (``options.queues``)."""
        if not self.opts.queues:
            return where
        return f"({where}) AND {ticketsql.any_of('Queue', self.opts.queues)}"

    # --- mapping --------------------------------------------------------------------------------

    async def _queue_name(self, queue_id: str | None) -> str | None:
        if queue_id is None:
            return None
        if not queue_id.isdigit():
            return queue_id
        if queue_id not in self._queues:
            record = await self._get_object(f"{API}/queue/{queue_id}")
            self._queues[queue_id] = str(record.get("Name") or queue_id)
        return self._queues[queue_id]

    async def _user(self, name: str) -> Mapping[str, Any]:
        """An RT user record (cached); an unknown user reads as an empty record."""
        if name not in self._users:
            try:
                self._users[name] = await self._get_object(f"{API}/user/{_path_segment(name)}")
            except NotFoundError:
                self._users[name] = {}
        return self._users[name]

    async def _role(self, creator: str, requestors: Sequence[str]) -> AuthorRole:
        """Who wrote a message: a requestor is the customer; ticketwarden's own user and RT's
        internal users are ``system``; another privileged user is an agent; anyone else (a
        Cc'd colleague of the customer, an unknown address) is the customer side, so a lost
        user never silences a response obligation."""
        lowered = creator.lower()
        if lowered in (r.lower() for r in requestors):
            return AuthorRole.CUSTOMER
        if creator == self.agent_user or creator in ("RT_System", "Nobody"):
            return AuthorRole.SYSTEM
        record = await self._user(creator)
        return (
            AuthorRole.AGENT if record.get("Privileged") in (1, "1", True) else AuthorRole.CUSTOMER
        )

    def _status(self, value: Any) -> Status:
        status = self.statuses.get(str(value))
        if status is None:
            raise ProtocolError(
                self.config.name,
                f"RT status {value!r} is not mapped: add it to statuses in the desk config",
            )
        return status

    def _status_value(self, status: Status) -> str:
        for key, mapped in self.config.statuses.items():
            if mapped == status:
                return key
        for key, mapped in DEFAULT_STATUSES.items():
            if mapped == status:
                return key
        raise _Refused(f"no RT status maps to {status.value} (statuses in the desk config)")

    def _priority(self, value: Any) -> Priority | None:
        try:
            number = int(str(value))
        except ValueError:
            return None
        reached = [p for p, v in self.priorities.items() if number >= v]
        return max(reached, key=lambda p: self.priorities[p]) if reached else None

    @staticmethod
    def _custom(record: Mapping[str, Any]) -> dict[str, list[str]]:
        """Custom field values by name and by id."""
        found: dict[str, list[str]] = {}
        fields = record.get("CustomFields")
        for cf in fields if isinstance(fields, list) else ():
            if not isinstance(cf, dict):
                continue
            values = [str(v) for v in cf.get("values") or () if v is not None]
            for key in (cf.get("name"), cf.get("id")):
                if key is not None:
                    found[str(key)] = values
        return found

    def _field_value(
        self, record: Mapping[str, Any], custom: Mapping[str, list[str]], source: FieldSource
    ) -> str | None:
        if source.kind == "custom":
            values = custom.get(source.id)
            return ", ".join(values) if values else None
        if source.kind == "native":
            value = record.get(source.id)
            return str(value) if value not in (None, "") else None
        tags = self._tags(custom)
        return next((t[len(source.id) :] for t in tags if t.startswith(source.id)), None)

    def _tags(self, custom: Mapping[str, list[str]]) -> list[str]:
        field = self.opts.tags_field
        return list(custom.get(field, [])) if field else []

    def _severity(
        self, record: Mapping[str, Any], custom: Mapping[str, list[str]]
    ) -> Severity | None:
        source = self.config.field_source("severity")
        if source is None:
            return None
        value = self._field_value(record, custom, source)
        if value is None:
            return None
        number = self.config.severity_values.get(value)
        if number is None and value.strip().isdigit() and int(value) in (1, 2, 3, 4):
            number = int(value)
        return Severity(number) if number is not None else None

    def _severity_value(self, severity: Severity) -> str:
        for key, number in self.config.severity_values.items():
            if number == int(severity):
                return key
        return str(int(severity))

    async def _ticket(
        self,
        record: Mapping[str, Any],
        history: Sequence[Mapping[str, Any]],
        bodies: Mapping[str, str],
    ) -> Ticket:
        try:
            return await self._build(record, history, bodies)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ProtocolError):
                raise
            raise self._shape(f"unexpected ticket record ({exc!r})", record) from exc

    async def _build(
        self,
        record: Mapping[str, Any],
        history: Sequence[Mapping[str, Any]],
        bodies: Mapping[str, str],
    ) -> Ticket:
        tid = self._id(str(record["id"]))
        requestors = [r for r in (_ref_id(x) for x in _as_list(record.get("Requestor"))) if r]
        requester_id = requestors[0] if requestors else ""
        user = await self._user(requester_id) if requester_id and history else {}
        requester = Contact(
            id=requester_id,
            name=str(user.get("RealName") or ""),
            email=str(user.get("EmailAddress") or (requester_id if "@" in requester_id else "")),
        )
        org = str(user.get("Organization") or "")
        custom = self._custom(record)
        fields: dict[str, str] = {}
        for canonical, source in self.config.fields.items():
            if canonical in ("severity", "resolution_reason"):
                continue
            value = self._field_value(record, custom, source)
            if value is not None:
                fields[canonical] = value
        tags = self._tags(custom)
        reason_source = self.config.field_source("resolution_reason")
        reason = self._field_value(record, custom, reason_source) if reason_source else None
        if reason is None:
            prefix = self.config.resolution_tag_prefix
            reason = next((t[len(prefix) :] for t in tags if t.startswith(prefix)), None)
        comments: list[Comment] = []
        description = ""
        for txn in history:
            kind = txn.get("Type")
            if kind not in _MESSAGE_TYPES:
                continue
            txn_id = str(txn["id"])
            creator = _ref_id(txn.get("Creator")) or ""
            body = bodies.get(txn_id, "")
            if kind == "Create" and not description:
                description = body
            comments.append(
                Comment(
                    id=txn_id,
                    author_role=await self._role(creator, requestors),
                    author=creator,
                    body=body,
                    public=_MESSAGE_TYPES[str(kind)],
                    created_at=_time(txn["Created"]) or datetime.fromtimestamp(0, UTC),
                )
            )
        comments.sort(key=lambda c: (c.created_at, int(c.id) if c.id.isdigit() else 0))
        owner = _ref_id(record.get("Owner"))
        created = _time(record["Created"])
        updated = _time(record["LastUpdated"])
        if created is None or updated is None:
            raise ValueError("the ticket has no Created or LastUpdated time")
        return Ticket(
            id=tid,
            number=f"#{tid}",
            desk=self.config.name,
            subject=str(record.get("Subject") or ""),
            description=description,
            status=self._status(record["Status"]),
            severity=self._severity(record, custom),
            priority=self._priority(record.get("Priority")),
            requester=requester,
            organization=Organization(id=org, name=org) if org else None,
            fields=fields,
            tags=frozenset(tags),
            comments=tuple(comments),
            group=await self._queue_name(_ref_id(record.get("Queue"))),
            assignee=None if owner in (None, "Nobody") else owner,
            created_at=created,
            updated_at=updated,
            resolved_at=_time(record.get("Resolved")),
            resolution_reason=reason or None,
            follow_up_of=_refers_to(record),
        )

    # --- writing --------------------------------------------------------------------------------

    async def update_ticket(self, ticket_id: str, payload: Mapping[str, Any]) -> list[str]:
        """``PUT /REST/2.0/ticket/{id}`` and make sure every value landed.

        RT answers a refused change with 200 and a message list, and drops an unknown custom
        field silently. So the messages are read (a refusal among them raises at once) and
        the ticket is read back: a value that is not there raises too.

        :returns: RT's messages.
        :raises RejectedError: RT refused (its message) or did not apply (what is missing).
        """
        tid = self._id(ticket_id)
        path = f"{API}/ticket/{tid}"
        answer = await self.client.send_json("PUT", path, dict(payload))
        messages = [str(m) for m in answer] if isinstance(answer, list) else []
        if not isinstance(answer, list):
            raise self._shape("a ticket update answered no message list", answer)
        refused = [m for m in messages if _REFUSAL.search(m)]
        if refused:
            raise RejectedError(
                self.config.name,
                "RT refused the update: " + "; ".join(refused),
                status_code=200,
                excerpt=str(messages),
                method="PUT",
                url=str(self.client.resolve(path)),
            )
        after = await self._get_object(path)
        missing = await self._not_landed(payload, after)
        if missing:
            raise RejectedError(
                self.config.name,
                f"RT answered {messages!r} but did not apply {', '.join(missing)}",
                status_code=200,
                excerpt=str(messages),
                method="PUT",
                url=str(self.client.resolve(path)),
            )
        return messages

    async def _not_landed(self, payload: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
        """The parts of ``payload`` the ticket read back does not show."""
        missing: list[str] = []
        for key, wanted in payload.items():
            if key == "CustomFields":
                custom = self._custom(after)
                for name, value in wanted.items():
                    want = sorted(value) if isinstance(value, list) else [str(value)]
                    have = sorted(custom.get(name, [])) if name in custom else None
                    if have is None:
                        missing.append(f"custom field {name!r} (not applied to this ticket)")
                    elif [w for w in want if w != ""] != have:
                        missing.append(f"custom field {name!r} = {value!r} (it is {have!r})")
            elif key == "Queue":
                queue = await self._queue_name(_ref_id(after.get("Queue")))
                if queue != str(wanted) and _ref_id(after.get("Queue")) != str(wanted):
                    missing.append(f"Queue = {wanted!r} (it is {queue!r})")
            else:
                have = after.get(key)
                have_text = _ref_id(have) if isinstance(have, dict) else have
                if str(have_text) != str(wanted):
                    missing.append(f"{key} = {wanted!r} (it is {have_text!r})")
        return missing

    async def _apply_update(
        self, action: BaseAction, payload: Mapping[str, Any], tid: str
    ) -> ActionResult:
        try:
            messages = await self.update_ticket(tid, payload)
        except RejectedError as exc:
            return self.result(action, Outcome.FAILED, exc.message)
        return self.result(action, detail="; ".join(messages))

    def _custom_write(self, source: FieldSource, value: str, ticket: Ticket) -> dict[str, Any]:
        if source.kind == "custom":
            return {"CustomFields": {source.id: value}}
        if source.kind == "native":
            return {source.id: value}
        field = self.opts.tags_field
        if not field:
            raise _Refused(f"tag:{source.id} needs options.tags_field (RT has no native tags)")
        kept = [t for t in ticket.tags if not t.startswith(source.id)]
        return {"CustomFields": {field: sorted({*kept, source.id + value})}}

    async def apply_comment(self, ticket: Ticket, action: AddComment) -> ActionResult:
        """``POST …/correspond`` (public) or ``…/comment`` (private), exactly once: after a
        lost response the ticket's history is searched for the same text by ticketwarden's
        user, newer than every message read before, before anything is sent again."""
        tid = self._id(ticket.id)
        endpoint = "correspond" if action.public else "comment"
        known = {c.id for c in ticket.comments}
        payload = {"Content": action.body, "ContentType": "text/plain"}

        async def send() -> list[str]:
            answer = await self.client.send_json(
                "POST", f"{API}/ticket/{tid}/{endpoint}", payload, idempotent=False
            )
            messages = [str(m) for m in answer] if isinstance(answer, list) else []
            if not any("added" in m.lower() for m in messages):
                raise RejectedError(
                    self.config.name,
                    f"RT did not add the {endpoint}: {messages!r}",
                    status_code=201,
                    excerpt=str(answer),
                    method="POST",
                    url=str(self.client.resolve(f"{API}/ticket/{tid}/{endpoint}")),
                )
            return messages

        async def find() -> list[str] | None:
            fresh = await self.read_ticket(tid)
            wanted = action.body.strip()
            for comment in fresh.comments:
                if (
                    comment.id not in known
                    and comment.author == self.agent_user
                    and comment.public == action.public
                    and comment.body.strip() == wanted
                ):
                    return [f"found transaction {comment.id}"]
            return None

        try:
            messages = await create_once(
                send, find, settle_seconds=self.opts.create_settle_seconds, sleep=self.runtime.sleep
            )
        except RejectedError as exc:
            return self.result(action, Outcome.FAILED, exc.message)
        return self.result(action, detail="; ".join(messages))

    async def apply_set_status(self, ticket: Ticket, action: SetStatus) -> ActionResult:
        """``PUT {"Status": …}`` with the lifecycle value mapped to the status."""
        try:
            value = self._status_value(action.status)
        except _Refused as problem:
            return self.result(action, Outcome.FAILED, str(problem))
        return await self._apply_update(action, {"Status": value}, ticket.id)

    async def apply_set_priority(self, ticket: Ticket, action: SetPriority) -> ActionResult:
        """``PUT {"Priority": n}`` with the number mapped to the priority."""
        return await self._apply_update(
            action, {"Priority": str(self.priorities[action.priority])}, ticket.id
        )

    async def apply_set_severity(self, ticket: Ticket, action: SetSeverity) -> ActionResult:
        """The severity field (``fields.severity``) set to the value ``severity_values`` maps."""
        source = self.config.field_source("severity")
        if source is None:
            detail = "severity is not mapped (fields.severity in the desk config)"
            return self.result(action, Outcome.FAILED, detail)
        try:
            payload = self._custom_write(source, self._severity_value(action.severity), ticket)
        except _Refused as problem:
            return self.result(action, Outcome.FAILED, str(problem))
        return await self._apply_update(action, payload, ticket.id)

    async def apply_set_field(self, ticket: Ticket, action: SetField) -> ActionResult:
        """A canonical field written where ``fields`` maps it (a custom field, mostly)."""
        source = self.config.field_source(action.field)
        if source is None:
            detail = f"field {action.field!r} is not mapped (fields in the desk config)"
            return self.result(action, Outcome.FAILED, detail)
        try:
            payload = self._custom_write(source, action.value, ticket)
        except _Refused as problem:
            return self.result(action, Outcome.FAILED, str(problem))
        return await self._apply_update(action, payload, ticket.id)

    async def _set_tags(self, ticket: Ticket, action: BaseAction, tags: set[str]) -> ActionResult:
        field = self.opts.tags_field
        if not field:
            detail = "tags need options.tags_field, a multi-value custom field (RT has no tags)"
            return self.result(action, Outcome.FAILED, detail)
        current = await self.read_ticket(ticket.id)  # the field is replaced as a whole
        if tags == set(current.tags):
            return self.result(action, Outcome.UNCHANGED)
        payload = {"CustomFields": {field: sorted(tags)}}
        return await self._apply_update(action, payload, ticket.id)

    async def apply_add_tags(self, ticket: Ticket, action: AddTags) -> ActionResult:
        """The tags field gets the tags (the others are kept)."""
        current = await self.read_ticket(ticket.id) if self.opts.tags_field else ticket
        return await self._set_tags(ticket, action, set(current.tags) | set(action.tags))

    async def apply_remove_tags(self, ticket: Ticket, action: RemoveTags) -> ActionResult:
        """The tags field loses the tags (the others are kept)."""
        current = await self.read_ticket(ticket.id) if self.opts.tags_field else ticket
        return await self._set_tags(ticket, action, set(current.tags) - set(action.tags))

    async def apply_escalate(self, ticket: Ticket, action: Escalate) -> ActionResult:
        """The target's ``group`` is an RT queue (the ticket moves there), its ``assignee`` an
        RT user (the ticket's Owner)."""
        target = self.config.escalation.get(action.target)
        if target is None:
            detail = (
                f"escalation target {action.target!r} is not mapped "
                f"(escalation.{action.target} in the desk config)"
            )
            return self.result(action, Outcome.FAILED, detail)
        payload: dict[str, str] = {}
        if target.group is not None:
            payload["Queue"] = target.group
        if target.assignee is not None:
            payload["Owner"] = target.assignee
        if not payload:
            detail = (
                f"escalation target {action.target!r}: RT escalates to a queue (group) or an "
                "owner (assignee), and the target names neither"
            )
            return self.result(action, Outcome.FAILED, detail)
        return await self._apply_update(action, payload, ticket.id)

    async def apply_resolve(self, ticket: Ticket, action: Resolve) -> ActionResult:
        """Status ``resolved`` (as mapped), with the reason in ``fields.resolution_reason``
        when mapped, else as a ``resolution_tag_prefix`` tag when a tags field is set."""
        try:
            payload: dict[str, Any] = {"Status": self._status_value(Status.RESOLVED)}
            source = self.config.field_source("resolution_reason")
            if source is not None:
                extra = self._custom_write(source, action.resolution, ticket)
            elif self.opts.tags_field:
                tag = re.sub(r"\s+", "_", f"{self.config.resolution_tag_prefix}{action.resolution}")
                extra = {"CustomFields": {self.opts.tags_field: sorted({*ticket.tags, tag})}}
            else:
                extra = {}
        except _Refused as problem:
            return self.result(action, Outcome.FAILED, str(problem))
        return await self._apply_update(action, {**payload, **extra}, ticket.id)

    async def apply_close(self, ticket: Ticket, action: Close) -> ActionResult:
        """The lifecycle status mapped to ``closed`` (``rejected`` by default)."""
        if ticket.status == Status.CLOSED:
            return self.result(action, Outcome.UNCHANGED, "already closed")
        try:
            value = self._status_value(Status.CLOSED)
        except _Refused as problem:
            return self.result(action, Outcome.FAILED, str(problem))
        return await self._apply_update(action, {"Status": value}, ticket.id)

    async def already_applied(self, ticket: Ticket, action: BaseAction) -> bool:
        """A follow-up is found by its link and subject; comments by the base rule."""
        if isinstance(action, CreateFollowUp):
            return await self._find_follow_up(ticket.id, action.subject, None) is not None
        return await super().already_applied(ticket, action)

    async def _find_follow_up(
        self, original: str, subject: str, since: datetime | None
    ) -> str | None:
        """A ticket that refers to ``original`` with this subject (created since ``since``).

        Links live in RT's database tables: the lookup is strongly consistent."""
        terms = [
            f"RefersTo = {ticketsql.ticket_id(original)}",
            f"Subject = {ticketsql.quote(subject)}",
        ]
        if since is not None:
            terms.append(f"Created >= {ticketsql.rt_time(since)}")
        body = await self.client.get_json(
            f"{API}/tickets", params={"query": " AND ".join(terms), "fields": "Subject"}
        )
        for record in _items(body):
            if str(record.get("Subject")) == subject:
                return str(record["id"])
        return None

    async def apply_create_follow_up(self, ticket: Ticket, action: CreateFollowUp) -> ActionResult:
        """``POST /REST/2.0/ticket`` in the same queue, for the same requestor, with the
        customer's text and a ``RefersTo`` link to the original (RT has no follow-up link
        type; ``Ticket.follow_up_of`` reads the link back). After a lost response the link
        and subject are looked up before sending again."""
        tid = self._id(ticket.id)
        since = datetime.fromtimestamp(int(self.runtime.wall_clock()) - 1, UTC)
        new: dict[str, Any] = {
            "Queue": ticket.group or "General",
            "Subject": action.subject,
            "Content": action.body,
            "ContentType": "text/plain",
            "RefersTo": tid,
        }
        if ticket.requester.id:
            new["Requestor"] = ticket.requester.email or ticket.requester.id

        async def send() -> str:
            answer = await self.client.send_json("POST", f"{API}/ticket", new, idempotent=False)
            if not isinstance(answer, dict) or not answer.get("id"):
                raise self._shape("creating a ticket answered no id", answer)
            return str(answer["id"])

        async def find() -> str | None:
            return await self._find_follow_up(tid, action.subject, since)

        try:
            created = await create_once(
                send, find, settle_seconds=self.opts.create_settle_seconds, sleep=self.runtime.sleep
            )
        except RejectedError as exc:
            return self.result(action, Outcome.FAILED, exc.message)
        return self.result(action, created_id=created)

    # --- webhooks -------------------------------------------------------------------------------

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> list[WebhookEvent]:
        """Verify and normalize one delivery of the RT Scrip (docs/helpdesks/rt.md).

        ``X-Ticketwarden-Signature`` must be ``sha256=`` + hex HMAC-SHA256(secret, timestamp +
        raw body), compared in constant time before the body is parsed;
        ``X-Ticketwarden-Timestamp`` (Unix seconds) must lie within the replay window. The
        delivery id is ``{ticket}:{transaction}``; a ``Create`` transaction is *created*, a
        status change to a resolved status *resolved*, anything else *updated* — the receiver
        re-reads the ticket through the API.
        """
        signature = headers.get(SIGNATURE_HEADER)
        stamp = headers.get(TIMESTAMP_HEADER)
        if not signature or not stamp:
            raise WebhookRejected("unsigned", "no X-Ticketwarden-Signature/-Timestamp header")
        if not signatures_match(sign_webhook(self.webhook_secret, stamp, body), signature):
            raise WebhookRejected("bad_signature")
        try:
            sent = datetime.fromtimestamp(int(stamp), UTC)
        except (ValueError, OverflowError) as exc:
            raise WebhookRejected("malformed", f"timestamp {stamp!r}") from exc
        check_timestamp(sent, now, self.replay_window)
        try:
            payload = WebhookPayload.model_validate_json(body)
        except ValidationError as exc:
            raise WebhookRejected("malformed", str(exc.errors()[:1])) from exc
        kind = EventKind.UPDATED
        if payload.type == "Create":
            kind = EventKind.CREATED
        elif payload.type == "Status" and self.statuses.get(payload.new_value) == Status.RESOLVED:
            kind = EventKind.RESOLVED
        at = payload.created if payload.created.tzinfo else payload.created.replace(tzinfo=UTC)
        return [
            WebhookEvent(
                delivery_id=f"{payload.ticket}:{payload.transaction}",
                ticket_id=str(payload.ticket),
                kind=kind,
                at=at,
            )
        ]

    # --- helpers --------------------------------------------------------------------------------

    def _id(self, ticket_id: str) -> str:
        try:
            return ticketsql.ticket_id(ticket_id)
        except ValueError as exc:
            raise NotFoundError(self.config.name, str(exc)) from exc

    async def _get_object(self, path: str) -> Mapping[str, Any]:
        body = await self.client.get_json(path)
        if not isinstance(body, dict):
            raise self._shape(f"GET {path} answered no object", body)
        return body

    def _shape(self, message: str, body: Any) -> ProtocolError:
        return ProtocolError(self.config.name, message, excerpt=repr(body)[:2000])


_LIST_FIELDS: Final = (
    "Subject,Status,Priority,Queue,Owner,Requestor,Created,LastUpdated,Resolved,CustomFields"
)
_WRITABLE_NATIVE: Final = frozenset({"Subject", "Due", "Starts", "TimeEstimated", "TimeLeft"})


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value in (None, "") else [value]


def _refers_to(record: Mapping[str, Any]) -> str | None:
    """The ticket this one refers to (``_hyperlinks`` ``ref: refers-to``), if any."""
    links = record.get("_hyperlinks")
    for link in links if isinstance(links, list) else ():
        if (
            isinstance(link, dict)
            and link.get("ref") == "refers-to"
            and link.get("type") == "ticket"
        ):
            return _ref_id(link)
    return None


def _path_segment(name: str) -> str:
    """A user name as one URL path segment (RT user names may be e-mail addresses)."""
    return httpx.URL("/" + name).raw_path.decode().lstrip("/").replace("/", "%2F")
