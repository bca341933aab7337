"""The Jira Service Management connector (Jira Cloud REST API v3 + the Service Management API).

Endpoints, as Atlassian's references (and the OpenAPI descriptions in
``../shared/vendor/jira/``) describe them, relative to the site (``https://{site}.atlassian.net``,
``https://api.atlassian.com/ex/jira/{cloudId}`` for OAuth 2.0, or an emulator):

- ``GET /rest/api/3/myself`` — the API user's account id and profile time zone, once;
- ``GET /rest/api/3/issue/{id}?fields=…&properties=ticketwarden.follow_up`` — an issue;
- ``GET /rest/api/3/issue/{id}/comment?expand=properties`` — its comments (offset-paged);
- ``GET /rest/api/3/search/jql`` — changes and candidates, paged by ``nextPageToken``
  (the offset ``/rest/api/3/search`` is being removed and is never used);
- ``PUT /rest/api/3/issue/{id}`` — fields, priority, labels, components, assignee;
- ``GET``/``POST /rest/api/3/issue/{id}/transitions`` — every status change;
- ``POST /rest/api/3/issue/{id}/comment`` — comments as ADF, internal ones with the
  ``sd.public.comment`` property ``{"internal": true}``;
- ``POST /rest/api/3/issue`` and ``POST /rest/api/3/issueLink`` — follow-ups;
- ``POST /rest/servicedeskapi/request/{id}/participant`` — escalation by participant;
- ``GET /rest/servicedeskapi/organization…`` (users, properties) and
  ``GET /rest/api/3/user/properties/{key}`` — the authorized-contact roster.

Design choices (each explained where it is implemented):

* **Statuses are workflow statuses**: read through the desk's ``statuses`` mapping (by name or
  id), else by status category (``new`` → new, ``indeterminate`` → open, ``done`` →
  resolved); changed only through the issue's available transitions, looked up by the
  status they lead to. A workflow without a way there is reported ``failed`` with the
  transitions it does offer — never a silent no-op.
* **The change feed** is a JQL search ordered by ``updated``; JQL dates have minute precision
  and are read in the API user's time zone, so the cursor keeps a watermark and the exact
  ``updated`` of every issue delivered since the minute it queries from: a resumed feed
  re-reads that minute and skips what it delivered, losing and repeating nothing.
* **Jira has no conditional update** (nothing like Zendesk's safe update): writes are kept
  narrow instead — labels and components through ``update`` add/remove operations, each
  field set on its own — so an agent's concurrent change to anything else survives.
* **Creates are exactly once**: comments and follow-ups carry a marker entity property
  (``ticketwarden``, ``ticketwarden.follow_up``), which :func:`create_once` looks for after a
  lost response before sending again.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

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
from ticketwarden.core.http import BasicCredentials, create_once, paginate_cursor
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
from ticketwarden.plugins.jira.adf import is_adf, to_adf, to_text
from ticketwarden.plugins.jira.jql import (
    ceil_minute,
    floor_minute,
    jql_list,
    jql_time,
)

__all__ = ["CATEGORY_STATUSES", "JiraConnector", "JiraOptions", "jira_time"]

CATEGORY_STATUSES: Final[Mapping[str, Status]] = {
    "new": Status.NEW,
    "indeterminate": Status.OPEN,
    "done": Status.RESOLVED,
}
"""A workflow status the desk configuration does not map counts by its status category."""

DEFAULT_PRIORITIES: Final[Mapping[Priority, str]] = {
    Priority.URGENT: "Highest",
    Priority.HIGH: "High",
    Priority.NORMAL: "Medium",
    Priority.LOW: "Low",
}
"""Jira's default priority scheme for the four normalized priorities (``Lowest`` reads as low)."""

_SEVERITY_OF_PRIORITY: Final[Mapping[str, int]] = {
    "Highest": 1,
    "High": 2,
    "Medium": 3,
    "Low": 4,
    "Lowest": 4,
}

INTERNAL_PROPERTY: Final = "sd.public.comment"
"""The comment property Service Management reads: ``{"internal": true}`` is an internal note."""
MARKER_PROPERTY: Final = "ticketwarden"
"""The comment property marking ticketwarden's own comments (``{"key": idempotency key}``)."""
FOLLOW_UP_PROPERTY: Final = "ticketwarden.follow_up"
"""The issue property linking a follow-up: ``{"of": original issue id, "marker": …}``."""

_ISSUE_ID = re.compile(r"^(?:[1-9][0-9]{0,18}|[A-Z][A-Z0-9_]{0,254}-[1-9][0-9]{0,18})$")
_CUSTOM_FIELD = re.compile(r"^customfield_[0-9]{1,12}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_PREFIX: Final = "jira1:"
_PROTECTED_NATIVE: Final = frozenset(
    {
        "status",
        "labels",
        "components",
        "project",
        "issuetype",
        "reporter",
        "assignee",
        "created",
        "updated",
        "resolution",
        "resolutiondate",
        "comment",
        "issuelinks",
        "priority",
    }
)
"""Native fields ``set_field`` must never write: the connector manages them itself."""


class JiraOptions(BaseModel):
    """``options`` of a Jira desk in ``ticketwarden.toml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    projects: tuple[str, ...] = Field(
        min_length=1, description="keys of the Service Management projects this desk covers"
    )
    page_size: int = Field(100, ge=1, le=100, description="issues per search page (max 100)")
    changes_overlap_seconds: int = Field(
        60,
        ge=0,
        le=3600,
        description="how far before its watermark the change feed re-reads, for issues the "
        "search index showed late (their exact updates are remembered, never repeated)",
    )
    jql_time_zone: str | None = Field(
        None,
        description="the API user's profile time zone, in which JQL dates are read; default: "
        "looked up once through /rest/api/3/myself",
    )
    agent_account_id: str | None = Field(
        None, description="ticketwarden's account id; default: the API user (/myself)"
    )
    organizations_field: str = Field(
        "customfield_10002", description="Service Management's Organizations field"
    )
    field_types: dict[str, Literal["text", "select", "adf", "number"]] = Field(
        default_factory=dict,
        description="how a custom field is written: text (default), select ({value}), adf "
        "(multi-line rich text) or number",
    )
    resolutions: dict[str, str] = Field(
        default_factory=dict, description="resolution reason code → Jira resolution name"
    )
    default_resolution: str = Field("Done", min_length=1)
    follow_up_issue_type: str | None = Field(
        None, description="issue type id of follow-ups; default: the original's"
    )
    follow_up_link_type: str = Field("Relates", min_length=1)
    comments_page_size: int = Field(100, ge=1, le=5000)
    create_settle_seconds: float = Field(
        2.0, ge=0, description="wait after a timed-out create before looking for it"
    )

    @field_validator("projects", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """``"SUP"`` or ``"SUP, OPS"`` as well as ``["SUP", "OPS"]``."""
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("projects")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [k for k in value if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,254}", k)]
        if bad:
            raise ValueError(f"{bad} are not Jira project keys (capital letters, digits, _)")
        return value

    @field_validator("field_types")
    @classmethod
    def _field_ids(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not _CUSTOM_FIELD.match(k)]
        if bad:
            raise ValueError(f"{bad} are not custom field ids (customfield_NNNNN)")
        return value


# --- small readers -------------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime:
    """A Jira timestamp, ``2026-11-25T10:00:00.000+0000``."""
    if not isinstance(value, str):
        raise ValueError(f"expected a Jira timestamp, got {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def jira_time(at: datetime) -> str:
    """A datetime as Jira writes timestamps: ``2026-11-25T10:00:00.000+0000`` (UTC)."""
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def _millis(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def _text(value: Any) -> str | None:
    """A field value as text: strings, select options, ADF documents, users, numbers, lists."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_adf(value):
        text = to_text(value)
    elif isinstance(value, dict):
        for key in ("value", "name", "displayName", "key", "id"):
            if value.get(key) is not None:
                return _text(value[key])
        return None
    elif isinstance(value, list):
        items = [t for t in (_text(v) for v in value) if t]
        return ", ".join(items) if items else None
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return text if text.strip() else None


def _truthy(value: Any) -> bool:
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "y", "x")


