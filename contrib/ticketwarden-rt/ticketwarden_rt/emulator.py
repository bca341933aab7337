"""An in-process emulator of the RT 5 REST 2 subset the connector uses, for fast tests and
fault injection (built on :class:`ticketwarden.testing.emulator.Emulator`).

Shapes, status codes and messages are RT 5.0.3's as a real server answers them — the
``tests/test_rt_shapes.py`` test runs one request script against this emulator and a real RT
and compares the answers' shapes. What it reproduces on purpose:

- a refused ``PUT`` answers **200 with a message list** (``Status 'x' isn't a valid status``,
  ``Queue X does not exist``, ``That user does not exist``, ``Invalid value for custom
  field``), and a custom field the ticket does not have is dropped **silently** (``[]``);
- TicketSQL with RT's quoting (backslash escapes), ``AND``/``OR``/parentheses, date
  comparisons to the second with an explicit offset, and ``=`` on a date meaning the whole day;
- ids that are numbers in a ticket's own ``id`` but strings everywhere else, RT's unset date
  ``1970-01-01T00:00:00Z``, ``next_page`` links;
- authentication by basic auth or ``Authorization: token …``; errors as ``{"message": …}``.

RT itself sends no rate-limit headers. ``rate_limit=N`` stands for a rate-limiting proxy in
front of RT, answering with the IETF ``RateLimit-*`` headers that the shared client reads.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ticketwarden.core.connector import DeskConfig, DeskSecrets
from ticketwarden.core.http import BasicCredentials
from ticketwarden.core.model import EventKind, Ticket
from ticketwarden.testing.emulator import Emulator, iso
from ticketwarden_rt.connector import DEFAULT_PRIORITIES, DEFAULT_STATUSES, sign_webhook

__all__ = [
    "CUSTOM_FIELDS",
    "FIELD_MAP",
    "PASSWORD",
    "SEVERITY_VALUES",
    "TOKEN",
    "USER",
    "WEBHOOK_SECRET",
    "RTEmulator",
    "desk_config",
]

USER = "root"
PASSWORD = "password"
TOKEN = "1-14-emulatortoken"
WEBHOOK_SECRET = "rt-scrip-secret"

CUSTOM_FIELDS: dict[str, tuple[int, tuple[str, ...] | None, bool]] = {
    # name: (id, allowed values or None for free-form, multiple values)
    "Severity": (2, ("critical", "high", "medium", "low"), False),
    "Server URL": (3, None, False),
    "Module": (4, None, False),
    "Steps": (5, None, False),
    "Sample Machines": (6, None, False),
    "Version": (7, None, False),
    "Resolution": (8, None, False),
    "Tags": (9, None, True),
    "Internal Notes": (10, None, False),
}
"""The custom fields of ``tests/rt_initialdata.pl``, with the ids a fresh RT gives them."""

FIELD_MAP: dict[str, str] = {
    "server_url": "Server URL",
    "module": "Module",
    "steps": "Steps",
    "sample_machines": "Sample Machines",
    "version": "Version",
}
SEVERITY_VALUES = {"critical": 1, "high": 2, "medium": 3, "low": 4}
QUEUES = {1: "General", 2: "___Approvals", 3: "Escalations"}


def desk_config(
    base_url: str,
    *,
    name: str = "rt",
    queues: tuple[str, ...] = (),
    settle_seconds: float = 1.0,
    password: str = PASSWORD,
    requests_per_minute: float | None = None,
) -> tuple[DeskConfig, DeskSecrets]:
    """The desk configuration for an RT set up by ``tests/rt_initialdata.pl`` (or this
    emulator): every intake field mapped to its custom field, severity, resolution reason,
    tags, and the ``support-leads`` escalation target as the ``Escalations`` queue.
    ``requests_per_minute`` lifts the request budget (RT has no rate limit of its own)."""
    fields = {k: f"custom:{v}" for k, v in FIELD_MAP.items()}
    fields["severity"] = "custom:Severity"
    fields["resolution_reason"] = "custom:Resolution"
    config = DeskConfig.model_validate(
        {
            "name": name,
            "connector": "rt",
            "base_url": base_url,
            "fields": fields,
            "severity_values": SEVERITY_VALUES,
            "escalation": {"support-leads": {"group": "Escalations"}},
            "options": {
                "queues": list(queues),
                "page_size": 10,
                "tags_field": "Tags",
                "settle_seconds": settle_seconds,
                "create_settle_seconds": 0.0,
            },
            **(
                {
                    "http": {
                        "budget": {
                            "requests_per_minute": requests_per_minute,
                            "share": 1.0,
                            "burst": 100,
                        }
                    }
                }
                if requests_per_minute
                else {}
            ),
        }
    )
    secrets = DeskSecrets(
        credentials=BasicCredentials(username=USER, password=SecretStr(password)),
        webhook_secret=SecretStr(WEBHOOK_SECRET),
    )
    return config, secrets


@dataclass
class _Ticket:
    id: int
    subject: str
    status: str
    priority: int
    queue: int
    owner: str
    requestors: list[str]
    creator: str
    created: datetime
    updated: datetime
    resolved: datetime | None = None
    custom: dict[str, list[str]] = field(default_factory=dict)
    refers_to: list[int] = field(default_factory=list)


@dataclass
class _Txn:
    id: int
    ticket: int
    type: str
    creator: str
    created: datetime
    field: str = ""
    old: str = ""
    new: str = ""


class RTEmulator(Emulator):
    """RT 5 REST 2: tickets, history, attachments, TicketSQL search, queues and users."""

    name = "rt"
    page_size = 10

    def __init__(self, **kwargs: Any) -> None:
        self.tickets: dict[int, _Ticket] = {}
        self.transactions: list[_Txn] = []
        self.attachments: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {
            USER: {
                "id": 14,
                "Name": USER,
                "EmailAddress": "root@localhost",
                "RealName": "Enoch Root",
                "Privileged": 1,
            },
            "RT_System": {"id": 1, "Name": "RT_System", "Privileged": 1, "RealName": ""},
            "Nobody": {"id": 6, "Name": "Nobody", "Privileged": 1, "RealName": ""},
        }
        self._next_txn = 40
        super().__init__(**kwargs)

    # --- the API ---------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        p = "/REST/2.0"
        return [
            Route(p + "/ticket", self._create, methods=["POST"]),
            Route(p + "/ticket/{id:int}", self._show, methods=["GET"]),
            Route(p + "/ticket/{id:int}", self._update, methods=["PUT"]),
            Route(p + "/ticket/{id:int}/comment", self._comment, methods=["POST"]),
            Route(p + "/ticket/{id:int}/correspond", self._correspond, methods=["POST"]),
            Route(p + "/ticket/{id:int}/history", self._history, methods=["GET"]),
            Route(p + "/ticket/{id:int}/attachments", self._attachments, methods=["GET"]),
            Route(p + "/tickets", self._search, methods=["GET"]),
            Route(p + "/queue/{id:int}", self._queue, methods=["GET"]),
            Route(p + "/user/{name:path}", self._user, methods=["GET"]),
        ]

    def authenticate(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header == f"token {TOKEN}":
            return True
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == USER and password == PASSWORD
        return False

    def rate_limit_headers(self, limit: int, remaining: int, reset: int) -> dict[str, str]:
        return {
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(reset),
        }

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message}

    def _url(self, kind: str, ident: Any) -> str:
        return f"{self.base_url}/REST/2.0/{kind}/{ident}"

    def _ref(self, kind: str, ident: Any) -> dict[str, Any]:
        return {"id": str(ident), "type": kind, "_url": self._url(kind, ident)}

    def _cfs(self, t: _Ticket) -> list[dict[str, Any]]:
        return [
            {
                "id": str(cf_id),
                "name": name,
                "type": "customfield",
                "_url": self._url("customfield", cf_id),
                "values": list(t.custom.get(name, [])),
            }
            for name, (cf_id, _, _) in CUSTOM_FIELDS.items()
        ]

    def _record(self, t: _Ticket) -> dict[str, Any]:
        zero = "1970-01-01T00:00:00Z"
        links: list[dict[str, Any]] = [
            {"ref": "self", "type": "ticket", "id": t.id, "_url": self._url("ticket", t.id)}
        ]
        links += [
            {"ref": "refers-to", "type": "ticket", "id": str(o), "_url": self._url("ticket", o)}
            for o in t.refers_to
        ]
        links += [
            {
                "ref": "customfield",
                "type": "customfield",
                "id": str(i),
                "name": n,
                "_url": self._url("customfield", i),
            }
            for n, (i, _, _) in CUSTOM_FIELDS.items()
        ]
        links.append({"ref": "history", "_url": self._url("ticket", f"{t.id}/history")})
        return {
            "id": t.id,
            "Type": "ticket",
            "Subject": t.subject,
            "Status": t.status,
            "Priority": str(t.priority),
            "InitialPriority": "0",
            "FinalPriority": "0",
            "Queue": self._ref("queue", t.queue),
            "Owner": self._ref("user", t.owner),
            "Creator": self._ref("user", t.creator),
            "LastUpdatedBy": self._ref("user", t.creator),
            "Requestor": [self._ref("user", r) for r in t.requestors],
            "Cc": [],
            "AdminCc": [],
            "Created": iso(t.created),
            "LastUpdated": iso(t.updated),
            "Resolved": iso(t.resolved) if t.resolved else zero,
            "Started": zero,
            "Starts": zero,
            "Due": zero,
            "TimeWorked": "0",
            "TimeLeft": "0",
            "TimeEstimated": "0",
            "EffectiveId": self._ref("ticket", t.id),
            "CustomFields": self._cfs(t),
            "_hyperlinks": links,
        }

    def _page(self, request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        per_page = max(1, min(100, int(request.query_params.get("per_page", "20"))))
        page = max(1, int(request.query_params.get("page", "1")))
        chunk = items[(page - 1) * per_page : page * per_page]
        pages = math.ceil(len(items) / per_page)
        body: dict[str, Any] = {
            "count": len(chunk),
            "page": page,
            "pages": pages if pages else 0.0,
            "per_page": per_page,
            "total": len(items),
            "items": chunk,
        }
        if page < pages:
            query = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
            query_text = "&".join(f"{k}={_qs(v)}" for k, v in query) + f"&page={page + 1}"
            body["next_page"] = f"{self.base_url}{request.url.path}?{query_text}"
        return body

    def _fields(self, request: Request) -> list[str]:
        return [f for f in request.query_params.get("fields", "").split(",") if f]

    def _ticket_or_404(self, request: Request) -> _Ticket | Response:
        t = self.tickets.get(int(request.path_params["id"]))
        return t if t is not None else self.json({"message": "Resource does not exist"}, 404)

    def _who(self, request: Request) -> str:
        return USER

    async def _show(self, request: Request) -> Response:
        t = self._ticket_or_404(request)
        return t if isinstance(t, Response) else self.json(self._record(t))

    async def _history(self, request: Request) -> Response:
        t = self._ticket_or_404(request)
        if isinstance(t, Response):
            return t
        wanted = self._fields(request)
        items = []
        for txn in self.transactions:
            if txn.ticket != t.id:
                continue
            full = {
                "Type": txn.type,
                "Creator": self._ref("user", txn.creator),
                "Created": iso(txn.created),
                "Field": txn.field,
                "OldValue": txn.old,
                "NewValue": txn.new,
            }
            item: dict[str, Any] = {
                "id": str(txn.id),
                "type": "transaction",
                "_url": self._url("transaction", txn.id),
            }
            item.update({k: full[k] for k in wanted if k in full})
            items.append(item)
        return self.json(self._page(request, items))

    async def _attachments(self, request: Request) -> Response:
        t = self._ticket_or_404(request)
        if isinstance(t, Response):
            return t
        wanted = self._fields(request)
        mine = {x.id for x in self.transactions if x.ticket == t.id}
        items = []
        for a in self.attachments:
            if a["TransactionId"] not in mine:
                continue
            full = {
                "TransactionId": str(a["TransactionId"]),
                "ContentType": a["ContentType"],
                "Content": a["Content"],
            }
            item = {
                "id": str(a["id"]),
                "type": "attachment",
                "_url": self._url("attachment", a["id"]),
            }
            item.update({k: full[k] for k in wanted if k in full})
            items.append(item)
        return self.json(self._page(request, items))

    async def _search(self, request: Request) -> Response:
        try:
            predicate = _parse(request.query_params.get("query", ""))
        except ValueError as exc:
            return self.json({"message": f"Wrong query, {exc}"}, 400)
        found = [t for t in self.tickets.values() if t.status != "deleted" and predicate(self, t)]
        keys = request.query_params.getlist("orderby") or ["id"]
        orders = request.query_params.getlist("order")
        for index in reversed(range(len(keys))):
            descending = index < len(orders) and orders[index].upper() == "DESC"
            key = keys[index]
            found.sort(key=lambda t: _value(self, t, key), reverse=descending)
        wanted = self._fields(request)
        items = []
        for t in found:
            record = self._record(t)
            item: dict[str, Any] = {
                "id": str(t.id),
                "type": "ticket",
                "_url": self._url("ticket", t.id),
            }
            for name in wanted:
                if name == "RefersTo":
                    item[name] = ",".join(str(r) for r in t.refers_to)
                elif name in record:
                    item[name] = record[name]
            items.append(item)
        return self.json(self._page(request, items))

    async def _queue(self, request: Request) -> Response:
        qid = int(request.path_params["id"])
        if qid not in QUEUES:
            return self.json({"message": "Resource does not exist"}, 404)
        return self.json(
            {
                "id": qid,
                "Name": QUEUES[qid],
                "Description": "",
                "CorrespondAddress": "",
                "CommentAddress": "",
                "Disabled": "0",
                "Lifecycle": "default",
            }
        )

    async def _user(self, request: Request) -> Response:
        user = self.users.get(request.path_params["name"])
        if user is None:
            return self.json({"message": "Resource does not exist"}, 404)
        return self.json({**user, "Disabled": "0"})

    # --- writes ---------------------------------------------------------------------------------

    def _txn(
        self,
        ticket: _Ticket,
        kind: str,
        creator: str,
        *,
        field: str = "",
        old: str = "",
        new: str = "",
        content: str | None = None,
    ) -> _Txn:
        self._next_txn += 1
        txn = _Txn(self._next_txn, ticket.id, kind, creator, self.now(), field, old, new)
        self.transactions.append(txn)
        if content is not None:
            self.attachments.append(
                {
                    "id": len(self.attachments) + 1,
                    "TransactionId": txn.id,
                    "ContentType": "text/plain",
                    "Content": content,
                }
            )
        ticket.updated = self.now()
        return txn

    def _queue_id(self, value: Any) -> int | None:
        text = str(value)
        if text.isdigit() and int(text) in QUEUES:
            return int(text)
        return next((i for i, n in QUEUES.items() if n == text), None)

    def _user_for(self, address: str) -> str:
        if address not in self.users:
            self.users[address] = {
                "id": 100 + len(self.users),
                "Name": address,
                "EmailAddress": address,
                "RealName": "",
                "Privileged": 0,
            }
        return address

    async def _create(self, request: Request) -> Response:
        data = json.loads(await request.body() or b"{}")
        queue = self._queue_id(data.get("Queue", ""))
        if queue is None:
            return self.json({"message": "Could not create ticket. Queue not set"}, 400)
        requestors = data.get("Requestor") or []
        requestors = [requestors] if isinstance(requestors, str) else list(requestors)
        tid = max(self.tickets, default=0) + 1
        now = self.now()
        t = _Ticket(
            tid,
            str(data.get("Subject", "")),
            str(data.get("Status", "new")),
            int(data.get("Priority", 0)),
            queue,
            "Nobody",
            [self._user_for(r) for r in requestors],
            self._who(request),
            now,
            now,
        )
        for name, value in (data.get("CustomFields") or {}).items():
            if name in CUSTOM_FIELDS:
                t.custom[name] = value if isinstance(value, list) else [str(value)]
        refers = data.get("RefersTo")
        if refers:
            t.refers_to = [int(r) for r in (refers if isinstance(refers, list) else [refers])]
        self.tickets[tid] = t
        self._txn(t, "Create", t.creator, content=str(data.get("Content", "")))
        return self.json({"id": str(tid), "type": "ticket", "_url": self._url("ticket", tid)}, 201)

    async def _message(self, request: Request, kind: str, answer: str) -> Response:
        t = self._ticket_or_404(request)
        if isinstance(t, Response):
            return t
        data = json.loads(await request.body() or b"{}")
        self._txn(t, kind, self._who(request), content=str(data.get("Content", "")))
        return self.json([answer], 201)

    async def _comment(self, request: Request) -> Response:
        return await self._message(request, "Comment", "Comments added")

    async def _correspond(self, request: Request) -> Response:
        return await self._message(request, "Correspond", "Correspondence added")

    async def _update(self, request: Request) -> Response:
        t = self._ticket_or_404(request)
        if isinstance(t, Response):
            return t
        data = json.loads(await request.body() or b"{}")
        who = self._who(request)
        messages: list[str] = []
        prefix = f"Ticket {t.id}: "
        for key, value in data.items():
            if key == "Status":
                if value not in (*DEFAULT_STATUSES, "deleted"):
                    messages.append(
                        f"{prefix}Status '{value}' isn't a valid status for this ticket."
                    )
                elif value == t.status:
                    messages.append(f"{prefix}That is already the current value")
                else:
                    messages.append(f"{prefix}Status changed from '{t.status}' to '{value}'")
                    self._txn(t, "Status", who, field="Status", old=t.status, new=value)
                    t.status = value
                    t.resolved = self.now() if value == "resolved" else t.resolved
            elif key == "Priority":
                new = int(value)
                old_text, new_text = _as_string(t.priority), _as_string(new)
                messages.append(f"{prefix}Priority changed from '{old_text}' to '{new_text}'")
                self._txn(t, "Set", who, field="Priority", old=str(t.priority), new=str(new))
                t.priority = new
            elif key == "Queue":
                queue = self._queue_id(value)
                if queue is None:
                    messages.append(f"{prefix}Queue {value} does not exist")
                else:
                    messages.append(
                        f"{prefix}Queue changed from {QUEUES[t.queue]} to {QUEUES[queue]}"
                    )
                    self._txn(t, "Set", who, field="Queue", old=str(t.queue), new=str(queue))
                    t.queue = queue
            elif key == "Owner":
                if value not in self.users or not self.users[value].get("Privileged"):
                    messages.append(f"{prefix}That user does not exist")
                else:
                    messages.append(f"{prefix}Owner changed from {t.owner} to {value}")
                    self._txn(t, "Set", who, field="Owner", old=t.owner, new=value)
                    t.owner = value
            elif key == "Subject":
                messages.append(f"{prefix}Subject changed from '{t.subject}' to '{value}'")
                self._txn(t, "Set", who, field="Subject", old=t.subject, new=str(value))
                t.subject = str(value)
            elif key == "CustomFields":
                for name, raw in value.items():
                    if name not in CUSTOM_FIELDS:
                        continue  # RT drops a custom field it does not know without a word
                    _, allowed, _ = CUSTOM_FIELDS[name]
                    new_values = [str(v) for v in (raw if isinstance(raw, list) else [raw])]
                    new_values = [v for v in new_values if v != ""]
                    if allowed is not None and any(v not in allowed for v in new_values):
                        messages.append("Invalid value for custom field")
                        continue
                    old_values = t.custom.get(name, [])
                    if old_values and new_values:
                        messages.append(
                            f"{name} {', '.join(old_values)} changed to {', '.join(new_values)}"
                        )
                    elif new_values:
                        messages.append(f"{', '.join(new_values)} added as a value for {name}")
                    else:
                        messages.append(
                            f"{', '.join(old_values)} is no longer a value for custom field {name}"
                        )
                    self._txn(t, "CustomField", who, field=str(CUSTOM_FIELDS[name][0]))
                    t.custom[name] = new_values
        return self.json(messages)

    # --- what the conformance suite and the tests call -----------------------------------------

    def add_ticket(self, ticket: Ticket) -> str:
        requester = self._user_for(ticket.requester.email or "customer@example.com")
        tid = max(self.tickets, default=0) + 1
        statuses = {v: k for k, v in DEFAULT_STATUSES.items()}
        severities = {v: k for k, v in SEVERITY_VALUES.items()}
        t = _Ticket(
            tid,
            ticket.subject,
            statuses[ticket.status],
            DEFAULT_PRIORITIES[ticket.priority] if ticket.priority else 0,
            1,
            "Nobody",
            [requester],
            requester,
            ticket.created_at,
            ticket.updated_at,
        )
        for canonical, value in ticket.fields.items():
            if canonical in FIELD_MAP:
                t.custom[FIELD_MAP[canonical]] = [value]
        if ticket.severity is not None:
            t.custom["Severity"] = [severities[int(ticket.severity)]]
        if ticket.tags:
            t.custom["Tags"] = sorted(ticket.tags)
        self.tickets[tid] = t
        self._next_txn += 1
        create = _Txn(self._next_txn, tid, "Create", requester, ticket.created_at)
        self.transactions.append(create)
        self.attachments.append(
            {
                "id": len(self.attachments) + 1,
                "TransactionId": create.id,
                "ContentType": "text/plain",
                "Content": ticket.description,
            }
        )
        t.updated = ticket.updated_at
        return str(tid)

    def customer_reply(self, ticket_id: str, body: str) -> None:
        t = self.tickets[int(ticket_id)]
        self._txn(t, "Correspond", t.requestors[0], content=body)

    def add_unknown_field(self, ticket_id: str) -> None:
        self.tickets[int(ticket_id)].custom["Internal Notes"] = ["not for ticketwarden"]

    def make_webhook(
        self,
        ticket_id: str,
        kind: EventKind,
        secret: str,
        *,
        delivery_id: str | None = None,
        at: datetime | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A delivery as the Scrip of docs/helpdesks/rt.md posts it."""
        moment = at or self.now()
        t = self.tickets[int(ticket_id)]
        txn_type = {"created": "Create", "resolved": "Status"}.get(kind.value, "Correspond")
        if delivery_id is None:
            self._next_txn += 1  # each delivery stands for a transaction of its own
        txn = int(delivery_id.rpartition(":")[2]) if delivery_id else self._next_txn
        payload = {
            "ticket": t.id,
            "transaction": txn,
            "type": txn_type,
            "field": "Status" if txn_type == "Status" else "",
            "new_value": "resolved" if txn_type == "Status" else "",
            "created": iso(moment),
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        stamp = str(int(moment.timestamp()))
        signature = sign_webhook(SecretStr(secret), stamp, body)
        return (
            {
                "content-type": "application/json",
                "x-ticketwarden-timestamp": stamp,
                "x-ticketwarden-signature": signature,
            },
            body,
        )


def _qs(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _as_string(priority: int) -> str:
    return {0: "Low", 50: "Medium", 100: "High"}.get(priority, str(priority))


def _value(emulator: RTEmulator, t: _Ticket, key: str) -> Any:
    return {
        "id": t.id,
        "LastUpdated": t.updated,
        "Created": t.created,
        "Status": t.status,
        "Subject": t.subject,
        "Queue": QUEUES.get(t.queue, ""),
        "Priority": t.priority,
    }.get(key, t.id)


# --- a TicketSQL subset: Field OP 'value' | Field OP number, AND, OR, parentheses -------------

_TOKEN = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<op><=|>=|!=|=|<|>|(?i:LIKE)\b)"
    r"|(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>-?[0-9]+)\b|(?P<word>[A-Za-z_.{}]+))"
)
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?: (\d{2}:\d{2}:\d{2}))?(?: ([+-]\d{4}))?$")
Predicate = Any


