"""The bench desk of ``bench/sync.py``: a generated helpdesk, its emulator and its connector.

Modelled on ``tests/toydesk.py`` (and copied, not imported: the bench does not depend on the
test suite), with what a sync benchmark needs on top:

* **A generated desk of N tickets** (:class:`TicketFactory`), deterministic from a seed. Each
  vendor-shaped record is rebuilt on demand from ``(seed, index)``; the emulator keeps only a
  compact index (update time and status per ticket) plus the records ticketwarden changed. So
  the emulator's own memory barely grows with N and the peak RSS of the bench process is the
  sync job's.
* **A change feed of whole tickets with their comments**, ordered by ``(updated, id)``, paged
  (500 per page by default) with an ``updated:id`` cursor — like ToyDesk's, but with a bisect
  index instead of a sort per request.
* **Zendesk-style rate-limit headers** (``x-rate-limit``, ``x-rate-limit-remaining``,
  ``ratelimit-reset``) and a server-enforced limit per minute (the :class:`Emulator` base).
* **A batching connector**: every desk-changing action of one evaluation — status, priority,
  severity, tags, custom fields, escalation, resolution and *all* its comments — goes into one
  ``PATCH /api/tickets/{id}`` (a comment carries the marker ``tw:{key}``, so ticketwarden's own
  comments read back as ``system`` and a lost response is resolved by looking for the marker,
  never by posting twice). A follow-up ticket is one ``POST``.
"""

from __future__ import annotations

import bisect
import copy
import json
import random
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
    Outcome,
    Runtime,
)
from ticketwarden.core.errors import RejectedError
from ticketwarden.core.http import (
    BearerToken,
    HttpSettings,
    RateBudget,
    create_once,
    paginate_pages,
)
from ticketwarden.core.model import (
    AuthorRole,
    Comment,
    Contact,
    Organization,
    Priority,
    Severity,
    Status,
    Ticket,
)
from ticketwarden.testing.emulator import Emulator, FakeClock

TOKEN = "bench-sync-token"
BASE_URL = "http://bench.sync.test"
DESK = "bench"
FIRST_ID = 100001
PAGE_SIZE = 500

STATUSES = {
    "new": Status.NEW,
    "open": Status.OPEN,
    "pending": Status.WAITING_ON_CUSTOMER,
    "hold": Status.ON_HOLD,
    "solved": Status.RESOLVED,
    "closed": Status.CLOSED,
}
STATUS_NAME = {v: k for k, v in STATUSES.items()}
PRIORITY_OF = {1: "urgent", 2: "high", 3: "normal", 4: "low"}
"""The default policy's queue priority per severity (SEV-1..SEV-4): a ticket whose agents
already set it makes SEV-n a no-op, as on a desk that ticketwarden has been running on."""

CUSTOM_IDS = {
    "server_url": "f_server",
    "version": "f_version",
    "module": "f_module",
    "steps": "f_steps",
    "sample_machines": "f_machines",
    "sev1_contact": "f_contact",
}
ESCALATION = {
    "support-leads": {"group": "leads"},
    "support-management": {"group": "management"},
    "support-on-call": {"assignee": "on-call"},
}
WRITE_KINDS_INTERNAL = frozenset({"record", "remember"})


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# --- The generated desk ---------------------------------------------------------------------------