def _date(value: Any) -> date | None:
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _emails(value: Any) -> list[str]:
    """E-mail addresses from a property value: a list, or text separated by , ; or spaces."""
    if isinstance(value, dict):
        value = value.get("contacts", value.get("value"))
    items = value if isinstance(value, list) else re.split(r"[,;\s]+", str(value or ""))
    return [str(e).strip() for e in items if "@" in str(e)]


def _next_token(body: Any) -> str | None:
    """The next page of ``/search/jql``: ``nextPageToken`` unless ``isLast``. (The key is
    left out of the last page rather than sent as null — JRACLOUD-92184.)"""
    if body.get("isLast") is True:
        return None
    token = body.get("nextPageToken")
    return str(token) if token else None


@dataclass
class _Cursor:
    """The change feed's position: the latest ``updated`` delivered (the watermark) and the
    exact ``updated`` of each issue delivered since the minute the next query starts at."""

    watermark: int = 0  # epoch milliseconds
    seen: dict[str, int] = field(default_factory=dict)

    def encode(self) -> str:
        data = json.dumps({"w": self.watermark, "s": self.seen}, separators=(",", ":"))
        return _CURSOR_PREFIX + base64.urlsafe_b64encode(data.encode()).decode()

    @classmethod
    def decode(cls, cursor: str) -> _Cursor:
        if not cursor.startswith(_CURSOR_PREFIX):
            raise ValueError("not a Jira change cursor")
        try:
            data = json.loads(base64.urlsafe_b64decode(cursor[len(_CURSOR_PREFIX) :]))
            seen = {str(k): int(v) for k, v in dict(data["s"]).items()}
            return cls(watermark=int(data["w"]), seen=seen)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise ValueError(f"unreadable Jira change cursor ({exc})") from exc


# --- one edit --------------------------------------------------------------------------------


@dataclass
class _Edit:
    """One ``PUT /rest/api/3/issue/{id}``: ``fields`` set and ``update`` operations."""

    fields: dict[str, Any] = field(default_factory=dict)
    add_labels: dict[str, None] = field(default_factory=dict)  # ordered sets
    remove_labels: dict[str, None] = field(default_factory=dict)
    components: dict[str, None] = field(default_factory=dict)
    riders: list[int] = field(default_factory=list)

    def add(self, labels: Sequence[str]) -> None:
        for label in labels:
            self.remove_labels.pop(label, None)
            self.add_labels[label] = None

    def remove(self, labels: Sequence[str]) -> None:
        for label in labels:
            self.add_labels.pop(label, None)
            self.remove_labels[label] = None

    def body(self) -> dict[str, Any] | None:
        update: dict[str, list[dict[str, Any]]] = {}
        labels = [{"add": x} for x in self.add_labels] + [{"remove": x} for x in self.remove_labels]
        if labels:
            update["labels"] = labels
        if self.components:
            update["components"] = [{"add": {"name": name}} for name in self.components]
        if not self.fields and not update:
            return None
        body: dict[str, Any] = {}
        if self.fields:
            body["fields"] = dict(self.fields)
        if update:
            body["update"] = update
        return body


class _Refused(Exception):
    """An action that cannot be carried out as configured (reported ``failed``)."""


@dataclass(frozen=True)
class _Me:
    account_id: str
    zone: ZoneInfo


# --- the connector -----------------------------------------------------------------------------


