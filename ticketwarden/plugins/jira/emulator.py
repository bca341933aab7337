"""The Jira Service Management emulator: the subset of Jira Cloud REST API v3 and the Service
Management API the Jira connector uses, in Atlassian's shapes (the OpenAPI descriptions in
``../shared/vendor/jira/`` — the tests validate this emulator's answers against them), with
a Service Management workflow, JQL and token paging.

Served routes::

    GET  /rest/api/3/myself                               the API user (account id, time zone)
    GET  /rest/api/3/issue/{idOrKey}                      ?fields=…&properties=…&expand=changelog
    PUT  /rest/api/3/issue/{idOrKey}                      edit: fields, update (labels, components)
    POST /rest/api/3/issue                                create (with issue properties)
    GET  /rest/api/3/issue/{idOrKey}/comment              offset-paged, ?expand=properties
    POST /rest/api/3/issue/{idOrKey}/comment              ADF body, properties (sd.public.comment)
    GET  /rest/api/3/issue/{idOrKey}/transitions          ?expand=transitions.fields
    POST /rest/api/3/issue/{idOrKey}/transitions          {"transition": {"id"}, "fields"}
    GET  /rest/api/3/search/jql                           JQL, nextPageToken/isLast paging
    POST /rest/api/3/search/jql                           the same, parameters in the body
    GET  /rest/api/3/search                               410: the offset search is removed
    POST /rest/api/3/issueLink                            link two issues
    GET  /rest/api/3/user/properties/{key}?accountId=     a user (customer) property
    GET  /rest/servicedeskapi/organization                organizations (start/limit paging)
    GET  /rest/servicedeskapi/organization/{id}/user      an organization's customers
    GET  /rest/servicedeskapi/organization/{id}/property/{key}   an organization property
    GET/POST /rest/servicedeskapi/request/{idOrKey}/participant  request participants

Behaviour, and where it comes from:

- **Authentication**: basic e-mail + API token or an OAuth bearer token (:mod:`fixtures`);
  anything else is a 401.
- **Rate limits**: ``X-RateLimit-Limit``/``-Remaining`` and ``X-RateLimit-Reset`` (ISO 8601 at
  minute precision), 429 with ``Retry-After`` (Atlassian's "Rate limiting" page).
- **Workflow**: statuses and transitions of :data:`TRANSITIONS` (``Closed`` only from
  ``Resolved``; nothing leaves ``Closed``, whose issues are not editable); entering a *done*
  status sets ``resolution`` (the transition screen's field, default ``Done``) and
  ``resolutiondate``; leaving it clears them; a customer's comment moves *Waiting for
  customer* and *Resolved* back to *Waiting for support* (Service Management's default
  automation). Every change is recorded in the ``changelog``.
- **JQL**: ``AND``/``OR``/parentheses, ``= != > >= < <= in not in ~``, ``ORDER BY``; dates
  ``"yyyy/MM/dd HH:mm"`` read in the API user's time zone; quoted values are literals
  (``\\"`` escapes); an unbounded query is refused, as ``/search/jql`` does.
- **Search paging**: ``nextPageToken`` bound to its query; the last page has ``isLast: true``
  and no ``nextPageToken`` key (what Jira sends, JRACLOUD-92184).
- **Comments**: the body must be an ADF document; ``sd.public.comment`` ``{"internal": true}``
  makes it internal (``jsdPublic: false``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ticketwarden.core.connector import hmac_sha256
from ticketwarden.core.model import EventKind, Status, Ticket
from ticketwarden.plugins.jira import fixtures
from ticketwarden.plugins.jira.adf import is_adf, to_adf
from ticketwarden.testing.emulator import Clock, Emulator

SITE_RATE_LIMIT = 1000
"""The limit the headers report when the emulator enforces none."""
MAX_RESULTS = 100
"""``/search/jql`` returns at most 100 issues a page when fields are requested."""
STATUS_OF: dict[Status, str] = {
    Status.NEW: "1",
    Status.OPEN: "10001",
    Status.WAITING_ON_CUSTOMER: "10002",
    Status.ON_HOLD: "10003",
    Status.RESOLVED: "5",
    Status.CLOSED: "6",
}
"""The workflow status a normalized status is stored in."""

_ACTIVE = ("1", "10001", "3", "10002", "10003")
TRANSITIONS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("11", "Start progress", ("1", "10001", "10002", "10003"), "3"),
    ("21", "Respond to customer", _ACTIVE, "10002"),
    ("31", "Respond to support", ("3", "10002", "10003"), "10001"),
    ("41", "Pending", _ACTIVE, "10003"),
    ("51", "Resolve this issue", _ACTIVE, "5"),
    ("61", "Reopen", ("5",), "10001"),
    ("71", "Close", ("5",), "6"),
)
"""(id, name, from statuses, to status) of the project's workflow."""
CATEGORIES = {
    "new": ("2", "To Do", "blue-gray"),
    "indeterminate": ("4", "In Progress", "yellow"),
    "done": ("3", "Done", "green"),
}
RESOLUTIONS = {
    "Done": "10000",
    "Won't Do": "10001",
    "Duplicate": "10002",
    "Cannot Reproduce": "10003",
}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
CREATED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOT_ON_SCREEN = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
TOO_LONG = "The entered text is too long. It exceeds the allowed limit of {} characters."
BAD_DATE = (
    "Date value '{}' for field is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
    "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd'."
)
UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)
REMOVED = "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."
ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
"""Jira's error messages and constants the routes use (their wording is Jira's)."""


class JiraError(Exception):
    """An API error with Jira's status and ``{"errorMessages", "errors"}`` body."""

    def __init__(
        self, status: int, *messages: str, errors: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {messages} {errors}")
        self.status = status
        self.body = {"errorMessages": list(messages), "errors": dict(errors or {})}


def jira_time(at: datetime) -> str:
    """``2026-11-25T10:00:00.000+0000``."""
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


@dataclass
class JiraIssue:
    """One issue's state; :meth:`JiraEmulator.issue_json` renders Jira's shape."""

    id: int
    key: str
    summary: str
    description: str
    status: str
    priority: str
    reporter: str
    created: datetime
    updated: datetime
    organizations: list[int] = field(default_factory=list)
    assignee: str | None = None
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)
    resolution: str | None = None
    resolutiondate: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)
    histories: list[dict[str, Any]] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    links: list[tuple[str, str, int]] = field(default_factory=list)  # (type, direction, other)


@dataclass
class Subscription:
    """An admin webhook: URL, secret, events, and (optionally) a JQL filter."""

    url: str
    secret: str
    events: tuple[str, ...] = ("jira:issue_created", "jira:issue_updated", "comment_created")