KINDS = (
    # (kind, weight, what the policy should do with it)
    ("quiet", 74, "complete, open, answered recently, priority set: nothing"),
    ("new", 8, "complete, arrived in the last half hour, no comments yet: nothing"),
    ("incomplete", 7, "a required field missing: INTAKE-1/2 hold (one write)"),
    ("sev1", 2, "severity 1: ESC-1 escalation + SEV1-1 contact request (one write)"),
    ("waiting", 6, "waiting on the customer 2-6 days: a CLOSE-3 reminder timer (one write)"),
    ("resolved", 3, "resolved 1-20 days ago: CLOSE-5 final close timer after 7 days"),
)
MODULES = ("Monitoring", "Backup", "Reporting", "Server")
TOPICS = (
    (
        "Backup job fails with error 0x80070005",
        "The nightly backup job for the file server fails with error 0x80070005 (access "
        "denied) since {n} days. The service account has not been changed and the share "
        "permissions look unchanged to us.",
    ),
    (
        "Monitoring alerts arrive twice",
        "Every monitoring alert for the database servers is delivered twice by e-mail, about "
        "{n} seconds apart, which floods the on-call mailbox during the night.",
    ),
    (
        "Report export to PDF is empty",
        "Exporting the monthly executive summary to PDF produces an empty document with {n} "
        "blank pages; the HTML preview shows the data correctly.",
    ),
    (
        "Server console very slow",
        "The web console takes more than {n} seconds to load any page since Monday. CPU and "
        "memory on the application server look normal and the database is not busy.",
    ),
)
STEPS = (
    "1. Open the console\n2. Go to Reports\n3. Export the summary as PDF\n4. Open the file",
    "Start the backup job manually from the scheduler and watch the job log.",
    "Trigger a test alert on any database server and check the on-call mailbox.",
)
CUSTOMER_LINES = (
    "Attached are the log files you asked for. The problem still occurs on {n} machines.",
    "We checked the settings again as suggested; nothing changed on our side.",
    "Here is the screenshot of the error dialog and the exact time it happened.",
)
AGENT_LINES = (
    "Thank you for the details. We are analysing the logs and will update you tomorrow.",
    "We reproduced the problem in our lab and are working on a fix; next update soon.",
    "Could you send the job log of the last failed run? It is in the scheduler's history.",
)


