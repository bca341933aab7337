"""The normalized helpdesk model every rule and connector speaks.

Zendesk, Jira Service Management and Freshdesk each name statuses, priorities and authors
differently; connectors translate their desk's shapes into these models and back, so rules
never know which helpdesk a ticket came from. Every model is immutable: a rule cannot change a
ticket behind the engine's back, it can only ask for an action.

Statuses cover all three desks:

=====================  =============  ======================  ===================
ticketwarden           Zendesk        Jira Service Mgmt       Freshdesk
=====================  =============  ======================  ===================
new                    new            (category) new          open (no reply yet)
open                   open           in progress             open
waiting_on_customer    pending        waiting for customer    pending
on_hold                hold           (custom) on hold        (custom status)
resolved               solved         resolved (done)         resolved
closed                 closed         closed (done)           closed
=====================  =============  ======================  ===================
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    field_validator,
)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must carry a time zone (e.g. 2026-11-26T09:00:00+01:00)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
"""A datetime that must be timezone-aware: rules compare instants across time zones."""


def _freeze(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def _thaw(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


FrozenFields = Annotated[Mapping[str, str], AfterValidator(_freeze), PlainSerializer(_thaw)]
"""A read-only mapping of field names to text that still serializes as a JSON object."""

FrozenJson = Annotated[Mapping[str, JsonValue], AfterValidator(_freeze), PlainSerializer(_thaw)]
"""A read-only mapping of JSON values (rules' memory) that serializes as a JSON object."""


class Frozen(BaseModel):
    """Base for immutable boundary models: unknown keys are errors, instances are hashable."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Status(enum.StrEnum):
    """Where a ticket stands; the union of what the three built-in helpdesks can express."""

    NEW = "new"
    OPEN = "open"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_done(self) -> bool:
        """Resolved or closed: support considers its work finished."""
        return self in (Status.RESOLVED, Status.CLOSED)


class Severity(enum.IntEnum):
    """Business impact as the customer states it: 1 is the highest (system down), 4 the lowest."""

    CRITICAL = 1
    HIGH = 2
    MEDIUM = 3
    LOW = 4


class Priority(enum.StrEnum):
    """Queue priority, the four levels every built-in helpdesk offers (SEV-1..SEV-4, AUTH-3)."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for urgent … 3 for low: smaller is served first."""
        return list(Priority).index(self)


class AuthorRole(enum.StrEnum):
    """Who wrote a comment: the customer, a support agent, or a system (including ticketwarden)."""

    CUSTOMER = "customer"
    AGENT = "agent"
    SYSTEM = "system"


class Contact(Frozen):
    """A person on the customer side (a requester) as the helpdesk knows them."""

    id: str
    name: str = ""
    email: str = ""
    phone: str = ""


class Organization(Frozen):
    """The customer organization a requester belongs to."""

    id: str
    name: str = ""


class Comment(Frozen):
    """One message on a ticket: public (the customer sees it) or private (agents only)."""

    id: str
    author_role: AuthorRole
    author: str = ""
    body: str = ""
    public: bool = True
    created_at: AwareDatetime


class Ticket(Frozen):
    """A helpdesk ticket in normalized form.

    ``fields`` holds the policy's intake items (INTAKE-1) and any other mapped custom field under
    the policy's canonical names (``server_url``, ``module``, ``steps``, ``sample_machines``,
    ``version``, …); which native or custom field each comes from is connector configuration.
    A value that is missing or blank counts as not supplied.
    """

    id: str
    number: str = Field(
        description="what the customer sees and should cite, e.g. '#4711' or 'SUP-12'"
    )
    desk: str = "default"
    subject: str = ""
    description: str = ""
    status: Status = Status.NEW
    severity: Severity | None = None
    priority: Priority | None = None
    requester: Contact
    organization: Organization | None = None
    fields: FrozenFields = Field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    comments: tuple[Comment, ...] = ()
    group: str | None = None
    assignee: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    resolution_reason: str | None = None
    follow_up_of: str | None = Field(
        default=None, description="id of the closed ticket this one follows up (CLOSE-5)"
    )

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_as_set(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return frozenset(value)
        return value

    def __hash__(self) -> int:
        return hash((self.desk, self.id, self.updated_at))

    def field(self, name: str) -> str:
        """The stripped value of an intake or custom field; empty when not supplied."""
        return (self.fields.get(name) or "").strip()

    def public_comments(self, role: AuthorRole) -> tuple[Comment, ...]:
        """Public comments written by ``role``, oldest first."""
        return tuple(c for c in self.comments if c.public and c.author_role == role)


class ChangeKind(enum.StrEnum):
    """What happened to an existing ticket (the ``change`` passed to ``on_ticket_updated``)."""

    CUSTOMER_REPLY = "customer_reply"
    AGENT_REPLY = "agent_reply"
    AGENT_NOTE = "agent_note"
    STATUS_CHANGE = "status_change"
    FIELD_CHANGE = "field_change"
    ESCALATION_REQUEST = "escalation_request"
    AGENT_ACTION = "agent_action"


class Change(Frozen):
    """A normalized update to a ticket, as a connector reports it.

    ``comment`` is the new comment for replies and notes. ``previous_status`` is the status
    before the change, so rules can tell a reply to a resolved ticket from any other reply even
    when the helpdesk has already reopened it (Zendesk does). ``fields_changed`` names the
    canonical fields and the pseudo-fields ``severity``, ``tags``, ``status`` that changed.
    ``agent_action`` and ``note`` describe an agent-triggered policy action (INTAKE-4).
    """

    kind: ChangeKind
    at: AwareDatetime
    actor: str = ""
    comment: Comment | None = None
    previous_status: Status | None = None
    fields_changed: frozenset[str] = frozenset()
    tags_added: frozenset[str] = frozenset()
    tags_removed: frozenset[str] = frozenset()
    agent_action: str | None = None
    note: str = ""


class AuthorizedContact(Frozen):
    """A person an organization designated to open tickets (AUTH-1), maybe certified (AUTH-3)."""

    email: str
    name: str = ""
    phone: str = ""
    certified_until: date | None = Field(
        default=None, description="expiry of the Certified Administrator certification"
    )
    available_24x7: bool = Field(
        default=False, description="named as reachable around the clock for severity 1 (SEV1-1)"
    )

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class RosterEntry(Frozen):
    """One organization's designated authorized contacts."""

    organization: str
    contacts: tuple[AuthorizedContact, ...] = ()


class Roster(Frozen):
    """Every organization's authorized contacts: data the system reads, never code (AUTH-2).

    An organization that is absent from the roster is *unknown* (``lookup`` answers ``None``
    for it through :meth:`knows`), which is different from a known organization whose roster
    does not list the requester.
    """

    entries: tuple[RosterEntry, ...] = ()

    def knows(self, organization: str | None) -> bool:
        """Whether the roster has an entry for this organization id."""
        return organization is not None and any(
            e.organization == organization for e in self.entries
        )

    def lookup(self, organization: str | None, email: str) -> AuthorizedContact | None:
        """The authorized contact with this e-mail in this organization, if designated."""
        wanted = email.strip().lower()
        for entry in self.entries:
            if entry.organization == organization:
                for contact in entry.contacts:
                    if contact.email == wanted:
                        return contact
        return None

    def contacts_of(self, organization: str | None) -> tuple[AuthorizedContact, ...]:
        """All authorized contacts designated by the organization (empty when unknown)."""
        for entry in self.entries:
            if entry.organization == organization:
                return entry.contacts
        return ()


class RosterChange(Frozen):
    """One difference between two rosters: a contact added, removed or changed (AUTH-2)."""

    organization: str
    email: str
    change: str = Field(description="'added', 'removed' or 'updated'")
    before: AuthorizedContact | None = None
    after: AuthorizedContact | None = None


def diff_rosters(old: Roster, new: Roster) -> tuple[RosterChange, ...]:
    """Every contact added, removed or changed between two rosters, in a stable order (AUTH-2)."""
    changes: list[RosterChange] = []
    orgs = sorted({e.organization for e in old.entries} | {e.organization for e in new.entries})
    for org in orgs:
        before = {c.email: c for c in old.contacts_of(org)}
        after = {c.email: c for c in new.contacts_of(org)}
        for email in sorted(before.keys() | after.keys()):
            b, a = before.get(email), after.get(email)
            if b is None:
                changes.append(RosterChange(organization=org, email=email, change="added", after=a))
            elif a is None:
                changes.append(
                    RosterChange(organization=org, email=email, change="removed", before=b)
                )
            elif a != b:
                changes.append(
                    RosterChange(organization=org, email=email, change="updated", before=b, after=a)
                )
    return tuple(changes)


class EventKind(enum.StrEnum):
    """Why the engine is evaluating a ticket; each kind calls one lifecycle hook."""

    CREATED = "created"
    UPDATED = "updated"
    RESOLVED = "resolved"
    STALE = "stale"


class Event(Frozen):
    """One occasion to evaluate a ticket: a webhook, a change found by sync, or a due timer.

    ``id`` is stable for the occasion (the helpdesk's event id, or derived from the ticket and
    time for sync catch-up and timers) and goes into every action's idempotency key, so the
    same occasion evaluated twice asks for exactly the same actions.
    """

    id: str
    kind: EventKind
    at: AwareDatetime
    change: Change | None = None