def _tokens(query: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(query.rstrip()):
        match = _TOKEN.match(query, position)
        if match is None or match.end() == position:
            raise ValueError(f"expecting a token in '{query[position : position + 20]}'")
        kind = match.lastgroup or ""
        text = match.group(kind)
        if kind == "word" and text.upper() in ("AND", "OR"):
            kind = text.upper()
        tokens.append((kind, text))
        position = match.end()
    return tokens


def _parse(query: str) -> Predicate:
    tokens = _tokens(query)
    if not tokens:
        return lambda emulator, t: True
    predicate, rest = _expression(tokens)
    if rest:
        raise ValueError(f"expecting a AGGREGATOR near {rest[0][1]!r}")
    return predicate


def _expression(tokens: list[tuple[str, str]]) -> tuple[Predicate, list[tuple[str, str]]]:
    left, rest = _term(tokens)
    while rest and rest[0][0] in ("AND", "OR"):
        joiner = rest[0][0]
        right, rest = _term(rest[1:])
        if joiner == "AND":
            left = (lambda a, b: lambda e, t: a(e, t) and b(e, t))(left, right)
        else:
            left = (lambda a, b: lambda e, t: a(e, t) or b(e, t))(left, right)
    return left, rest


def _term(tokens: list[tuple[str, str]]) -> tuple[Predicate, list[tuple[str, str]]]:
    if tokens and tokens[0][0] == "lp":
        inner, rest = _expression(tokens[1:])
        if not rest or rest[0][0] != "rp":
            raise ValueError("expecting ')'")
        return inner, rest[1:]
    if len(tokens) < 3 or tokens[0][0] != "word" or tokens[1][0] != "op":
        raise ValueError(f"expecting a condition near {tokens[:3]!r}")
    name, op = tokens[0][1], tokens[1][1].upper()
    kind, raw = tokens[2]
    if kind == "str":
        value: str = re.sub(r"\\(.)", r"\1", raw[1:-1])
    elif kind == "num":
        value = raw
    else:
        raise ValueError(f"expecting a value after {name} {op}")
    return _condition(name, op, value), tokens[3:]


def _compare(op: str, have: Any, want: Any) -> bool:
    return bool(
        {
            "=": have == want,
            "!=": have != want,
            "<": have < want,
            ">": have > want,
            "<=": have <= want,
            ">=": have >= want,
        }[op]
    )


def _condition(name: str, op: str, value: str) -> Predicate:
    if name in ("LastUpdated", "Created"):
        match = _DATE.match(value)
        if match is None:
            raise ValueError(f"cannot read the date {value!r}")
        day, clock, offset = match.groups()
        moment = datetime.fromisoformat(f"{day}T{clock or '00:00:00'}{offset or '+0000'}")
        moment = moment.astimezone(UTC)

        def by_date(emulator: RTEmulator, t: _Ticket) -> bool:
            have = t.updated if name == "LastUpdated" else t.created
            have = have.replace(microsecond=0)
            if op == "=":  # RT: '=' on a date means that whole day
                start = moment.replace(hour=0, minute=0, second=0)
                return start <= have < start + timedelta(days=1)
            return _compare(op, have, moment)

        return by_date
    if name == "id":
        return lambda emulator, t: _compare(op, t.id, int(value))
    if name == "RefersTo":
        return lambda emulator, t: (int(value) in t.refers_to) == (op == "=")
    if name in ("Status", "Subject", "Queue", "Creator"):

        def by_text(emulator: RTEmulator, t: _Ticket) -> bool:
            have = {
                "Status": t.status,
                "Subject": t.subject,
                "Queue": QUEUES.get(t.queue, ""),
                "Creator": t.creator,
            }[name]
            if op == "LIKE":
                return value.lower() in have.lower()
            return _compare(op, have.lower(), value.lower())

        return by_text
    raise ValueError(f"unsupported field {name}")