class TicketFactory:
    """N vendor-shaped ticket records, each rebuilt on demand from ``(seed, index)``."""

    def __init__(self, n: int, now: datetime, seed: int = 1) -> None:
        self.n = n
        self.now = now
        self.seed = seed
        self._now_ms = _ms(now)

    def tid(self, index: int) -> str:
        return str(FIRST_ID + index)

    def index(self, tid: str) -> int | None:
        try:
            i = int(tid) - FIRST_ID
        except ValueError:
            return None
        return i if 0 <= i < self.n else None

    def record(self, index: int) -> dict[str, Any]:
        """The ticket record as the desk's API returns it (comments included)."""
        rng = random.Random(self.seed * 1_000_003 + index)
        kind = rng.choices(KINDS, weights=[k[1] for k in KINDS])[0][0]
        now = self._now_ms
        hour = 3_600_000
        day = 24 * hour
        severity = rng.choices((2, 3, 4), weights=(25, 50, 25))[0]
        status = "open"
        comments: list[tuple[str, int]] = []  # (role, ms)
        if kind == "new":
            created = now - rng.randrange(1, 30) * 60_000
            status = "new"
        elif kind == "quiet":
            # answered within the last 20 hours (inside every update interval)
            last = now - rng.randrange(1 * hour, 20 * hour)
            created = last - rng.randrange(2 * hour, 25 * day)
            replies = rng.choice((1, 1, 2, 3))
            times = sorted(rng.randrange(created + 1, last) for _ in range(2 * replies - 1))
            roles = ["customer", "agent"] * replies
            comments = list(zip(roles, [*times, last], strict=True))
            comments = comments[1:] if rng.random() < 0.5 else comments  # some start answered
        elif kind == "incomplete":
            created = now - rng.randrange(5, 6 * 60) * 60_000
            if rng.random() < 0.5:
                comments = [("customer", created + rng.randrange(60_000, now - created + 1))]
            else:
                status = "new"
        elif kind == "sev1":
            severity = 1
            created = now - rng.randrange(5, 50) * 60_000
            comments = [("agent", created + rng.randrange(60_000, now - created))]
        elif kind == "waiting":
            asked = now - rng.randrange(2 * day + hour, 6 * day)
            created = asked - rng.randrange(10 * 60_000, 3 * hour)
            comments = [("agent", asked)]
            status = "pending"
        else:  # resolved
            solved = now - rng.randrange(1 * day, 20 * day)
            created = solved - rng.randrange(1 * hour, 4 * day)
            comments = [
                ("agent", created + (solved - created) // 3),
                ("customer", created + 2 * (solved - created) // 3),
                ("agent", solved),
            ]
            status = "solved"
        updated = max([created, *(t for _, t in comments)])
        topic, body = rng.choice(TOPICS)
        custom: dict[str, str] = {
            "f_server": rng.choice(
                ("https://rmm.acme.example/", "https://rmm.acme.example:8443/console")
            ),
            "f_version": f"10.1.{rng.randint(0, 6)}",
            "f_module": rng.choice(MODULES),
            "f_steps": rng.choice(STEPS),
            "f_machines": f"group {rng.randint(1, 40)} / machine {rng.randint(1000, 99999)}",
        }
        if kind == "incomplete":
            del custom[rng.choice(("f_server", "f_version", "f_machines", "f_steps"))]
        records_comments = []
        for k, (role, at) in enumerate(comments):
            lines = CUSTOMER_LINES if role == "customer" else AGENT_LINES
            records_comments.append(
                {
                    "id": f"{FIRST_ID + index}-{k}",
                    "body": rng.choice(lines).format(n=rng.randint(2, 90)),
                    "public": True,
                    "role": role,
                    "marker": "",
                    "created": at,
                }
            )
        tid = self.tid(index)
        return {
            "id": tid,
            "subject": f"{topic} (site {rng.randint(1, 30)})",
            "description": f"Hello support,\n\n{body.format(n=rng.randint(2, 400))}\n\n"
            "Kind regards,\nAnna Berger",
            "status": status,
            "severity": severity,
            "priority": PRIORITY_OF[severity],
            "tags": sorted(rng.sample(("rollout", "berlin", "q4"), rng.randint(0, 2))),
            "custom": custom,
            "group": "support",
            "assignee": None,
            "requester": {"id": f"u{index % 997}", "email": "anna@acme.example"},
            "org": "acme",
            "created": created,
            "updated": updated,
            "resolution": "fixed" if status == "solved" else None,
            "follow_up_of": None,
            "comments": records_comments,
            "kind": kind,  # the generator's category (ignored by the connector)
        }


# --- The emulator ---------------------------------------------------------------------------------


class SyncBenchEmulator(Emulator):
    """The bench desk's API: change feed, search, read, batched update, follow-ups."""

    name = "syncbench"
    page_size = PAGE_SIZE

    def __init__(self, factory: TicketFactory, **kwargs: Any) -> None:
        self.factory = factory
        self.changed: dict[str, bytes] = {}
        """Records ticketwarden (or a seeding hook) changed, as compact JSON overriding the
        generated record (a few hundred bytes each, so the desk's state stays small)."""
        self.updated: list[int] = []
        self.status: list[str] = []
        self.kind: list[str] = []
        for i in range(factory.n):
            record = factory.record(i)
            self.updated.append(record["updated"])
            self.status.append(record["status"])
            self.kind.append(record["kind"])
        self.kinds = Counter(self.kind)
        self.order: list[tuple[int, int]] = sorted(
            (u, FIRST_ID + i) for i, u in enumerate(self.updated)
        )
        self.extra: dict[str, dict[str, Any]] = {}  # tickets created through the API
        self.next_extra = FIRST_ID + factory.n + 1000
        self.changed_writes = 0
        super().__init__(base_url=BASE_URL, **kwargs)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        first = len(self.requests)
        await super().__call__(scope, receive, send)
        # The log keeps what the bench counts (time, method, path, query, status); bodies
        # and headers would make the fake desk's memory grow with every request.
        for entry in self.requests[first:]:
            entry.body = b""
            entry.headers = {}

    def routes(self) -> list[Route]:
        return [
            Route("/api/changes", self.get_changes),
            Route("/api/search", self.get_search),
            Route("/api/tickets", self.post_ticket, methods=["POST"]),
            Route("/api/tickets", self.find_tickets, methods=["GET"]),
            Route("/api/tickets/{id}", self.get_ticket, methods=["GET"]),
            Route("/api/tickets/{id}", self.patch_ticket, methods=["PATCH"]),
        ]

    def authenticate(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def rate_limit_headers(self, limit: int, remaining: int, reset: int) -> dict[str, str]:
        return {
            "x-rate-limit": str(limit),
            "x-rate-limit-remaining": str(remaining),
            "ratelimit-reset": str(reset),
        }

    def now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    # records ------------------------------------------------------------------------------------

    def record(self, tid: str) -> dict[str, Any] | None:
        """The ticket's current record (a fresh dict: changing it changes nothing)."""
        stored = self.changed.get(tid)
        if stored is not None:
            return json.loads(stored)  # type: ignore[no-any-return]
        if tid in self.extra:
            return self.extra[tid]
        index = self.factory.index(tid)
        return None if index is None else self.factory.record(index)

    def kind_of(self, tid: str) -> str:
        """The generator's category of a ticket ("api" for one created through the API)."""
        index = self.factory.index(tid)
        return "api" if index is None else self.kind[index]

    def _save(self, record: dict[str, Any]) -> None:
        if record["id"] in self.extra:
            self.extra[record["id"]] = record
        else:
            self.changed[record["id"]] = json.dumps(record, separators=(",", ":")).encode()

    def _touch(self, record: dict[str, Any]) -> None:
        """The record changed now: move it to the end of the change feed."""
        tid = record["id"]
        new = self.now_ms()
        index = self.factory.index(tid)
        if index is not None:
            old = (self.updated[index], int(tid))
            pos = bisect.bisect_left(self.order, old)
            if pos < len(self.order) and self.order[pos] == old:
                del self.order[pos]
            self.updated[index] = new
            self.status[index] = record["status"]
            bisect.insort(self.order, (new, int(tid)))
        record["updated"] = new

    def _comment(self, body: str, public: bool, role: str, marker: str = "") -> dict[str, Any]:
        self.next_extra += 1
        return {
            "id": f"c{self.next_extra}",
            "body": body,
            "public": public,
            "role": role,
            "marker": marker,
            "created": self.now_ms(),
        }

    # seeding hooks (the Emulator contract) ------------------------------------------------------

    def add_ticket(self, ticket: Ticket) -> str:
        self.next_extra += 1
        tid = str(self.next_extra)
        self.extra[tid] = {
            "id": tid,
            "subject": ticket.subject,
            "description": ticket.description,
            "status": STATUS_NAME[ticket.status],
            "severity": int(ticket.severity) if ticket.severity else None,
            "priority": ticket.priority.value if ticket.priority else None,
            "tags": sorted(ticket.tags),
            "custom": {CUSTOM_IDS[k]: v for k, v in ticket.fields.items() if k in CUSTOM_IDS},
            "group": ticket.group,
            "assignee": ticket.assignee,
            "requester": {"id": ticket.requester.id, "email": ticket.requester.email},
            "org": ticket.organization.id if ticket.organization else None,
            "created": _ms(ticket.created_at),
            "updated": _ms(ticket.updated_at),
            "resolution": ticket.resolution_reason,
            "follow_up_of": ticket.follow_up_of,
            "comments": [],
        }
        return tid

    def customer_reply(self, ticket_id: str, body: str) -> None:
        record = self.record(ticket_id)
        assert record is not None
        record["comments"].append(self._comment(body, True, "customer"))
        self._touch(record)
        self._save(record)

    def add_unknown_field(self, ticket_id: str) -> None:
        record = self.record(ticket_id)
        assert record is not None
        record["custom"]["f_unknown_9981"] = "something new"
        self._save(record)

    # routes -------------------------------------------------------------------------------------

    async def get_ticket(self, request: Request) -> Response:
        record = self.record(request.path_params["id"])
        if record is None:
            return self.json({"error": "not found"}, 404)
        return self.json({"ticket": record})

    async def patch_ticket(self, request: Request) -> Response:
        """One update: fields, tags, escalation, resolution and any number of comments."""
        tid = request.path_params["id"]
        record = self.record(tid)
        if record is None:
            return self.json({"error": "not found"}, 404)
        if record["status"] == "closed":
            return self.json({"error": "closed tickets cannot be changed"}, 422)
        data = json.loads(await request.body())
        before = copy.deepcopy(record)
        for key in ("status", "severity", "priority", "group", "assignee", "resolution"):
            if key in data:
                record[key] = data[key]
        tags = set(record["tags"]) | set(data.get("tags_add", ()))
        record["tags"] = sorted(tags - set(data.get("tags_remove", ())))
        record["custom"].update(data.get("custom", {}))
        for comment in data.get("comments", ()):
            record["comments"].append(
                self._comment(
                    comment["body"], comment.get("public", True), "agent", comment["marker"]
                )
            )
        if record != before:
            self.changed_writes += 1
            self._touch(record)
            self._save(record)
        return self.json({"ticket": record})

    async def post_ticket(self, request: Request) -> Response:
        data = json.loads(await request.body())
        now = _at(self.now_ms())
        ticket = Ticket(
            id="0",
            number="0",
            subject=data["subject"],
            description=data["body"],
            requester=Contact(id=data["requester"]["id"], email=data["requester"]["email"]),
            created_at=now,
            updated_at=now,
            follow_up_of=data.get("follow_up_of"),
        )
        tid = self.add_ticket(ticket)
        self.extra[tid]["marker"] = data.get("marker", "")
        self.changed_writes += 1
        return self.json({"ticket": self.extra[tid]}, 201)

    async def find_tickets(self, request: Request) -> Response:
        marker = request.query_params.get("marker", "")
        found = [r for r in self.extra.values() if marker and r.get("marker") == marker]
        return self.json({"tickets": found})

    async def get_changes(self, request: Request) -> Response:
        since = int(request.query_params.get("since", "0"))
        after_id = int(request.query_params.get("after_id", "0"))
        limit = min(int(request.query_params.get("limit", str(self.page_size))), self.page_size)
        start = bisect.bisect_right(self.order, (since, after_id))
        keys = self.order[start : start + limit]
        page = [self.record(str(tid)) for _, tid in keys]
        return self.json({"tickets": page, "more": start + limit < len(self.order)})

    async def get_search(self, request: Request) -> Response:
        statuses = set(request.query_params.get("status", "").split(","))
        before = request.query_params.get("updated_before")
        after = request.query_params.get("updated_after")
        lo = int(after) if after is not None else -1
        hi = int(before) if before is not None else 1 << 62
        page = int(request.query_params.get("page", "1"))
        per_page = int(request.query_params.get("per_page", str(self.page_size)))
        skip, rows = (page - 1) * per_page, []
        for updated, tid in self.order:
            if not lo < updated < hi or self.status[tid - FIRST_ID] not in statuses:
                continue
            if skip:
                skip -= 1
                continue
            rows.append(self.record(str(tid)))
            if len(rows) == per_page:
                break
        return self.json({"tickets": rows})


# --- The connector --------------------------------------------------------------------------------


def _describe_caller() -> str:
    """The sync.py method that called into the connector (for the bench's request breakdown)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.replace("\\", "/").endswith("ticketwarden/core/sync.py"):
            return frame.f_code.co_name
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


class SyncBenchConnector(Connector):
    """The bench desk's connector: whole tickets from the feed, one batched update per apply."""

    name: ClassVar[str] = "syncbench"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {
            "read",
            "changes",
            "candidates",
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads_by_caller: Counter[str] = Counter()
        self.apply_calls = 0
        self.apply_calls_writing = 0
        self.apply_by_caller: Counter[str] = Counter()
        self.feed_items = 0
        self.feed_pages = 0
        self.search_items = 0

    @classmethod
    def emulator(cls) -> type[Emulator]:
        return SyncBenchEmulator

    @classmethod
    def bench_config(cls, rate: int) -> tuple[DeskConfig, DeskSecrets]:
        config = DeskConfig(
            name=DESK,
            connector=cls.name,
            base_url=BASE_URL,
            fields={name: f"custom:{ident}" for name, ident in CUSTOM_IDS.items()},
            escalation=ESCALATION,
            http=HttpSettings(budget=RateBudget(requests_per_minute=rate, share=1.0)),
        )
        return config, DeskSecrets(credentials=BearerToken(token=SecretStr(TOKEN)))

    @classmethod
    def on(cls, emulator: SyncBenchEmulator, clock: FakeClock, rate: int) -> SyncBenchConnector:
        """A connector talking to ``emulator`` in-process, on the shared fake clock."""
        config, secrets = cls.bench_config(rate)
        runtime = Runtime(
            transport=emulator.transport(),
            clock=clock.monotonic,
            sleep=clock.sleep,
            wall_clock=clock.time,
        )
        return cls(config, secrets, runtime)

    # reading ------------------------------------------------------------------------------------

    def _ticket(self, record: dict[str, Any]) -> Ticket:
        fields = {}
        custom = record["custom"]
        for canonical, source in self.config.fields.items():
            if source.kind == "custom" and custom.get(source.id) is not None:
                fields[canonical] = str(custom[source.id])
        comments = tuple(
            Comment(
                id=c["id"],
                author_role=(
                    AuthorRole.CUSTOMER
                    if c["role"] == "customer"
                    else AuthorRole.SYSTEM
                    if c.get("marker", "").startswith("tw:")
                    else AuthorRole.AGENT
                ),
                author=record["requester"]["email"] if c["role"] == "customer" else "agent",
                body=c["body"],
                public=c["public"],
                created_at=_at(c["created"]),
            )
            for c in record.get("comments", ())
        )
        status = STATUSES[record["status"]]
        return Ticket(
            id=record["id"],
            number=f"#{record['id']}",
            desk=self.config.name,
            subject=record["subject"],
            description=record["description"],
            status=status,
            severity=Severity(record["severity"]) if record.get("severity") else None,
            priority=Priority(record["priority"]) if record.get("priority") else None,
            requester=Contact(id=record["requester"]["id"], email=record["requester"]["email"]),
            organization=Organization(id=record["org"]) if record.get("org") else None,
            fields=fields,
            tags=frozenset(record["tags"]),
            comments=comments,
            group=record.get("group"),
            assignee=record.get("assignee"),
            created_at=_at(record["created"]),
            updated_at=_at(record["updated"]),
            resolved_at=_at(record["updated"]) if status.is_done else None,
            resolution_reason=record.get("resolution"),
            follow_up_of=record.get("follow_up_of"),
        )

    async def read_ticket(self, ticket_id: str) -> Ticket:
        self.reads_by_caller[_describe_caller()] += 1
        body = await self.client.get_json(f"/api/tickets/{ticket_id}")
        return self._ticket(body["ticket"])

    async def changes(self, cursor: str | None, *, since: datetime | None = None) -> ChangePage:
        params: dict[str, str] = {"limit": str(PAGE_SIZE)}
        if cursor:
            stamp, _, after_id = cursor.partition(":")
            params["since"] = stamp
            params["after_id"] = after_id
        else:
            params["since"] = str(_ms(since) if since else 0)
            params["after_id"] = "0"
        body = await self.client.get_json("/api/changes", params=params)
        self.feed_pages += 1
        self.feed_items += len(body["tickets"])
        tickets = tuple(self._ticket(r) for r in body["tickets"])
        next_cursor = f"{params['since']}:{params['after_id']}"
        if body["tickets"]:
            last = body["tickets"][-1]
            next_cursor = f"{last['updated']}:{last['id']}"
        return ChangePage(tickets=tickets, cursor=next_cursor, has_more=body["more"])

    async def candidates(self, query: CandidateQuery) -> AsyncIterator[Ticket]:
        statuses = [k for k, v in STATUSES.items() if v in query.statuses]
        params = {"status": ",".join(sorted(statuses))}
        if query.updated_before:
            params["updated_before"] = str(_ms(query.updated_before))
        if query.updated_after:
            params["updated_after"] = str(_ms(query.updated_after))
        async for record in paginate_pages(
            self.client,
            "/api/search",
            params=params,
            items=lambda body: list(body["tickets"]),
            per_page=PAGE_SIZE,
        ):
            self.search_items += 1
            yield self._ticket(record)

    # writing ------------------------------------------------------------------------------------

    async def apply(self, ticket: Ticket, actions: Sequence[BaseAction]) -> list[ActionResult]:
        """Every desk-changing action of the evaluation in one PATCH; follow-ups one POST."""
        self.apply_calls += 1
        results: dict[int, ActionResult] = {}
        body: dict[str, Any] = {}
        comments: list[dict[str, Any]] = []
        riders: list[int] = []
        follow_ups: list[tuple[int, CreateFollowUp]] = []
        tags_add: set[str] = set()
        tags_remove: set[str] = set()
        custom: dict[str, str] = {}
        for index, action in enumerate(actions):
            kind = action.kind
            if kind in WRITE_KINDS_INTERNAL:
                results[index] = self.result(action, Outcome.UNCHANGED)
            elif not self.supports(kind):
                results[index] = self.result(
                    action, Outcome.UNSUPPORTED, f"{self.name} cannot {kind}"
                )
            elif isinstance(action, CreateFollowUp):
                follow_ups.append((index, action))
            elif ticket.status == Status.CLOSED:
                outcome = Outcome.UNCHANGED if isinstance(action, Close) else Outcome.FAILED
                results[index] = self.result(action, outcome, "the ticket is closed")
            elif isinstance(action, AddComment):
                marker = f"tw:{action.key}" if action.key else f"tw:{uuid.uuid4().hex}"
                comments.append({"body": action.body, "public": action.public, "marker": marker})
                riders.append(index)
            elif isinstance(action, SetStatus):
                body["status"] = STATUS_NAME[action.status]
                riders.append(index)
            elif isinstance(action, Resolve):
                body["status"] = "solved"
                body["resolution"] = action.resolution
                tags_add.add(f"{self.config.resolution_tag_prefix}{action.resolution}")
                riders.append(index)
            elif isinstance(action, Close):
                body["status"] = "closed"
                riders.append(index)
            elif isinstance(action, SetSeverity):
                body["severity"] = int(action.severity)
                riders.append(index)
            elif isinstance(action, SetPriority):
                body["priority"] = action.priority.value
                riders.append(index)
            elif isinstance(action, AddTags):
                tags_add |= action.tags
                riders.append(index)
            elif isinstance(action, RemoveTags):
                tags_remove |= action.tags
                riders.append(index)
            elif isinstance(action, SetField):
                source = self.config.field_source(action.field)
                if source is None or source.kind != "custom":
                    results[index] = self.result(
                        action, Outcome.UNSUPPORTED, f"field {action.field!r} is not mapped"
                    )
                else:
                    custom[source.id] = action.value
                    riders.append(index)
            elif isinstance(action, Escalate):
                target = self.config.escalation.get(action.target)
                if target is None:
                    results[index] = self.result(
                        action, Outcome.FAILED, f"escalation target {action.target!r} unmapped"
                    )
                else:
                    if target.group:
                        body["group"] = target.group
                    if target.assignee:
                        body["assignee"] = target.assignee
                    riders.append(index)
            else:
                results[index] = self.result(action, Outcome.UNSUPPORTED, f"unknown {kind}")
        if tags_add:
            body["tags_add"] = sorted(tags_add)
        if tags_remove:
            body["tags_remove"] = sorted(tags_remove)
        if custom:
            body["custom"] = custom
        if comments:
            body["comments"] = comments
        if riders or follow_ups:
            self.apply_calls_writing += 1
            self.apply_by_caller[_describe_caller()] += 1
        if riders:
            try:
                await self._update(ticket, body, comments)
            except RejectedError as exc:
                for index in riders:
                    results[index] = self.result(actions[index], Outcome.FAILED, exc.message)
            else:
                for index in riders:
                    results[index] = self.result(actions[index])
        for index, follow_up in follow_ups:
            results[index] = await self._follow_up(ticket, follow_up)
        return [results[index] for index in range(len(actions))]

    async def _update(
        self, ticket: Ticket, body: dict[str, Any], comments: list[dict[str, Any]]
    ) -> None:
        url = f"/api/tickets/{ticket.id}"
        if not comments:  # setting values: sending it twice is sending it once
            await self.client.send_json("PATCH", url, body, idempotent=True)
            return
        marker = comments[0]["marker"]

        async def send() -> bool:
            await self.client.send_json("PATCH", url, body)
            return True

        async def find() -> bool | None:
            record = (await self.client.get_json(url))["ticket"]
            return True if any(c.get("marker") == marker for c in record["comments"]) else None

        await create_once(send, find)

    async def _follow_up(self, ticket: Ticket, action: CreateFollowUp) -> ActionResult:
        marker = f"tw:{action.key}" if action.key else uuid.uuid4().hex
        body = {
            "subject": action.subject,
            "body": action.body,
            "requester": {"id": ticket.requester.id, "email": ticket.requester.email},
            "follow_up_of": ticket.id,
            "marker": marker,
        }

        async def send() -> str:
            created = await self.client.send_json("POST", "/api/tickets", body)
            return str(created["ticket"]["id"])

        async def find() -> str | None:
            found = await self.client.get_json("/api/tickets", params={"marker": marker})
            return next((str(t["id"]) for t in found["tickets"]), None)

        created_id = await create_once(send, find)
        return self.result(action, created_id=created_id)

    async def already_applied(self, ticket: Ticket, action: BaseAction) -> bool:
        """A comment is found by its marker; values set again are harmless."""
        if isinstance(action, AddComment) and action.key:
            body = await self.client.get_json(f"/api/tickets/{ticket.id}")
            return any(c.get("marker") == f"tw:{action.key}" for c in body["ticket"]["comments"])
        return await super().already_applied(ticket, action)