# --- JQL ----------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:\\.|[^"\\])*")|(?P<op>!=|>=|<=|!~|=|>|<|~|\(|\)|,)'
    r'|(?P<word>[^\s(),=!<>~"]+))'
)
_DATE = re.compile(r"^(\d{4})[/-](\d{2})[/-](\d{2})(?:\s+(\d{2}):(\d{2}))?$")
_FIELDS = frozenset(
    {"project", "updated", "created", "status", "statuscategory", "key", "id", "labels"}
    | {"reporter", "assignee"}
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # string, op, word
    text: str


def _tokens(jql: str) -> list[_Tok]:
    out: list[_Tok] = []
    position = 0
    while position < len(jql):
        if jql[position:].strip() == "":
            break
        match = _TOKEN.match(jql, position)
        if match is None or match.end() == position:
            raise JiraError(400, f"Error in the JQL Query: unexpected {jql[position:]!r}.")
        position = match.end()
        if match.group("string") is not None:
            out.append(_Tok("string", re.sub(r"\\(.)", r"\1", match.group("string")[1:-1])))
        elif match.group("op") is not None:
            out.append(_Tok("op", match.group("op")))
        else:
            out.append(_Tok("word", match.group("word")))
    return out


Predicate = Callable[["JiraIssue"], bool]


class _Parser:
    """A recursive-descent parser of the JQL subset; yields a predicate and the order."""

    def __init__(self, emulator: JiraEmulator, jql: str) -> None:
        self.emulator = emulator
        self.toks = _tokens(jql)
        self.i = 0

    def peek(self, *words: str) -> bool:
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        return tok is not None and tok.kind != "string" and tok.text.lower() in words

    def take(self) -> _Tok:
        if self.i >= len(self.toks):
            raise JiraError(400, "Error in the JQL Query: the query ends unexpectedly.")
        self.i += 1
        return self.toks[self.i - 1]

    def parse(self) -> tuple[Predicate | None, list[tuple[str, bool]]]:
        where = None if self.peek("order") else self.expr()
        order: list[tuple[str, bool]] = []
        if self.peek("order"):
            self.take()
            if not self.peek("by"):
                raise JiraError(400, "Error in the JQL Query: expecting 'by' after 'order'.")
            self.take()
            while True:
                name = self.take().text.lower()
                descending = False
                if self.peek("asc", "desc"):
                    descending = self.take().text.lower() == "desc"
                order.append((name, descending))
                if not self.peek(","):
                    break
                self.take()
        if self.i != len(self.toks):
            raise JiraError(400, f"Error in the JQL Query: unexpected {self.toks[self.i].text!r}.")
        return where, order

    def expr(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek("or"):
            self.take()
            parts.append(self.conjunction())
        return lambda issue: any(p(issue) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.atom()]
        while self.peek("and"):
            self.take()
            parts.append(self.atom())
        return lambda issue: all(p(issue) for p in parts)

    def atom(self) -> Predicate:
        if self.peek("("):
            self.take()
            inner = self.expr()
            if not self.peek(")"):
                raise JiraError(400, "Error in the JQL Query: expecting ')'.")
            self.take()
            return inner
        name_tok = self.take()
        name = name_tok.text.lower()
        if name_tok.kind == "string" or name not in _FIELDS:
            raise JiraError(
                400,
                f"Field '{name_tok.text}' does not exist or you do not have permission to view it.",
            )
        op = self.take().text.lower()
        if op == "not" and self.peek("in"):
            self.take()
            op = "not in"
        if op in ("in", "not in"):
            if not self.peek("("):
                raise JiraError(400, f"Error in the JQL Query: expecting '(' after '{op}'.")
            self.take()
            values = [self.value()]
            while self.peek(","):
                self.take()
                values.append(self.value())
            if not self.peek(")"):
                raise JiraError(400, "Error in the JQL Query: expecting ')'.")
            self.take()
        elif op in ("=", "!=", ">", ">=", "<", "<=", "~"):
            values = [self.value()]
        else:
            raise JiraError(400, f"Error in the JQL Query: unknown operator {op!r}.")
        return self.emulator._condition(name, op, values)

    def value(self) -> str:
        tok = self.take()
        if tok.kind == "op":
            raise JiraError(400, f"Error in the JQL Query: a value is expected, not {tok.text!r}.")
        return tok.text


# --- the emulator -------------------------------------------------------------------------------


class JiraEmulator(Emulator):
    """Jira Cloud + Service Management with the site set up in :mod:`fixtures`."""

    name = "jira"
    page_size = 100

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rate_limit: int | None = None,
        seed: int = 0,
        base_url: str = f"https://{fixtures.SITE}.atlassian.net",
        text_limit: int | None = None,
    ) -> None:
        """``text_limit``: refuse comment bodies longer than this many characters (Jira Cloud
        refuses more than 32,767; off by default, see ``docs/helpdesks/jira.md``)."""
        self.issues: dict[int, JiraIssue] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self.user_properties: dict[tuple[str, str], Any] = {}
        self.subscriptions: list[Subscription] = []
        self.outbox: list[tuple[Subscription, str, str, int]] = []
        self.text_limit = text_limit
        self.zone = ZoneInfo(fixtures.AGENT_TIME_ZONE)
        self._tokens: dict[str, tuple[str, int]] = {}
        self._next_issue = 10000
        self._next_comment = 10000
        self._next_org = 0
        self._next_history = 10000
        self._nominal = (-1, 0)
        super().__init__(clock=clock, rate_limit=rate_limit, seed=seed, base_url=base_url)
        self._account(fixtures.AGENT_ACCOUNT_ID, "ticketwarden", fixtures.AGENT_EMAIL, "atlassian")
        for target, account in fixtures.AGENTS.items():
            self._account(account, target, f"{target}@example.com", "atlassian")

    # --- routing ---------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        api, sd = "/rest/api/3", "/rest/servicedeskapi"
        return [
            Route(f"{api}/myself", self.myself, methods=["GET"]),
            Route(f"{api}/issue", self.create_issue, methods=["POST"]),
            Route(f"{api}/issue/{{key}}", self.get_issue, methods=["GET"]),
            Route(f"{api}/issue/{{key}}", self.edit_issue, methods=["PUT"]),
            Route(f"{api}/issue/{{key}}/comment", self.get_comments, methods=["GET"]),
            Route(f"{api}/issue/{{key}}/comment", self.add_comment, methods=["POST"]),
            Route(f"{api}/issue/{{key}}/transitions", self.get_transitions, methods=["GET"]),
            Route(f"{api}/issue/{{key}}/transitions", self.do_transition, methods=["POST"]),
            Route(f"{api}/search/jql", self.search, methods=["GET", "POST"]),
            Route(f"{api}/search", self.removed_search, methods=["GET", "POST"]),
            Route(f"{api}/issueLink", self.link_issues, methods=["POST"]),
            Route(f"{api}/user/properties/{{prop}}", self.user_property, methods=["GET"]),
            Route(f"{sd}/organization", self.list_organizations, methods=["GET"]),
            Route(f"{sd}/organization/{{org:int}}/user", self.organization_users, methods=["GET"]),
            Route(
                f"{sd}/organization/{{org:int}}/property/{{prop}}",
                self.organization_property,
                methods=["GET"],
            ),
            Route(f"{sd}/request/{{key}}/participant", self.participants, methods=["GET", "POST"]),
            Route("/{path:path}", self.no_such_endpoint, methods=["GET", "POST", "PUT", "DELETE"]),
        ]

    # --- the vendor hooks of the base ------------------------------------------------------------

    def authenticate(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip() == fixtures.OAUTH_TOKEN
        if scheme.lower() == "basic":
            expected = httpx.BasicAuth(fixtures.AGENT_EMAIL, fixtures.API_TOKEN)._auth_header
            return header == expected
        return False

    def rate_limit_headers(self, limit: int, remaining: int, reset: int) -> dict[str, str]:
        """Jira's headers; the reset is an ISO 8601 time at minute precision (rounded up)."""
        at = datetime.fromtimestamp(self.clock.time() + reset, UTC)
        if at.second or at.microsecond:
            at = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": at.strftime("%Y-%m-%dT%H:%MZ"),
        }

    def _rate_headers(self) -> tuple[dict[str, str], bool]:
        if self.rate_limit is not None:
            return super()._rate_headers()
        now = self.clock.monotonic()
        window, count = self._nominal
        if window != int(now // 60):
            window, count = int(now // 60), 0
        self._nominal = (window, count + 1)
        reset = max(1, int((window + 1) * 60 - now + 0.999))
        remaining = max(SITE_RATE_LIMIT - count - 1, 0)
        return self.rate_limit_headers(SITE_RATE_LIMIT, remaining, reset), False

    def error_body(self, status: int, message: str) -> Any:
        if status == 401:
            message = "Client must be authenticated to access this resource."
        return {"errorMessages": [message], "errors": {}}

    # --- accounts, organizations -----------------------------------------------------------------

    def _account(
        self, account_id: str, name: str, email: str | None, account_type: str
    ) -> dict[str, Any]:
        record = {
            "self": f"{self.base_url}/rest/api/3/user?accountId={account_id}",
            "accountId": account_id,
            "emailAddress": email,
            "avatarUrls": {
                size: f"https://avatar.example/{account_id}/{size}"
                for size in ("48x48", "24x24", "16x16", "32x32")
            },
            "displayName": name,
            "active": True,
            "timeZone": fixtures.AGENT_TIME_ZONE,
            "accountType": account_type,
        }
        self.accounts[account_id] = record
        return record

    def add_customer(
        self,
        email: str,
        name: str = "",
        *,
        organization: str | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> str:
        """A Service Management customer (created when new), in ``organization`` (a name,
        created when new); ``properties`` become user properties. Returns the account id."""
        known = [
            a
            for a, r in self.accounts.items()
            if (r.get("emailAddress") or "").lower() == email.lower()
        ]
        account_id = (
            known[0] if known else "qm:" + hashlib.sha1(email.lower().encode()).hexdigest()[:24]
        )
        if not known:
            self._account(account_id, name or email.split("@")[0], email, "customer")
        if organization is not None:
            org = self.add_organization(organization)
            if account_id not in self.organizations[org]["users"]:
                self.organizations[org]["users"].append(account_id)
        for key, value in (properties or {}).items():
            self.user_properties[(account_id, key)] = value
        return account_id

    def add_organization(self, name: str, properties: Mapping[str, Any] | None = None) -> int:
        """A Service Management organization by name (created when new); returns its id."""
        for org_id, record in self.organizations.items():
            if record["name"] == name:
                record["properties"].update(properties or {})
                return org_id
        self._next_org += 1
        self.organizations[self._next_org] = {
            "name": name,
            "users": [],
            "properties": dict(properties or {}),
        }
        return self._next_org

    def _org_json(self, org_id: int) -> dict[str, Any]:
        return {
            "id": str(org_id),
            "name": self.organizations[org_id]["name"],
            "_links": {"self": f"{self.base_url}/rest/servicedeskapi/organization/{org_id}"},
        }

    # --- rendering -------------------------------------------------------------------------------

    def _status_json(self, status_id: str) -> dict[str, Any]:
        name, category = fixtures.STATUSES[status_id]
        cat_id, cat_name, color = CATEGORIES[category]
        return {
            "self": f"{self.base_url}/rest/api/3/status/{status_id}",
            "description": "",
            "iconUrl": f"{self.base_url}/images/icons/statuses/generic.png",
            "name": name,
            "id": status_id,
            "statusCategory": {
                "self": f"{self.base_url}/rest/api/3/statuscategory/{cat_id}",
                "id": int(cat_id),
                "key": category,
                "colorName": color,
                "name": cat_name,
            },
        }

    def _user(self, account_id: str | None) -> dict[str, Any] | None:
        return dict(self.accounts[account_id]) if account_id in self.accounts else None

    def _comment_json(self, comment: Mapping[str, Any], with_properties: bool) -> dict[str, Any]:
        out = {k: v for k, v in comment.items() if k != "properties"}
        if with_properties:
            out["properties"] = [{"key": k, "value": v} for k, v in comment["properties"].items()]
        return out

    def _fields(self, issue: JiraIssue) -> dict[str, Any]:
        project = {
            "self": f"{self.base_url}/rest/api/3/project/{fixtures.PROJECT_ID}",
            "id": fixtures.PROJECT_ID,
            "key": fixtures.PROJECT_KEY,
            "name": "Support",
            "projectTypeKey": "service_desk",
            "simplified": False,
            "avatarUrls": {"48x48": f"{self.base_url}/secure/projectavatar?pid=10000"},
        }
        resolution = None
        if issue.resolution is not None:
            resolution = {
                "self": f"{self.base_url}/rest/api/3/resolution/{RESOLUTIONS[issue.resolution]}",
                "id": RESOLUTIONS[issue.resolution],
                "description": "",
                "name": issue.resolution,
            }
        fields: dict[str, Any] = {
            "summary": issue.summary,
            "description": to_adf(issue.description) if issue.description else None,
            "status": self._status_json(issue.status),
            "priority": {
                "self": f"{self.base_url}/rest/api/3/priority/{PRIORITIES[issue.priority]}",
                "iconUrl": f"{self.base_url}/images/icons/priorities/{issue.priority.lower()}.svg",
                "name": issue.priority,
                "id": PRIORITIES[issue.priority],
            },
            "labels": list(issue.labels),
            "reporter": self._user(issue.reporter),
            "assignee": self._user(issue.assignee),
            "components": [
                {
                    "self": f"{self.base_url}/rest/api/3/component/{10000 + i}",
                    "id": str(10000 + i),
                    "name": name,
                }
                for i, name in enumerate(fixtures.COMPONENTS)
                if name in issue.components
            ],
            "created": jira_time(issue.created),
            "updated": jira_time(issue.updated),
            "resolution": resolution,
            "resolutiondate": jira_time(issue.resolutiondate) if issue.resolutiondate else None,
            "issuetype": {
                "self": f"{self.base_url}/rest/api/3/issuetype/{fixtures.ISSUE_TYPE_ID}",
                "id": fixtures.ISSUE_TYPE_ID,
                "description": "A request for support",
                "iconUrl": f"{self.base_url}/images/icons/issuetypes/support.svg",
                "name": fixtures.ISSUE_TYPE_NAME,
                "subtask": False,
                "hierarchyLevel": 0,
            },
            "project": project,
            "issuelinks": [self._link_json(issue, link) for link in issue.links],
            fixtures.ORGANIZATIONS_FIELD: [
                self._org_json(o) for o in issue.organizations if o in self.organizations
            ],
        }
        for field_id in [*fixtures.FIELDS.values(), fixtures.UNKNOWN_FIELD]:
            value = issue.custom.get(field_id)
            kind = fixtures.FIELD_TYPES.get(field_id, "text")
            if value is None:
                fields[field_id] = None
            elif kind == "select":
                option = str(10000 + zlib.crc32(str(value).encode()) % 90000)
                fields[field_id] = {
                    "self": f"{self.base_url}/rest/api/3/customFieldOption/{option}",
                    "value": value,
                    "id": option,
                }
            elif kind == "adf":
                fields[field_id] = to_adf(value)
            else:
                fields[field_id] = value
        return fields

    def _link_json(self, issue: JiraIssue, link: tuple[str, str, int]) -> dict[str, Any]:
        name, direction, other_id = link
        other = self.issues[other_id]
        return {
            "id": str(zlib.crc32(f"{min(issue.id, other_id)}-{max(issue.id, other_id)}".encode())),
            "type": {"id": "10003", "name": name, "inward": "relates to", "outward": "relates to"},
            f"{direction}Issue": {
                "id": str(other.id),
                "key": other.key,
                "self": f"{self.base_url}/rest/api/3/issue/{other.id}",
                "fields": {"summary": other.summary, "status": self._status_json(other.status)},
            },
        }

    def issue_json(
        self,
        issue: JiraIssue,
        fields: str | None = None,
        properties: str | None = None,
        expand: str | None = None,
    ) -> dict[str, Any]:
        """The issue as ``GET /rest/api/3/issue`` and ``/search/jql`` return it: ``fields``
        filtered by the ``fields`` parameter (``*all`` by default), the requested issue
        ``properties``, and ``changelog`` when expanded."""
        everything = self._fields(issue)
        wanted = [f.strip() for f in (fields or "*all").split(",") if f.strip()]
        if "*all" in wanted or "*navigable" in wanted:
            chosen = everything
        else:
            chosen = {k: everything[k] for k in wanted if k in everything}
        body: dict[str, Any] = {
            "expand": ISSUE_EXPAND,
            "id": str(issue.id),
            "self": f"{self.base_url}/rest/api/3/issue/{issue.id}",
            "key": issue.key,
            "fields": chosen,
        }
        keys = [k.strip() for k in (properties or "").split(",") if k.strip()]
        if keys:
            body["properties"] = {k: issue.properties[k] for k in keys if k in issue.properties}
        if expand and "changelog" in expand.split(","):
            body["changelog"] = {
                "startAt": 0,
                "maxResults": len(issue.histories),
                "total": len(issue.histories),
                "histories": list(issue.histories),
            }
        return body

    # --- changes ---------------------------------------------------------------------------------

    def _touch(self, issue: JiraIssue) -> None:
        issue.updated = max(self.now(), issue.updated + timedelta(seconds=1))

    def _history(self, issue: JiraIssue, actor: str, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        self._next_history += 1
        issue.histories.append(
            {
                "id": str(self._next_history),
                "author": self._user(actor),
                "created": jira_time(issue.updated),
                "items": items,
            }
        )

    def _set_status(self, issue: JiraIssue, to: str, actor: str, resolution: str | None) -> None:
        before = issue.status
        items: list[dict[str, Any]] = [
            {
                "field": "status",
                "fieldtype": "jira",
                "fieldId": "status",
                "from": before,
                "fromString": fixtures.STATUSES[before][0],
                "to": to,
                "toString": fixtures.STATUSES[to][0],
            }
        ]
        issue.status = to
        done = fixtures.STATUSES[to][1] == "done"
        if done and issue.resolution is None:
            issue.resolution = resolution or "Done"
            issue.resolutiondate = self.now()
            items.append(
                {
                    "field": "resolution",
                    "fieldtype": "jira",
                    "fieldId": "resolution",
                    "from": None,
                    "fromString": None,
                    "to": RESOLUTIONS[issue.resolution],
                    "toString": issue.resolution,
                }
            )
        elif not done and issue.resolution is not None:
            items.append(
                {
                    "field": "resolution",
                    "fieldtype": "jira",
                    "fieldId": "resolution",
                    "from": RESOLUTIONS[issue.resolution],
                    "fromString": issue.resolution,
                    "to": None,
                    "toString": None,
                }
            )
            issue.resolution = issue.resolutiondate = None
        self._touch(issue)
        self._history(issue, actor, items)

    def _fire(self, issue: JiraIssue, event: str) -> None:
        for subscription in self.subscriptions:
            if event in subscription.events:
                self.outbox.append(
                    (subscription, str(issue.id), event, int(self.clock.time() * 1000))
                )

    def _comment(
        self, issue: JiraIssue, text: Any, author: str, public: bool, properties: Mapping[str, Any]
    ) -> dict[str, Any]:
        self._next_comment += 1
        now = self.now()
        comment = {
            "self": f"{self.base_url}/rest/api/3/issue/{issue.id}/comment/{self._next_comment}",
            "id": str(self._next_comment),
            "author": self._user(author),
            "body": text if is_adf(text) else to_adf(str(text)),
            "updateAuthor": self._user(author),
            "created": jira_time(now),
            "updated": jira_time(now),
            "jsdPublic": public,
            "properties": dict(properties),
        }
        issue.comments.append(comment)
        self._touch(issue)
        self._fire(issue, "comment_created")
        return comment

    # --- the conformance hooks -------------------------------------------------------------------

    def add_ticket(self, ticket: Ticket) -> str:
        """Store a normalized ticket as a Service Management request; creates its reporter (a
        customer) and organization when new. Returns the issue id."""
        org = ticket.organization
        org_name = (org.name or org.id) if org is not None else None
        email = ticket.requester.email or f"{ticket.requester.id}@customers.example"
        reporter = self.add_customer(email, ticket.requester.name, organization=org_name)
        custom: dict[str, Any] = {}
        for name, value in ticket.fields.items():
            if name in fixtures.FIELDS:
                custom[fixtures.FIELDS[name]] = value
        if ticket.severity is not None:
            option = next(
                k for k, v in fixtures.SEVERITY_VALUES.items() if v == int(ticket.severity)
            )
            custom[fixtures.FIELDS["severity"]] = option
        if ticket.resolution_reason:
            custom[fixtures.FIELDS["resolution_reason"]] = ticket.resolution_reason
        priority = {"urgent": "Highest", "high": "High", "normal": "Medium", "low": "Low"}
        issue = self._new_issue(
            summary=ticket.subject,
            description=ticket.description,
            status=STATUS_OF[ticket.status],
            priority=priority[ticket.priority.value] if ticket.priority else "Medium",
            reporter=reporter,
            created=ticket.created_at.astimezone(UTC).replace(microsecond=0),
            updated=ticket.updated_at.astimezone(UTC).replace(microsecond=0),
        )
        issue.organizations = [self.add_organization(org_name)] if org_name else []
        issue.labels = sorted(ticket.tags)
        issue.custom = custom
        if ticket.assignee:
            issue.assignee = ticket.assignee if ticket.assignee in self.accounts else None
        if fixtures.STATUSES[issue.status][1] == "done":
            issue.resolution = "Done"
            issue.resolutiondate = issue.updated
        if ticket.follow_up_of:
            issue.properties["ticketwarden.follow_up"] = {"of": ticket.follow_up_of, "marker": ""}
        for comment in ticket.comments:
            author = (
                reporter if comment.author_role.value == "customer" else fixtures.AGENT_ACCOUNT_ID
            )
            saved = issue.updated
            made = self._comment(issue, comment.body, author, comment.public, {})
            made["created"] = made["updated"] = jira_time(comment.created_at)
            issue.updated = saved
        return str(issue.id)

    def _new_issue(self, **values: Any) -> JiraIssue:
        self._next_issue += 1
        number = self._next_issue - 10000
        issue = JiraIssue(id=self._next_issue, key=f"{fixtures.PROJECT_KEY}-{number}", **values)
        self.issues[issue.id] = issue
        return issue

    def customer_reply(self, ticket_id: str, body: str) -> None:
        """The reporter comments (public). *Waiting for customer* and *Resolved* go back to
        *Waiting for support*; a reply to a closed request opens a new one linked to it."""
        issue = self._find(ticket_id)
        if issue.status == "6":
            new = self._new_issue(
                summary=issue.summary,
                description=body,
                status="10001",
                priority="Medium",
                reporter=issue.reporter,
                created=self.now(),
                updated=self.now(),
            )
            new.organizations = list(issue.organizations)
            new.links.append(("Relates", "outward", issue.id))
            issue.links.append(("Relates", "inward", new.id))
            self._fire(new, "jira:issue_created")
            return
        self._comment(issue, body, issue.reporter, True, {})
        if issue.status in ("10002", "5"):
            self._set_status(issue, "10001", issue.reporter, None)
        self._fire(issue, "jira:issue_updated")

    def add_unknown_field(self, ticket_id: str) -> None:
        """The issue gets a value in a custom field no configuration maps."""
        self._find(ticket_id).custom[fixtures.UNKNOWN_FIELD] = "something new"

    def make_webhook(
        self,
        ticket_id: str,
        kind: EventKind,
        secret: str,
        *,
        delivery_id: str | None = None,
        at: datetime | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """An admin webhook's delivery: the event body Jira sends, signed ``X-Hub-Signature:
        sha256=<hex HMAC-SHA256(secret, body)>``, with ``X-Atlassian-Webhook-Identifier``."""
        event = "jira:issue_created" if kind == EventKind.CREATED else "jira:issue_updated"
        sent = at or self.now()
        return self._delivery(ticket_id, event, secret, int(sent.timestamp() * 1000), delivery_id)

    def _delivery(
        self, ticket_id: str, event: str, secret: str, millis: int, delivery_id: str | None
    ) -> tuple[dict[str, str], bytes]:
        issue = self.issues.get(int(ticket_id)) if ticket_id.isdigit() else None
        payload: dict[str, Any] = {
            "timestamp": millis,
            "webhookEvent": event,
            "issue_event_type_name": {
                "jira:issue_created": "issue_created",
                "comment_created": "issue_commented",
            }.get(event, "issue_generic"),
            "user": self._user(fixtures.AGENT_ACCOUNT_ID),
            "issue": self.issue_json(issue) if issue else {"id": ticket_id},
        }
        if event.startswith("comment_") and issue is not None and issue.comments:
            payload["comment"] = self._comment_json(issue.comments[-1], False)
        body = json.dumps(payload).encode()
        signature = hmac_sha256(SecretStr(secret), body).hex()
        headers = {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": delivery_id
            or str(uuid.UUID(int=self.random.getrandbits(128))),
            "X-Hub-Signature": f"sha256={signature}",
        }
        return headers, body

    def subscribe(self, url: str, secret: str, events: Iterable[str] | None = None) -> Subscription:
        """Register an admin webhook (with a secret) for ``events``."""
        subscription = Subscription(url, secret, tuple(events) if events else Subscription.events)
        self.subscriptions.append(subscription)
        return subscription

    async def deliver_webhooks(
        self, transport: httpx.AsyncBaseTransport | None = None
    ) -> list[httpx.Response]:
        """POST every queued delivery (oldest first) and empty the queue."""
        pending, self.outbox = self.outbox, []
        responses = []
        async with httpx.AsyncClient(transport=transport, timeout=10.0) as client:
            for sub, ticket_id, event, millis in pending:
                headers, body = self._delivery(ticket_id, event, sub.secret, millis, None)
                responses.append(await client.post(sub.url, content=body, headers=headers))
        return responses

    # --- routes: helpers -------------------------------------------------------------------------

    def _find(self, key: str) -> JiraIssue:
        if key.isdigit() and int(key) in self.issues:
            return self.issues[int(key)]
        for issue in self.issues.values():
            if issue.key == key:
                return issue
        raise JiraError(404, "Issue does not exist or you do not have permission to see it.")

    async def _json_body(self, request: Request) -> dict[str, Any]:
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            raise JiraError(400, "Unexpected character in the request body: not JSON.") from None
        if not isinstance(data, dict):
            raise JiraError(400, "The request body must be a JSON object.")
        return data

    async def _answer(self, call: Callable[[], Any]) -> Response:
        try:
            result = call()
            if hasattr(result, "__await__"):
                result = await result
            assert isinstance(result, Response)
            return result
        except JiraError as error:
            return self.json(error.body, error.status)

    # --- routes ----------------------------------------------------------------------------------

    async def myself(self, request: Request) -> Response:
        me = dict(self.accounts[fixtures.AGENT_ACCOUNT_ID])
        me.update(
            locale="en_US",
            groups={"size": 1, "items": []},
            applicationRoles={"size": 1, "items": []},
        )
        return self.json(me)

    async def get_issue(self, request: Request) -> Response:
        def answer() -> Response:
            issue = self._find(request.path_params["key"])
            q = request.query_params
            return self.json(
                self.issue_json(issue, q.get("fields"), q.get("properties"), q.get("expand"))
            )

        return await self._answer(answer)

    def _custom_value(self, field_id: str, value: Any) -> Any:
        kind = fixtures.FIELD_TYPES.get(field_id, "text")
        if value is None:
            return None
        if kind == "select":
            if not isinstance(value, dict) or not isinstance(value.get("value"), str):
                raise JiraError(
                    400, errors={field_id: "Specify a valid 'id' or 'name' for the option"}
                )
            if (
                field_id == fixtures.FIELDS["severity"]
                and value["value"] not in fixtures.SEVERITY_VALUES
            ):
                raise JiraError(
                    400, errors={field_id: f"Option value '{value['value']}' is not valid"}
                )
            return value["value"]
        if kind == "adf":
            if not is_adf(value):
                raise JiraError(
                    400,
                    errors={field_id: NOT_ADF},
                )
            from ticketwarden.plugins.jira.adf import to_text

            return to_text(value)
        if not isinstance(value, str):
            raise JiraError(400, errors={field_id: "Operation value must be a string"})
        return value

    def _apply_fields(
        self, issue: JiraIssue, fields: Mapping[str, Any], actor: str
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        known = set(fixtures.FIELDS.values()) | {fixtures.UNKNOWN_FIELD}
        for name, value in fields.items():
            if name == "priority":
                priority = value.get("name") if isinstance(value, dict) else None
                if priority not in PRIORITIES:
                    raise JiraError(400, errors={"priority": "The priority selected is invalid."})
                items.append(
                    {"field": "priority", "fromString": issue.priority, "toString": priority}
                )
                issue.priority = priority
            elif name == "assignee":
                account = value.get("accountId") if isinstance(value, dict) else None
                if value is not None and account not in self.accounts:
                    raise JiraError(
                        400, errors={"assignee": f"User '{account}' cannot be assigned issues."}
                    )
                items.append({"field": "assignee", "from": issue.assignee, "to": account})
                issue.assignee = account
            elif name == "summary":
                if not isinstance(value, str) or not value.strip():
                    raise JiraError(
                        400, errors={"summary": "You must specify a summary of the issue."}
                    )
                issue.summary = value
            elif name in known:
                new = self._custom_value(name, value)
                items.append(
                    {
                        "field": name,
                        "fieldtype": "custom",
                        "from": None,
                        "fromString": _str(issue.custom.get(name)),
                        "to": None,
                        "toString": _str(new),
                    }
                )
                issue.custom[name] = new
            else:
                raise JiraError(
                    400,
                    errors={name: NOT_ON_SCREEN.format(name)},
                )
        return items

    async def edit_issue(self, request: Request) -> Response:
        async def answer() -> Response:
            issue = self._find(request.path_params["key"])
            data = await self._json_body(request)
            if issue.status == "6":
                raise JiraError(
                    400,
                    "You can't edit this issue: it is in the Closed status, which is not editable.",
                )
            fields = data.get("fields") or {}
            update = data.get("update") or {}
            both = set(fields) & set(update)
            if both:
                raise JiraError(
                    400,
                    errors={n: "Field can't be set in both 'fields' and 'update'." for n in both},
                )
            items = self._apply_fields(issue, fields, fixtures.AGENT_ACCOUNT_ID)
            for name, operations in update.items():
                if name not in ("labels", "components") or not isinstance(operations, list):
                    raise JiraError(
                        400,
                        errors={name: NOT_ON_SCREEN.format(name)},
                    )
                target = issue.labels if name == "labels" else issue.components
                before = list(target)
                for op in operations:
                    ((verb, raw),) = op.items()
                    value: Any = (
                        raw.get("name") if name == "components" and isinstance(raw, dict) else raw
                    )
                    if name == "components" and verb != "set" and value not in fixtures.COMPONENTS:
                        raise JiraError(
                            400, errors={"components": f"Component name '{value}' is not valid"}
                        )
                    if (
                        name == "labels"
                        and verb != "set"
                        and (not isinstance(value, str) or " " in value)
                    ):
                        raise JiraError(
                            400, errors={"labels": "The label must not contain spaces."}
                        )
                    if verb == "add" and value not in target:
                        target.append(value)
                    elif verb == "remove" and value in target:
                        target.remove(value)
                    elif verb == "set":
                        target[:] = list(value)
                target.sort()
                if before != target:
                    items.append(
                        {
                            "field": name,
                            "fromString": " ".join(before),
                            "toString": " ".join(target),
                        }
                    )
            if items:
                self._touch(issue)
                self._history(issue, fixtures.AGENT_ACCOUNT_ID, items)
                self._fire(issue, "jira:issue_updated")
            return Response(status_code=204)

        return await self._answer(answer)

    async def create_issue(self, request: Request) -> Response:
        async def answer() -> Response:
            data = await self._json_body(request)
            fields = dict(data.get("fields") or {})
            project = fields.pop("project", None) or {}
            if (
                str(project.get("id")) != fixtures.PROJECT_ID
                and project.get("key") != fixtures.PROJECT_KEY
            ):
                raise JiraError(400, errors={"project": "Specify a valid project ID or key"})
            issuetype = fields.pop("issuetype", None) or {}
            if (
                str(issuetype.get("id")) != fixtures.ISSUE_TYPE_ID
                and issuetype.get("name") != fixtures.ISSUE_TYPE_NAME
            ):
                raise JiraError(400, errors={"issuetype": "Specify an issue type"})
            summary = fields.pop("summary", None)
            if not isinstance(summary, str) or not summary.strip():
                raise JiraError(400, errors={"summary": "You must specify a summary of the issue."})
            description = fields.pop("description", None)
            if description is not None and not is_adf(description):
                raise JiraError(
                    400,
                    errors={"description": NOT_ADF},
                )
            reporter = (fields.pop("reporter", None) or {}).get(
                "accountId"
            ) or fixtures.AGENT_ACCOUNT_ID
            if reporter not in self.accounts:
                raise JiraError(400, errors={"reporter": "Specify a valid value for reporter"})
            orgs = fields.pop(fixtures.ORGANIZATIONS_FIELD, None) or []
            from ticketwarden.plugins.jira.adf import to_text

            now = self.now()
            issue = self._new_issue(
                summary=summary,
                description=to_text(description) if description else "",
                status="10001",
                priority="Medium",
                reporter=reporter,
                created=now,
                updated=now,
            )
            issue.organizations = [int(o["id"] if isinstance(o, dict) else o) for o in orgs]
            try:
                self._apply_fields(issue, fields, fixtures.AGENT_ACCOUNT_ID)
            except JiraError:
                del self.issues[issue.id]
                raise
            for prop in data.get("properties") or []:
                issue.properties[str(prop["key"])] = prop.get("value")
            self._fire(issue, "jira:issue_created")
            return self.json(
                {
                    "id": str(issue.id),
                    "key": issue.key,
                    "self": f"{self.base_url}/rest/api/3/issue/{issue.id}",
                },
                201,
            )

        return await self._answer(answer)

    async def get_comments(self, request: Request) -> Response:
        def answer() -> Response:
            issue = self._find(request.path_params["key"])
            q = request.query_params
            start = int(q.get("startAt") or 0)
            size = max(1, min(int(q.get("maxResults") or 100), 100))
            ordered = list(issue.comments)
            if q.get("orderBy") == "-created":
                ordered.reverse()
            expanded = "properties" in (q.get("expand") or "").split(",")
            page = [self._comment_json(c, expanded) for c in ordered[start : start + size]]
            return self.json(
                {"startAt": start, "maxResults": size, "total": len(ordered), "comments": page}
            )

        return await self._answer(answer)

    async def add_comment(self, request: Request) -> Response:
        async def answer() -> Response:
            issue = self._find(request.path_params["key"])
            data = await self._json_body(request)
            body = data.get("body")
            if not is_adf(body):
                raise JiraError(400, errors={"comment": "Comment body is not valid!"})
            from ticketwarden.plugins.jira.adf import to_text

            if self.text_limit is not None and len(to_text(body)) > self.text_limit:
                raise JiraError(
                    400,
                    errors={"comment": TOO_LONG.format(self.text_limit)},
                )
            properties = {str(p["key"]): p.get("value") for p in data.get("properties") or []}
            internal = properties.get("sd.public.comment") or {}
            public = not (isinstance(internal, dict) and internal.get("internal") is True)
            comment = self._comment(issue, body, fixtures.AGENT_ACCOUNT_ID, public, properties)
            return self.json(self._comment_json(comment, False), 201)

        return await self._answer(answer)

    def _transitions_of(self, issue: JiraIssue, with_fields: bool) -> list[dict[str, Any]]:
        out = []
        for tid, name, sources, to in TRANSITIONS:
            if issue.status not in sources:
                continue
            item: dict[str, Any] = {
                "id": tid,
                "name": name,
                "to": self._status_json(to),
                "hasScreen": fixtures.STATUSES[to][1] == "done",
                "isGlobal": False,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "isLooped": False,
            }
            if with_fields:
                item["fields"] = {}
                if fixtures.STATUSES[to][1] == "done":
                    item["fields"]["resolution"] = {
                        "required": True,
                        "schema": {"type": "resolution", "system": "resolution"},
                        "name": "Resolution",
                        "key": "resolution",
                        "operations": ["set"],
                        "allowedValues": [{"id": i, "name": n} for n, i in RESOLUTIONS.items()],
                    }
            out.append(item)
        return out

    async def get_transitions(self, request: Request) -> Response:
        def answer() -> Response:
            issue = self._find(request.path_params["key"])
            expand = request.query_params.get("expand") or ""
            with_fields = "transitions.fields" in expand.split(",")
            return self.json(
                {"expand": "transitions", "transitions": self._transitions_of(issue, with_fields)}
            )

        return await self._answer(answer)

    async def do_transition(self, request: Request) -> Response:
        async def answer() -> Response:
            issue = self._find(request.path_params["key"])
            data = await self._json_body(request)
            wanted = str((data.get("transition") or {}).get("id"))
            found = [t for t in TRANSITIONS if t[0] == wanted and issue.status in t[2]]
            if not found:
                raise JiraError(400, f"Transition id '{wanted}' is not valid for this issue.")
            _, _, _, to = found[0]
            fields = data.get("fields") or {}
            resolution = None
            for name, value in fields.items():
                if name == "resolution" and fixtures.STATUSES[to][1] == "done":
                    resolution = value.get("name") if isinstance(value, dict) else None
                    if resolution not in RESOLUTIONS:
                        raise JiraError(400, errors={"resolution": "Resolution is invalid."})
                else:
                    raise JiraError(
                        400,
                        errors={name: NOT_ON_SCREEN.format(name)},
                    )
            self._set_status(issue, to, fixtures.AGENT_ACCOUNT_ID, resolution)
            self._fire(issue, "jira:issue_updated")
            return Response(status_code=204)

        return await self._answer(answer)

    # --- JQL -------------------------------------------------------------------------------------

    def _jql_time(self, text: str) -> datetime:
        match = _DATE.match(text.strip())
        if match is None:
            raise JiraError(
                400,
                BAD_DATE.format(text),
            )
        year, month, day, hour, minute = (int(g) if g else 0 for g in match.groups())
        return datetime(year, month, day, hour, minute, tzinfo=self.zone)

    def _condition(self, name: str, op: str, values: list[str]) -> Predicate:
        if name in ("updated", "created"):
            if op not in ("=", "!=", ">", ">=", "<", "<="):
                raise JiraError(400, f"The operator '{op}' is not supported by the '{name}' field.")
            bound = self._jql_time(values[0])

            def by_time(issue: JiraIssue) -> bool:
                moment = issue.updated if name == "updated" else issue.created
                return _compare(op, moment, bound)

            return by_time
        if op in (">", ">=", "<", "<=", "~"):
            raise JiraError(400, f"The operator '{op}' is not supported by the '{name}' field.")
        wanted = {v.lower() for v in values}

        def candidates(issue: JiraIssue) -> list[str]:
            if name == "project":
                return [fixtures.PROJECT_KEY.lower(), fixtures.PROJECT_ID]
            if name == "status":
                return [issue.status, fixtures.STATUSES[issue.status][0].lower()]
            if name == "statuscategory":
                category = fixtures.STATUSES[issue.status][1]
                return [category, CATEGORIES[category][0], CATEGORIES[category][1].lower()]
            if name == "key":
                return [issue.key.lower()]
            if name == "id":
                return [str(issue.id)]
            if name == "labels":
                return [x.lower() for x in issue.labels]
            if name == "reporter":
                return [issue.reporter.lower()]
            return [issue.assignee.lower()] if issue.assignee else ["empty"]

        positive = op in ("=", "in")
        return lambda issue: bool(set(candidates(issue)) & wanted) == positive

    def _query(self, jql: str) -> list[JiraIssue]:
        where, order = _Parser(self, jql).parse()
        if where is None:
            raise JiraError(
                400,
                UNBOUNDED,
            )
        found = [i for i in self.issues.values() if where(i)]
        for name, descending in reversed(order or [("created", True)]):
            if name not in ("updated", "created", "key", "id", "priority", "status"):
                raise JiraError(400, f"Not able to sort using field '{name}'.")
            found.sort(key=functools.partial(_sort_key, name=name), reverse=descending)
        return found

    async def search(self, request: Request) -> Response:
        async def answer() -> Response:
            if request.method == "POST":
                data = await self._json_body(request)
                params: dict[str, Any] = dict(data)
                for key in ("fields", "properties"):
                    if isinstance(params.get(key), list):
                        params[key] = ",".join(params[key])
            else:
                q = request.query_params
                params = {
                    k: ",".join(q.getlist(k)) if k in ("fields", "properties") else q.get(k)
                    for k in q
                }
            jql = str(params.get("jql") or "")
            found = self._query(jql)
            fields = params.get("fields") or "id"
            only_ids = set(str(fields).split(",")) <= {"id", "key"}
            ceiling = 5000 if only_ids else MAX_RESULTS
            size = max(1, min(int(params.get("maxResults") or 50), ceiling))
            start = 0
            token = params.get("nextPageToken")
            if token:
                bound = self._tokens.get(str(token))
                if bound is None or bound[0] != jql:
                    raise JiraError(400, "The provided next page token is invalid or expired.")
                start = bound[1]
            page = found[start : start + size]
            body: dict[str, Any] = {
                "issues": [
                    self.issue_json(i, str(fields), params.get("properties"), params.get("expand"))
                    for i in page
                ],
                "isLast": start + size >= len(found),
            }
            if not body["isLast"]:
                new_token = uuid.UUID(int=self.random.getrandbits(128)).hex
                self._tokens[new_token] = (jql, start + size)
                body["nextPageToken"] = new_token
            return self.json(body)

        return await self._answer(answer)

    async def removed_search(self, request: Request) -> Response:
        return self.json(
            {
                "errorMessages": [REMOVED],
                "errors": {},
            },
            410,
        )

    async def link_issues(self, request: Request) -> Response:
        async def answer() -> Response:
            data = await self._json_body(request)
            name = (data.get("type") or {}).get("name")
            if name not in ("Relates", "Blocks", "Cloners", "Duplicate"):
                raise JiraError(404, f"No issue link type with name '{name}' found.")
            inward = self._find(
                str(
                    (data.get("inwardIssue") or {}).get("id")
                    or (data.get("inwardIssue") or {}).get("key")
                )
            )
            outward = self._find(
                str(
                    (data.get("outwardIssue") or {}).get("id")
                    or (data.get("outwardIssue") or {}).get("key")
                )
            )
            if (name, "outward", outward.id) not in inward.links:
                inward.links.append((name, "outward", outward.id))
                outward.links.append((name, "inward", inward.id))
            return Response(status_code=201)

        return await self._answer(answer)

    async def user_property(self, request: Request) -> Response:
        key = request.path_params["prop"]
        account = request.query_params.get("accountId") or ""
        if (account, key) not in self.user_properties:
            return self.json(
                {"errorMessages": [f"The property with key '{key}' does not exist."], "errors": {}},
                404,
            )
        return self.json({"key": key, "value": self.user_properties[(account, key)]})

    def _paged(self, request: Request, values: list[Any]) -> Response:
        q = request.query_params
        start = int(q.get("start") or 0)
        limit = max(1, min(int(q.get("limit") or 50), 50))
        page = values[start : start + limit]
        base = self.base_url
        links = {"base": base, "context": "", "self": f"{base}{request.url.path}"}
        last = start + limit >= len(values)
        if not last:
            links["next"] = f"{base}{request.url.path}?start={start + limit}&limit={limit}"
        return self.json(
            {
                "_expands": [],
                "size": len(page),
                "start": start,
                "limit": limit,
                "isLastPage": last,
                "_links": links,
                "values": page,
            }
        )

    async def list_organizations(self, request: Request) -> Response:
        return self._paged(request, [self._org_json(o) for o in sorted(self.organizations)])

    async def organization_users(self, request: Request) -> Response:
        org = self.organizations.get(request.path_params["org"])
        if org is None:
            return self.json({"errorMessage": "Organization not found"}, 404)
        users = []
        for account in sorted(org["users"]):
            record = self.accounts[account]
            users.append(
                {
                    "accountId": account,
                    "displayName": record["displayName"],
                    "emailAddress": record["emailAddress"],
                    "active": True,
                    "timeZone": record["timeZone"],
                    "_links": {"self": record["self"]},
                }
            )
        return self._paged(request, users)

    async def organization_property(self, request: Request) -> Response:
        org = self.organizations.get(request.path_params["org"])
        key = request.path_params["prop"]
        if org is None or key not in org["properties"]:
            return self.json(
                {"errorMessage": f"The property with key '{key}' does not exist."}, 404
            )
        return self.json({"key": key, "value": org["properties"][key]})

    async def participants(self, request: Request) -> Response:
        async def answer() -> Response:
            issue = self._find(request.path_params["key"])
            if request.method == "POST":
                data = await self._json_body(request)
                for account in data.get("accountIds") or []:
                    if account not in self.accounts:
                        raise JiraError(400, f"The user '{account}' does not exist.")
                    if account not in issue.participants:
                        issue.participants.append(account)
                        self._touch(issue)
            users = [
                {
                    "accountId": a,
                    "displayName": self.accounts[a]["displayName"],
                    "emailAddress": self.accounts[a]["emailAddress"],
                    "active": True,
                    "timeZone": self.accounts[a]["timeZone"],
                    "_links": {},
                }
                for a in issue.participants
            ]
            return self._paged(request, users)

        return await self._answer(answer)

    async def no_such_endpoint(self, request: Request) -> Response:
        return self.json(
            {"errorMessages": ["null for uri: " + str(request.url)], "errors": {}}, 404
        )


def _compare(op: str, left: Any, right: Any) -> bool:
    return bool(
        {
            "=": left == right,
            "!=": left != right,
            ">": left > right,
            ">=": left >= right,
            "<": left < right,
            "<=": left <= right,
        }[op]
    )


def _sort_key(issue: JiraIssue, name: str) -> Any:
    if name == "updated":
        return issue.updated
    if name == "created":
        return issue.created
    if name == "key":
        prefix, _, number = issue.key.partition("-")
        return (prefix, int(number))
    if name == "priority":
        return int(PRIORITIES[issue.priority])
    if name == "status":
        return fixtures.STATUSES[issue.status][0]
    return issue.id


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def iso_date(value: date) -> str:
    """A date as organization and user properties hold it (``2027-06-30``)."""
    return value.isoformat()


__all__ = ["TRANSITIONS", "JiraEmulator", "JiraError", "JiraIssue", "Subscription"]