class JiraConnector(Connector):
    """Jira Service Management: reads, the JQL change feed, candidates, every action, webhooks
    and the authorized-contact roster.

    Authentication is ``DeskSecrets.credentials``: :class:`BasicCredentials` with the Atlassian
    account's e-mail and an API token, or a ``BearerToken`` (OAuth 2.0, with ``base_url``
    ``https://api.atlassian.com/ex/jira/{cloudId}``). ``DeskConfig.base_url`` is the site.
    """

    name: ClassVar[str] = "jira"
    changes_are_complete: ClassVar[bool] = False  # search results carry no comment properties
    capabilities: ClassVar[frozenset[str]] = EVERY_CAPABILITY
    Options: ClassVar[type[BaseModel]] = JiraOptions

    def __init__(
        self,
        config: DeskConfig,
        secrets: DeskSecrets | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        if "/rest/" in httpx.URL(config.base_url).path:
            raise ValueError(
                f"{config.base_url!r}: base_url is the site, e.g. https://acme.atlassian.net, "
                "without /rest/api/3"
            )
        super().__init__(config, secrets, runtime)
        self._me: _Me | None = None
        if self.opts.jql_time_zone is not None:
            _zone(self.opts.jql_time_zone)  # a bad zone fails at start-up, not at 3 a.m.

    @property
    def opts(self) -> JiraOptions:
        """The validated ``options`` of this desk."""
        options = self.options
        if not isinstance(options, JiraOptions):  # pragma: no cover - set by the base class
            raise TypeError(f"options are {type(options).__name__}, not JiraOptions")
        return options

    # --- emulator, secrets and conformance ------------------------------------------------------

    @classmethod
    def emulator(cls) -> type[Any]:
        """:class:`ticketwarden.plugins.jira.emulator.JiraEmulator` (imported lazily)."""
        module = importlib.import_module("ticketwarden.plugins.jira.emulator")
        emulator_class: type[Any] = module.JiraEmulator
        return emulator_class

    @classmethod
    def secrets_from(cls, values: Mapping[str, SecretStr]) -> DeskSecrets:
        """Jira's credentials: ``EMAIL`` + ``API_TOKEN`` (basic), or ``OAUTH_TOKEN`` (bearer,
        preferred when both are set); ``WEBHOOK_SECRET`` is the webhook's secret."""
        if "OAUTH_TOKEN" not in values and "EMAIL" in values and "API_TOKEN" in values:
            return DeskSecrets(
                credentials=BasicCredentials(
                    username=values["EMAIL"].get_secret_value(), password=values["API_TOKEN"]
                ),
                webhook_secret=values.get("WEBHOOK_SECRET"),
            )
        return super().secrets_from(values)

    @classmethod
    def conformance_config(cls, base_url: str) -> tuple[DeskConfig, DeskSecrets]:
        """The emulator's fixed site (``fixtures.py``) as a desk configuration."""
        from ticketwarden.plugins.jira import fixtures

        ids = fixtures.FIELDS
        # The suite's set_field round trip writes the *first* mapped field: a text field.
        order = ("server_url", "module", "steps", "sample_machines", "version", "sev1_contact")
        fields = {name: f"custom:{ids[name]}" for name in order}
        fields["severity"] = f"custom:{ids['severity']}"
        fields["resolution_reason"] = f"custom:{ids['resolution_reason']}"
        config = DeskConfig.model_validate(
            {
                "name": "jira",
                "connector": cls.name,
                "base_url": base_url,
                "fields": fields,
                "statuses": dict(fixtures.STATUS_MAPPING),
                "severity_values": dict(fixtures.SEVERITY_VALUES),
                "escalation": {
                    target: {"assignee": account} for target, account in fixtures.AGENTS.items()
                },
                "contacts": {
                    "where": "organization",
                    "authorized_field": fixtures.ORG_PROPERTIES["authorized"],
                    "certified_until_field": fixtures.ORG_PROPERTIES["certified_until"],
                    "available_24x7_field": fixtures.ORG_PROPERTIES["available_24x7"],
                },
                "options": {
                    # one key as text: `ticketwarden init` writes this value into its
                    # starter file, whose option lines hold single-line TOML values
                    "projects": fixtures.PROJECT_KEY,
                    "page_size": 100,
                    "organizations_field": fixtures.ORGANIZATIONS_FIELD,
                    "field_types": dict(fixtures.FIELD_TYPES),
                },
            }
        )
        secrets = DeskSecrets(
            credentials=BasicCredentials(
                username=fixtures.AGENT_EMAIL, password=SecretStr(fixtures.API_TOKEN)
            ),
            webhook_secret=SecretStr(fixtures.WEBHOOK_SECRET),
        )
        return config, secrets

    # --- who we are -----------------------------------------------------------------------------

    async def me(self) -> tuple[str, ZoneInfo]:
        """ticketwarden's account id and the zone JQL dates are read in: the options, else
        ``GET /rest/api/3/myself`` (once per connector)."""
        if self._me is None:
            account, zone_name = self.opts.agent_account_id, self.opts.jql_time_zone
            if account is None or zone_name is None:
                body = await self.client.get_json("/rest/api/3/myself")
                if not isinstance(body, dict) or not isinstance(body.get("accountId"), str):
                    raise self._shape("/rest/api/3/myself has no accountId", body)
                account = account or body["accountId"]
                zone_name = zone_name or str(body.get("timeZone") or "UTC")
            self._me = _Me(account, _zone(zone_name))
        return self._me.account_id, self._me.zone

    # --- reading --------------------------------------------------------------------------------

    def _issue_fields(self) -> str:
        """The ``fields`` parameter: what the mapping needs, nothing more."""
        names = [
            "summary",
            "description",
            "status",
            "priority",
            "labels",
            "reporter",
            "assignee",
            "components",
            "created",
            "updated",
            "resolution",
            "resolutiondate",
            "issuetype",
            "project",
            self.opts.organizations_field,
        ]
        names += [s.id for s in self.config.fields.values() if s.kind in ("custom", "native")]
        return ",".join(dict.fromkeys(names))

    async def read_ticket(self, ticket_id: str) -> Ticket:
        """The issue with its comments, reporter, organization and mapped fields.

        Two requests (plus one per further page of comments, and ``/myself`` once):
        ``GET /rest/api/3/issue/{id}?fields=…&properties=ticketwarden.follow_up`` and
        ``GET /rest/api/3/issue/{id}/comment?expand=properties`` — the comment endpoint, not
        the issue's ``comment`` field, because only it returns the comments' properties
        (``sd.public.comment`` and ticketwarden's marker).
        """
        tid = self._checked_id(ticket_id)
        body = await self.client.get_json(
            f"/rest/api/3/issue/{tid}",
            params={"fields": self._issue_fields(), "properties": FOLLOW_UP_PROPERTY},
        )
        comments = await self._comments(tid)
        account, _ = await self.me()
        return self._ticket(body, comments, account)

    async def _comments(self, tid: str) -> list[Mapping[str, Any]]:
        """Every comment, oldest first (``startAt``/``maxResults``/``total`` paging)."""
        found: list[Mapping[str, Any]] = []
        start = 0
        for _ in range(10_000):
            body = await self.client.get_json(
                f"/rest/api/3/issue/{tid}/comment",
                params={
                    "startAt": start,
                    "maxResults": self.opts.comments_page_size,
                    "orderBy": "created",
                    "expand": "properties",
                },
            )
            try:
                page = [c for c in body["comments"] if isinstance(c, dict)]
                total = int(body["total"])
            except (KeyError, TypeError, ValueError) as exc:
                raise self._shape(f"unexpected page of comments ({exc!r})", body) from exc
            found += page
            start += len(page)
            if not page or start >= total:
                return found
        raise self._shape("more than 10000 pages of comments", None)

    async def changes(self, cursor: str | None, *, since: datetime | None = None) -> ChangePage:
        """One page of issues changed after ``cursor`` (or since ``since``), oldest first.

        ``GET /rest/api/3/search/jql`` with ``project in (…) AND updated >= "yyyy/MM/dd HH:mm"
        ORDER BY updated ASC, key ASC``: JQL compares whole minutes in the API user's time
        zone, so the query starts at the minute ``changes_overlap_seconds`` before the
        watermark and every issue is checked against the cursor's record of exact updates
        delivered since then — an issue is delivered again only when it changed again. Pages
        of already-delivered issues are skipped with ``nextPageToken`` within the call;
        ``has_more`` is set when ``page_size`` new issues were found before the end. The
        issues carry no comments: read one to evaluate it.
        """
        try:
            state = _Cursor.decode(cursor) if cursor else _Cursor()
        except ValueError as exc:
            raise TicketwardenError(f"desk {self.config.name}: {exc}") from None
        if not cursor and since is not None:
            state.watermark = _millis(since)
        account, zone = await self.me()
        overlap = timedelta(seconds=self.opts.changes_overlap_seconds)
        watermark = datetime.fromtimestamp(state.watermark / 1000, UTC)
        lower = floor_minute(max(_EPOCH, watermark - overlap).astimezone(zone))
        jql = (
            f"project in {jql_list(self.opts.projects)} AND updated >= {jql_time(lower, zone)} "
            "ORDER BY updated ASC, key ASC"
        )
        params: dict[str, Any] = {
            "jql": jql,
            "maxResults": self.opts.page_size,
            "fields": self._issue_fields(),
            "properties": FOLLOW_UP_PROPERTY,
        }
        collected: list[Mapping[str, Any]] = []
        more = False
        tokens: set[str] = set()
        for _ in range(10_000):
            body = await self.client.get_json("/rest/api/3/search/jql", params=params)
            try:
                issues = [i for i in body["issues"] if isinstance(i, dict)]
                token = _next_token(body)
            except (KeyError, TypeError, AttributeError) as exc:
                raise self._shape(f"unexpected search page ({exc!r})", body) from exc
            for issue in issues:
                stamp = self._updated_millis(issue)
                if state.seen.get(str(issue.get("id"))) == stamp:
                    continue  # delivered before, unchanged since
                if len(collected) >= self.opts.page_size:
                    more = True
                    break
                collected.append(issue)
            if more or token is None:
                break
            if token in tokens:
                raise self._shape(f"pagination loop: nextPageToken {token!r} came twice", body)
            tokens.add(token)
            params = {**params, "nextPageToken": token}
        tickets = tuple(self._ticket(issue, (), account) for issue in collected)
        for delivered in collected:
            stamp = self._updated_millis(delivered)
            state.seen[str(delivered["id"])] = stamp
            state.watermark = max(state.watermark, stamp)
        horizon = datetime.fromtimestamp(state.watermark / 1000, UTC) - overlap
        keep_from = _millis(floor_minute(max(_EPOCH, horizon).astimezone(zone)))
        state.seen = {k: v for k, v in state.seen.items() if v >= keep_from}
        return ChangePage(tickets=tickets, cursor=state.encode(), has_more=more)

    def _updated_millis(self, issue: Mapping[str, Any]) -> int:
        try:
            return _millis(_parse_time(issue["fields"]["updated"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise self._shape(f"an issue without a readable updated ({exc!r})", issue) from exc

    async def candidates(self, query: CandidateQuery) -> AsyncIterator[Ticket]:
        """Issues in one of ``query.statuses`` updated before/after the given times.

        One JQL search (``/rest/api/3/search/jql``, paged by ``nextPageToken``): the statuses
        the desk maps by name (``status in (…)``) or by category (``statusCategory in (…)``),
        times widened to whole minutes in the API user's zone. Every value is quoted and
        escaped (:mod:`ticketwarden.plugins.jira.jql`), and every result is checked again
        against the exact query before it is yielded.
        """
        names = [name for name, status in self.config.statuses.items() if status in query.statuses]
        categories = [c for c, s in CATEGORY_STATUSES.items() if s in query.statuses]
        terms = []
        if names:
            terms.append(f"status in {jql_list(names)}")
        if categories:
            terms.append(f"statusCategory in {jql_list(categories)}")
        if not terms:
            return
        account, zone = await self.me()
        clauses = [f"project in {jql_list(self.opts.projects)}", "(" + " OR ".join(terms) + ")"]
        if query.updated_before is not None:
            bound = ceil_minute(query.updated_before.astimezone(zone))
            clauses.append(f"updated < {jql_time(bound, zone)}")
        if query.updated_after is not None:
            bound = floor_minute(query.updated_after.astimezone(zone))
            clauses.append(f"updated >= {jql_time(bound, zone)}")
        params = {
            "jql": " AND ".join(clauses) + " ORDER BY updated ASC, key ASC",
            "maxResults": self.opts.page_size,
            "fields": self._issue_fields(),
            "properties": FOLLOW_UP_PROPERTY,
        }
        seen: set[str] = set()
        async for issue in paginate_cursor(
            self.client,
            "/rest/api/3/search/jql",
            params=params,
            items=lambda body: list(body["issues"]),
            next_cursor=_next_token,
            cursor_param="nextPageToken",
        ):
            ticket = self._ticket(issue, (), account)
            if ticket.id in seen or ticket.status not in query.statuses:
                continue
            if query.updated_before and not ticket.updated_at < query.updated_before:
                continue
            if query.updated_after and not ticket.updated_at > query.updated_after:
                continue
            seen.add(ticket.id)
            yield ticket

    async def roster(self) -> Roster:
        """The authorized contacts, from Service Management organization or customer
        properties named in ``contacts``.

        ``where = "organization"``: each organization's property ``authorized_field`` lists
        its authorized contacts' e-mail addresses (a JSON array, or text separated by commas,
        semicolons or spaces); ``available_24x7_field`` lists those reachable around the
        clock the same way; ``certified_until_field`` (an ISO date) applies to all of them.
        ``GET /rest/servicedeskapi/organization`` (paged) and
        ``GET /rest/servicedeskapi/organization/{id}/property/{key}`` (404: not set).

        ``where = "user"``: each organization's customers
        (``GET /rest/servicedeskapi/organization/{id}/user``) whose user property
        ``authorized_field`` is true, with ``certified_until_field`` (a date) and
        ``available_24x7_field`` (true/false) — ``GET /rest/api/3/user/properties/{key}``, up
        to three requests per customer.
        """
        source = self.config.contacts
        if source.where == "roster_file":
            raise CapabilityMissing(
                "contacts.where = 'roster_file': the roster is read from the file, not Jira"
            )
        if not source.authorized_field:
            raise TicketwardenError(
                f"desk {self.config.name}: contacts.authorized_field names no property"
            )
        by_org: dict[str, dict[str, AuthorizedContact]] = {}
        async for org in self._servicedesk_pages("/rest/servicedeskapi/organization"):
            org_id = str(org["id"])
            if source.where == "organization":
                contacts = await self._organization_contacts(org_id, source)
            else:
                contacts = await self._customer_contacts(org_id, source)
            if contacts:
                by_org[org_id] = {c.email: c for c in contacts}
        return Roster(
            entries=tuple(
                RosterEntry(
                    organization=org, contacts=tuple(found[email] for email in sorted(found))
                )
                for org, found in sorted(by_org.items())
            )
        )

    async def _servicedesk_pages(self, path: str) -> AsyncIterator[Mapping[str, Any]]:
        """Items of a Service Management list (``start``/``limit``, ``isLastPage``)."""
        start = 0
        for _ in range(10_000):
            body = await self.client.get_json(path, params={"start": start, "limit": 50})
            try:
                values = [v for v in body["values"] if isinstance(v, dict)]
                last = bool(body["isLastPage"])
            except (KeyError, TypeError) as exc:
                raise self._shape(f"unexpected Service Management page ({exc!r})", body) from exc
            for value in values:
                yield value
            if last or not values:
                return
            start += len(values)
        raise self._shape(f"more than 10000 pages of {path}", None)

    async def _property(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """An entity property's ``value``; ``None`` when it is not set (404)."""
        try:
            body = await self.client.get_json(path, params=params)
        except NotFoundError:
            return None
        return body.get("value") if isinstance(body, dict) else None

    async def _organization_contacts(
        self, org_id: str, source: ContactSource
    ) -> list[AuthorizedContact]:
        base = f"/rest/servicedeskapi/organization/{org_id}/property"
        emails = _emails(await self._property(f"{base}/{source.authorized_field}"))
        if not emails:
            return []
        around = set()
        if source.available_24x7_field:
            value = await self._property(f"{base}/{source.available_24x7_field}")
            around = {e.lower() for e in _emails(value)}
        certified = None
        if source.certified_until_field:
            certified = _date(await self._property(f"{base}/{source.certified_until_field}"))
        return [
            AuthorizedContact(
                email=e, certified_until=certified, available_24x7=e.lower() in around
            )
            for e in emails
        ]

    async def _customer_contacts(
        self, org_id: str, source: ContactSource
    ) -> list[AuthorizedContact]:
        found = []
        async for user in self._servicedesk_pages(
            f"/rest/servicedeskapi/organization/{org_id}/user"
        ):
            account, email = user.get("accountId"), user.get("emailAddress")
            if not account or not email:
                continue
            params = {"accountId": account}
            path = "/rest/api/3/user/properties"
            if not _truthy(await self._property(f"{path}/{source.authorized_field}", params)):
                continue
            certified = None
            if source.certified_until_field:
                value = await self._property(f"{path}/{source.certified_until_field}", params)
                certified = _date(value)
            around = False
            if source.available_24x7_field:
                value = await self._property(f"{path}/{source.available_24x7_field}", params)
                around = _truthy(value)
            found.append(
                AuthorizedContact(
                    email=email,
                    name=str(user.get("displayName") or ""),
                    certified_until=certified,
                    available_24x7=around,
                )
            )
        return found

    # --- mapping Jira records to the model -----------------------------------------------------

    def status_of(self, status: Mapping[str, Any]) -> Status:
        """A workflow status (``{"id", "name", "statusCategory": {"key"}}``) as a normalized
        status: the desk's mapping by id, then by name, then the status category."""
        for key in (str(status.get("id", "")), str(status.get("name", ""))):
            if key and key in self.config.statuses:
                return self.config.statuses[key]
        category = status.get("statusCategory")
        category_key = category.get("key") if isinstance(category, dict) else None
        if isinstance(category_key, str) and category_key in CATEGORY_STATUSES:
            return CATEGORY_STATUSES[category_key]
        raise ValueError(f"unknown status {status.get('name')!r} (map it in the desk's statuses)")

    def _priority(self, value: Any) -> Priority | None:
        name = value.get("name") if isinstance(value, dict) else None
        if not name:
            return None
        for priority in Priority:
            if self._priority_value(priority) == name:
                return priority
        return Priority.LOW if name == "Lowest" else None

    def _priority_value(self, priority: Priority) -> str:
        return self.config.priorities.get(priority, DEFAULT_PRIORITIES[priority])

    def _field_value(self, fields: Mapping[str, Any], source: FieldSource) -> str | None:
        if source.kind in ("custom", "native"):
            return _text(fields.get(source.id))
        for label in fields.get("labels") or ():
            if isinstance(label, str) and label.startswith(source.id) and label != source.id:
                return label[len(source.id) :]
        return None

    def _severity(self, fields: Mapping[str, Any]) -> Severity | None:
        source = self.config.field_source("severity")
        value = self._field_value(fields, source) if source is not None else None
        if value is None or source is None:
            return None
        mapped = self.config.severity_values.get(value)
        if mapped is None and source == FieldSource(kind="native", id="priority"):
            mapped = _SEVERITY_OF_PRIORITY.get(value)
        if mapped is None and value in ("1", "2", "3", "4"):
            mapped = int(value)
        return Severity(mapped) if mapped is not None else None

    def _role(
        self, comment: Mapping[str, Any], reporter: str | None, account: str | None
    ) -> AuthorRole:
        """Who wrote a comment: the reporter and Service Management customers are the
        customer; ticketwarden's own comments — its account *and* its marker property — and
        apps are ``system`` (a person sharing the API account still counts as an agent);
        other Atlassian accounts are agents. An unknown author counts as the customer, so a
        lost account never silences a response obligation."""
        author = comment.get("author")
        if not isinstance(author, dict) or not author.get("accountId"):
            return AuthorRole.CUSTOMER
        author_id = author["accountId"]
        if author_id == reporter or author.get("accountType") == "customer":
            return AuthorRole.CUSTOMER
        if author.get("accountType") == "app":
            return AuthorRole.SYSTEM
        if author_id == account and _property_of(comment, MARKER_PROPERTY) is not None:
            return AuthorRole.SYSTEM
        return AuthorRole.AGENT

    def ticket_from(
        self,
        issue: Mapping[str, Any],
        comments: Sequence[Mapping[str, Any]] = (),
        account: str | None = None,
    ) -> Ticket:
        """An issue as Jira returns it (``fields``, ``properties``) with its comments as the
        normalized model — the mapping every read uses.

        :raises ProtocolError: the issue lacks what a ticket needs.
        """
        return self._ticket(issue, comments, account)

    def _ticket(
        self,
        issue: Mapping[str, Any],
        comments: Sequence[Mapping[str, Any]],
        account: str | None,
    ) -> Ticket:
        try:
            return self._build_ticket(issue, comments, account)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._shape(f"unexpected issue record ({exc!r})", issue) from exc

    def _build_ticket(
        self,
        issue: Mapping[str, Any],
        comments: Sequence[Mapping[str, Any]],
        account: str | None,
    ) -> Ticket:
        fields = issue["fields"]
        reporter = fields.get("reporter") or {}
        requester = Contact(
            id=str(reporter.get("accountId") or ""),
            name=str(reporter.get("displayName") or ""),
            email=str(reporter.get("emailAddress") or ""),
        )
        organizations = fields.get(self.opts.organizations_field) or []
        first = organizations[0] if isinstance(organizations, list) and organizations else None
        organization = (
            Organization(id=str(first["id"]), name=str(first.get("name") or ""))
            if isinstance(first, dict)
            else None
        )
        mapped: dict[str, str] = {}
        for canonical, source in self.config.fields.items():
            if canonical == "severity":
                continue
            value = self._field_value(fields, source)
            if value is not None:
                mapped[canonical] = value
        labels = [x for x in fields.get("labels") or () if isinstance(x, str)]
        reason_source = self.config.field_source("resolution_reason")
        reason = self._field_value(fields, reason_source) if reason_source else None
        if reason is None:
            prefix = self.config.resolution_tag_prefix
            reason = next((x[len(prefix) :] for x in labels if x.startswith(prefix)), None) or None
        reporter_id = reporter.get("accountId")
        normalized = sorted(
            (
                Comment(
                    id=str(c["id"]),
                    author_role=self._role(c, reporter_id, account),
                    author=str((c.get("author") or {}).get("displayName") or ""),
                    body=to_text(c.get("body")),
                    public=_comment_public(c),
                    created_at=_parse_time(c["created"]),
                )
                for c in comments
            ),
            key=lambda c: c.created_at,
        )
        assignee = fields.get("assignee")
        resolved = fields.get("resolutiondate")
        follow = (issue.get("properties") or {}).get(FOLLOW_UP_PROPERTY)
        return Ticket(
            id=str(issue["id"]),
            number=str(issue.get("key") or issue["id"]),
            desk=self.config.name,
            subject=str(fields.get("summary") or ""),
            description=to_text(fields.get("description")),
            status=self.status_of(fields["status"]),
            severity=self._severity(fields),
            priority=self._priority(fields.get("priority")),
            requester=requester,
            organization=organization,
            fields=mapped,
            tags=frozenset(labels),
            comments=tuple(normalized),
            group=None,
            assignee=str(assignee["accountId"]) if isinstance(assignee, dict) else None,
            created_at=_parse_time(fields["created"]),
            updated_at=_parse_time(fields["updated"]),
            resolved_at=_parse_time(resolved) if resolved else None,
            resolution_reason=reason,
            follow_up_of=str(follow["of"]) if isinstance(follow, dict) and "of" in follow else None,
        )

    # --- writing ------------------------------------------------------------------------------

    async def already_applied(self, ticket: Ticket, action: BaseAction) -> bool:
        """A follow-up is found by its marker property; comments by the base rule."""
        if isinstance(action, CreateFollowUp) and action.key:
            return await self._find_follow_up(f"tw:{action.key}", ticket.created_at) is not None
        return await super().already_applied(ticket, action)

    async def apply(self, ticket: Ticket, actions: Sequence[BaseAction]) -> list[ActionResult]:
        """Carry out one evaluation's actions, in this order:

        1. **one edit** (``PUT /rest/api/3/issue/{id}``) with every field change — priority,
           severity, custom fields, labels added and removed (``update`` operations, so a
           concurrent label change survives), escalation by assignee or component, and the
           resolution reason's field and label;
        2. escalation by request participant (``POST /rest/servicedeskapi/request/{id}/
           participant``);
        3. each comment (``POST …/comment``, exactly once);
        4. the status change, through a transition found by where it leads (resolve carries
           the Jira resolution; close on a workflow whose Closed is reached only from
           Resolved goes through Resolved).

        The status comes last so that it wins over any automation a comment triggers. An
        edit Jira refuses (400) fails the actions it carried. Actions other than comments on a
        closed issue fail without a request (the Closed status of Service Management
        workflows is not editable); follow-ups are the way.
        """
        results: dict[int, ActionResult] = {}
        edit = _Edit()
        participants: list[tuple[int, str]] = []
        comments: list[tuple[int, AddComment]] = []
        moves: list[tuple[int, BaseAction]] = []
        follow_ups: list[tuple[int, CreateFollowUp]] = []
        for index, action in enumerate(actions):
            kind = action.kind
            if kind in INTERNAL_KINDS:
                results[index] = self.result(action, Outcome.UNCHANGED)
            elif not self.supports(kind):
                results[index] = self.result(
                    action, Outcome.UNSUPPORTED, f"{self.name} cannot {kind}"
                )
            elif isinstance(action, CreateFollowUp):
                follow_ups.append((index, action))
            elif isinstance(action, AddComment):
                comments.append((index, action))
            elif ticket.status == Status.CLOSED and _closes(action):
                results[index] = self.result(action, Outcome.UNCHANGED, "already closed")
            elif ticket.status == Status.CLOSED:
                detail = f"issue {ticket.number} is closed; a follow-up issue is the way"
                results[index] = self.result(action, Outcome.FAILED, detail)
            else:
                try:
                    participant = self._plan(edit, ticket, action)
                except _Refused as problem:
                    results[index] = self.result(action, Outcome.FAILED, str(problem))
                    continue
                if isinstance(action, SetStatus | Resolve | Close):
                    moves.append((index, action))
                if participant is not None:
                    participants.append((index, participant))
                if not isinstance(action, SetStatus | Close):
                    edit.riders.append(index)

        tid = self._checked_id(ticket.id)
        refused: dict[int, str] = {}
        body = edit.body()
        if body is not None:
            try:
                await self.client.send_json("PUT", f"/rest/api/3/issue/{tid}", body)
            except RejectedError as exc:
                refused = dict.fromkeys(edit.riders, exc.message)
        for index, account in participants:
            if index in refused:
                continue
            try:
                await self.client.send_json(
                    "POST",
                    f"/rest/servicedeskapi/request/{tid}/participant",
                    {"accountIds": [account]},
                    idempotent=True,  # adding a participant twice leaves one participant
                )
            except RejectedError as exc:
                refused[index] = exc.message
        for index in edit.riders:
            if index not in results:
                outcome = Outcome.FAILED if index in refused else Outcome.APPLIED
                results[index] = self.result(actions[index], outcome, refused.get(index, ""))
        for index, comment in comments:
            results[index] = await self._comment(tid, comment)
        for index, move in moves:
            if index in refused:
                continue
            try:
                detail = await self._move(tid, ticket, move)
            except _Refused as problem:
                results[index] = self.result(move, Outcome.FAILED, str(problem))
            except RejectedError as exc:
                results[index] = self.result(move, Outcome.FAILED, exc.message)
            else:
                results[index] = self.result(move, Outcome.APPLIED, detail)
        for index, follow_up in follow_ups:
            results[index] = await self._create_follow_up(ticket, follow_up)
        return [results[index] for index in range(len(actions))]

    def _plan(self, edit: _Edit, ticket: Ticket, action: BaseAction) -> str | None:
        """Fold one action's field changes into ``edit``; return a participant to add, if any.
        :class:`_Refused` if it cannot be carried out as configured."""
        if isinstance(action, SetPriority):
            edit.fields["priority"] = {"name": self._priority_value(action.priority)}
        elif isinstance(action, SetSeverity):
            source = self.config.field_source("severity")
            if source is None:
                raise _Refused("severity is not mapped (fields.severity in the desk config)")
            self._write(edit, ticket, source, self._severity_value(action.severity, source))
        elif isinstance(action, AddTags):
            edit.add(_labels(action.tags))
        elif isinstance(action, RemoveTags):
            edit.remove(_labels(action.tags))
        elif isinstance(action, SetField):
            source = self.config.field_source(action.field)
            if source is None:
                raise _Refused(f"field {action.field!r} is not mapped (fields in the desk config)")
            self._write(edit, ticket, source, action.value)
        elif isinstance(action, Escalate):
            target = self.config.escalation.get(action.target)
            if target is None:
                raise _Refused(
                    f"escalation target {action.target!r} is not mapped "
                    f"(escalation.{action.target} in the desk config)"
                )
            unsupported = target.unsupported(frozenset({"assignee", "component", "participant"}))
            if unsupported:
                raise _Refused(
                    f"escalation target {action.target!r} names {', '.join(unsupported)}: Jira "
                    "issues have no groups; escalate by assignee, component or participant"
                )
            if target.assignee is not None:
                edit.fields["assignee"] = {"accountId": target.assignee}
            if target.component is not None:
                edit.components[target.component] = None
            return target.participant
        elif isinstance(action, Resolve):
            source = self.config.field_source("resolution_reason")
            if source is not None:
                self._write(edit, ticket, source, action.resolution)
            label = re.sub(r"\s+", "_", f"{self.config.resolution_tag_prefix}{action.resolution}")
            edit.add([label])
        elif isinstance(action, SetStatus | Close):
            pass  # a transition, after the edit
        else:  # pragma: no cover - every declared kind is handled above or in apply()
            raise _Refused(f"{self.name} has no plan for {action.kind}")
        return None

    def _severity_value(self, severity: Severity, source: FieldSource) -> str:
        for value, level in self.config.severity_values.items():
            if level == int(severity):
                return value
        if source == FieldSource(kind="native", id="priority"):
            name = list(_SEVERITY_OF_PRIORITY)[int(severity) - 1]
            return name
        if source.kind == "tag":
            return str(int(severity))
        raise _Refused(f"severity_values has no desk value for severity {int(severity)}")

    def _write(self, edit: _Edit, ticket: Ticket, source: FieldSource, value: str) -> None:
        if source.kind == "custom":
            if not _CUSTOM_FIELD.match(source.id):
                raise _Refused(f"custom:{source.id} is not a Jira custom field id")
            kind = self.opts.field_types.get(source.id, "text")
            if kind == "select":
                edit.fields[source.id] = {"value": value}
            elif kind == "adf":
                edit.fields[source.id] = to_adf(value)
            elif kind == "number":
                try:
                    edit.fields[source.id] = float(value)
                except ValueError:
                    raise _Refused(f"{source.id} is a number field; {value!r} is not") from None
            else:
                edit.fields[source.id] = value
        elif source.kind == "native":
            if source.id == "priority":
                edit.fields["priority"] = {"name": value}
            elif source.id in _PROTECTED_NATIVE:
                raise _Refused(f"native:{source.id} is managed by the connector, not set_field")
            elif source.id in ("description", "environment"):
                edit.fields[source.id] = to_adf(value)
            else:
                edit.fields[source.id] = value
        else:
            stale = sorted(x for x in ticket.tags if x.startswith(source.id))
            edit.remove([x for x in stale if x != source.id + value])
            edit.add(_labels([source.id + value]))

    async def _comment(self, tid: str, action: AddComment) -> ActionResult:
        """``POST /rest/api/3/issue/{id}/comment`` with an ADF body and two properties:
        ``sd.public.comment`` = ``{"internal": not public}`` (Service Management's visibility)
        and ``ticketwarden`` = ``{"key": marker}``. The POST is not idempotent; after a lost
        response :func:`create_once` looks for the marker among the issue's comments (the
        comment endpoint is strongly consistent) before sending again."""
        marker = action.key or uuid.uuid4().hex
        payload = {
            "body": to_adf(action.body),
            "properties": [
                {"key": INTERNAL_PROPERTY, "value": {"internal": not action.public}},
                {"key": MARKER_PROPERTY, "value": {"key": marker}},
            ],
        }

        async def send() -> Mapping[str, Any]:
            body = await self.client.send_json("POST", f"/rest/api/3/issue/{tid}/comment", payload)
            return body if isinstance(body, dict) else {}

        async def find() -> Mapping[str, Any] | None:
            for comment in await self._comments(tid):
                value = _property_of(comment, MARKER_PROPERTY)
                if isinstance(value, dict) and value.get("key") == marker:
                    return comment
            return None

        try:
            created = await create_once(
                send, find, settle_seconds=self.opts.create_settle_seconds, sleep=self.runtime.sleep
            )
        except RejectedError as exc:
            return self.result(action, Outcome.FAILED, exc.message)
        return self.result(action, created_id=_id_text(created.get("id")))

    async def _transitions(self, tid: str) -> list[Mapping[str, Any]]:
        body = await self.client.get_json(
            f"/rest/api/3/issue/{tid}/transitions", params={"expand": "transitions.fields"}
        )
        try:
            return [t for t in body["transitions"] if isinstance(t, dict)]
        except (KeyError, TypeError) as exc:
            raise self._shape(f"unexpected transitions ({exc!r})", body) from exc

    def _pick(self, transitions: Sequence[Mapping[str, Any]], target: Status) -> Mapping[str, Any]:
        """The transition leading to a status that reads as ``target``; a status the desk maps
        by name is preferred over one that only matches by category."""
        fitting = []
        for transition in transitions:
            to = transition.get("to")
            if transition.get("isAvailable") is False or not isinstance(to, dict):
                continue
            try:
                status = self.status_of(to)
            except ValueError:
                continue
            if status == target:
                named = str(to.get("name")) in self.config.statuses
                named = named or str(to.get("id")) in self.config.statuses
                fitting.append((0 if named else 1, transition))
        if not fitting:
            offered = ", ".join(
                f"{t.get('name')!r} → {(t.get('to') or {}).get('name')!r}" for t in transitions
            )
            raise _Refused(
                f"the workflow offers no transition to a status that reads as {target.value} "
                f"(available: {offered or 'none'}); map a status to {target.value} under "
                "statuses in the desk config, or add the transition to the workflow"
            )
        fitting.sort(key=lambda pair: pair[0])
        return fitting[0][1]

    async def _transition(
        self, tid: str, transition: Mapping[str, Any], resolution: str | None
    ) -> None:
        body: dict[str, Any] = {"transition": {"id": str(transition["id"])}}
        screen = transition.get("fields")
        if resolution is not None and isinstance(screen, dict) and "resolution" in screen:
            body["fields"] = {"resolution": {"name": resolution}}
        await self.client.send_json("POST", f"/rest/api/3/issue/{tid}/transitions", body)

    async def _move(self, tid: str, ticket: Ticket, action: BaseAction) -> str:
        """Carry out a status change through transitions; returns a detail for the result."""
        if isinstance(action, Resolve):
            target, resolution = Status.RESOLVED, self._resolution(action.resolution)
        elif isinstance(action, Close):
            target, resolution = Status.CLOSED, self.opts.default_resolution
        elif isinstance(action, SetStatus):
            target, resolution = action.status, self.opts.default_resolution
        else:  # pragma: no cover - only moves are passed
            raise _Refused(f"{action.kind} is not a status change")
        transitions = await self._transitions(tid)
        try:
            chosen = self._pick(transitions, target)
        except _Refused:
            if target != Status.CLOSED or ticket.status == Status.RESOLVED:
                raise
            # Service Management's Closed is commonly reached from Resolved only
            via = self._pick(transitions, Status.RESOLVED)
            await self._transition(tid, via, resolution)
            chosen = self._pick(await self._transitions(tid), Status.CLOSED)
            await self._transition(tid, chosen, resolution)
            return f"through {via.get('name')!r} and {chosen.get('name')!r}"
        await self._transition(tid, chosen, resolution)
        return f"through {chosen.get('name')!r}"

    def _resolution(self, reason: str) -> str:
        return self.opts.resolutions.get(reason, self.opts.default_resolution)

    async def _create_follow_up(self, ticket: Ticket, action: CreateFollowUp) -> ActionResult:
        """A new issue in the original's project and issue type (or
        ``options.follow_up_issue_type``), reported by the original's reporter, with the
        customer's text as its description, the original's organization, and the issue
        property ``ticketwarden.follow_up`` = ``{"of": original id, "marker": "tw:{key}"}``
        set atomically with it (``POST /rest/api/3/issue``); then a link of
        ``options.follow_up_link_type`` to the original (``POST /rest/api/3/issueLink``).

        After a lost response, :func:`create_once` looks for the marker among the project's
        issues created since just before the send (a JQL search with ``properties``) before
        sending again. A link Jira refuses leaves the follow-up in place (the property links
        it) and says so in the result.
        """
        tid = self._checked_id(ticket.id)
        original = await self.client.get_json(
            f"/rest/api/3/issue/{tid}", params={"fields": "project,issuetype"}
        )
        try:
            project = str(original["fields"]["project"]["id"])
            issue_type = self.opts.follow_up_issue_type or str(
                original["fields"]["issuetype"]["id"]
            )
        except (KeyError, TypeError) as exc:
            raise self._shape(
                f"the original has no project or issue type ({exc!r})", original
            ) from exc
        marker = f"tw:{action.key or uuid.uuid4().hex}"
        fields: dict[str, Any] = {
            "project": {"id": project},
            "issuetype": {"id": issue_type},
            "summary": action.subject,
            "description": to_adf(action.body),
        }
        if ticket.requester.id:
            fields["reporter"] = {"accountId": ticket.requester.id}
        if ticket.organization is not None and ticket.organization.id.isdigit():
            fields[self.opts.organizations_field] = [int(ticket.organization.id)]
        payload = {
            "fields": fields,
            "properties": [
                {"key": FOLLOW_UP_PROPERTY, "value": {"of": ticket.id, "marker": marker}}
            ],
        }
        since = datetime.fromtimestamp(self.runtime.wall_clock(), UTC) - timedelta(minutes=2)

        async def send() -> Mapping[str, Any]:
            body = await self.client.send_json("POST", "/rest/api/3/issue", payload)
            if not isinstance(body, dict) or "id" not in body:
                raise self._shape("the created issue has no id", body)
            return body

        async def find() -> Mapping[str, Any] | None:
            return await self._find_follow_up(marker, since)

        try:
            created = await create_once(
                send, find, settle_seconds=self.opts.create_settle_seconds, sleep=self.runtime.sleep
            )
        except RejectedError as exc:
            return self.result(action, Outcome.FAILED, exc.message)
        new_id = str(created["id"])
        detail = ""
        try:
            await self.client.send_json(
                "POST",
                "/rest/api/3/issueLink",
                {
                    "type": {"name": self.opts.follow_up_link_type},
                    "inwardIssue": {"id": new_id},
                    "outwardIssue": {"id": ticket.id},
                },
                idempotent=True,  # Jira keeps one link of a type between two issues
            )
        except RejectedError as exc:
            detail = f"created, but not linked ({exc.message}); the property links it"
        return self.result(action, detail=detail, created_id=new_id)

    async def _find_follow_up(self, marker: str, since: datetime) -> Mapping[str, Any] | None:
        _, zone = await self.me()
        jql = (
            f"project in {jql_list(self.opts.projects)} AND created >= "
            f"{jql_time(floor_minute(since.astimezone(zone)), zone)} ORDER BY created DESC"
        )
        async for issue in paginate_cursor(
            self.client,
            "/rest/api/3/search/jql",
            params={
                "jql": jql,
                "maxResults": self.opts.page_size,
                "fields": "created",
                "properties": FOLLOW_UP_PROPERTY,
            },
            items=lambda body: list(body["issues"]),
            next_cursor=_next_token,
            cursor_param="nextPageToken",
        ):
            value = (issue.get("properties") or {}).get(FOLLOW_UP_PROPERTY)
            if isinstance(value, dict) and value.get("marker") == marker:
                found: Mapping[str, Any] = issue
                return found
        return None

    # --- webhooks ---------------------------------------------------------------------------------

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> list[WebhookEvent]:
        """Verify and normalize one delivery of an admin webhook with a secret.

        ``X-Hub-Signature`` must be ``sha256=`` + the hex HMAC-SHA256 of the raw body keyed
        with the webhook's secret (Jira's WebSub-style signature), compared in constant time
        before the body is parsed. The body's ``timestamp`` (epoch milliseconds) must lie
        within the replay window; the delivery id is ``X-Atlassian-Webhook-Identifier`` (the
        same on Jira's retries, so a retry of a stored delivery is refused as a replay).
        ``jira:issue_created`` is *created*; ``jira:issue_updated`` and ``comment_created``
        (and ``comment_updated``) are *updated*; the receiver re-reads the issue.
        """
        given = headers.get("x-hub-signature", "").strip()
        if not given:
            raise WebhookRejected("unsigned", "X-Hub-Signature missing")
        method, _, digest = given.partition("=")
        if method.strip().lower() != "sha256" or not digest:
            raise WebhookRejected("bad_signature", f"unsupported signature method {method!r}")
        expected = hmac_sha256(self.webhook_secret, body).hex()
        if not signatures_match(expected, digest.strip().lower()):
            raise WebhookRejected("bad_signature", "the signature does not match the body")
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise TypeError("the body is not a JSON object")
            event = str(data["webhookEvent"])
            kind = _WEBHOOK_EVENTS.get(event)
            if kind is None:
                raise ValueError(f"webhookEvent {event!r} is not one ticketwarden handles")
            issue = data["issue"]
            issue_id = str(issue["id"]).strip()
            if not issue_id.isdigit():
                raise ValueError(f"issue id {issue['id']!r} is not a Jira issue id")
            sent = datetime.fromtimestamp(int(data["timestamp"]) / 1000, UTC)
        except (ValueError, KeyError, TypeError, OverflowError, OSError) as exc:
            raise WebhookRejected("malformed", str(exc)) from None
        check_timestamp(sent, now, self.replay_window)
        delivery = headers.get("x-atlassian-webhook-identifier", "").strip()
        return [
            WebhookEvent(
                delivery_id=delivery or f"{event}:{issue_id}:{data['timestamp']}",
                ticket_id=issue_id,
                kind=kind,
                at=sent,
            )
        ]

    # --- helpers ----------------------------------------------------------------------------------

    def _checked_id(self, ticket_id: str) -> str:
        if not _ISSUE_ID.match(ticket_id):
            raise NotFoundError(self.config.name, f"{ticket_id!r} is not a Jira issue id or key")
        return ticket_id

    def _shape(self, message: str, body: Any) -> ProtocolError:
        try:
            excerpt = json.dumps(body, default=str)
        except ValueError:
            excerpt = repr(body)
        return ProtocolError(
            self.config.name, message, excerpt=excerpt, secrets=self.client.secrets()
        )


_WEBHOOK_EVENTS: Final[Mapping[str, EventKind]] = {
    "jira:issue_created": EventKind.CREATED,
    "jira:issue_updated": EventKind.UPDATED,
    "comment_created": EventKind.UPDATED,
    "comment_updated": EventKind.UPDATED,
}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TicketwardenError(f"{name!r} is not an IANA time zone ({exc})") from None


def _property_of(record: Mapping[str, Any], key: str) -> Any:
    """The value of entity property ``key`` in a record's expanded ``properties`` (a list of
    ``{key, value}`` on comments, a mapping on issues); ``None`` when absent."""
    properties = record.get("properties")
    if isinstance(properties, dict):
        return properties.get(key)
    for item in properties if isinstance(properties, list) else ():
        if isinstance(item, dict) and item.get("key") == key:
            return item.get("value")
    return None


def _comment_public(comment: Mapping[str, Any]) -> bool:
    """Shared with the customer: ``sd.public.comment`` says internal, else ``jsdPublic``."""
    value = _property_of(comment, INTERNAL_PROPERTY)
    if isinstance(value, dict) and "internal" in value:
        return not bool(value["internal"])
    return bool(comment.get("jsdPublic", True))


def _labels(tags: Any) -> list[str]:
    """Tags as Jira labels, which cannot contain spaces."""
    labels = sorted(tags)
    bad = [x for x in labels if not x or re.search(r"\s", x)]
    if bad:
        raise _Refused(f"Jira labels cannot contain spaces: {bad}")
    return labels


def _closes(action: BaseAction) -> bool:
    return isinstance(action, Close) or (
        isinstance(action, SetStatus) and action.status == Status.CLOSED
    )


def _id_text(value: Any) -> str | None:
    return None if value is None else str(value)
