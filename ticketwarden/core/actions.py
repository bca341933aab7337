"""What a rule can ask for, and nothing else.

Rules never touch a helpdesk: they return these actions, and the engine merges them while
connectors carry them out. Every action names the rule that asked for it (``rule_id``, e.g.
``CLOSE-3``) and says why in words a support manager understands (``reason``). The engine fills
in ``key``, a deterministic idempotency key, so a retried event or a re-run sync never applies
the same action twice.

Three fields steer the merge rather than the helpdesk:

- ``occasion`` separates actions that are otherwise identical but legitimately repeat over
  time (the first and the second reminder); it becomes part of the key.
- ``unless`` names action kinds that make this one pointless when the same evaluation also asks
  for them (a reminder ``unless`` ``resolve``): the engine drops it and says so.
- ``remember`` is what the rule wants persisted in the ticket's policy state *if* the action
  survives the merge (a reminder counts itself only when it is really sent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ticketwarden.core.model import FrozenJson, Priority, Severity, Status

RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


def _rule_id(value: str) -> str:
    if not RULE_ID.match(value):
        raise ValueError(f"rule ids look like 'CLOSE-3' or 'ACME-SLA-1', not {value!r}")
    return value


class BaseAction(BaseModel):
    """Fields every action carries; see the module docstring for the merge-steering ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    rule_id: Annotated[str, AfterValidator(_rule_id)]
    reason: str = Field(min_length=1)
    occasion: str = ""
    unless: frozenset[str] = frozenset()
    remember: FrozenJson = Field(default_factory=dict)
    key: str = ""

    @field_validator("unless", mode="before")
    @classmethod
    def _as_set(cls, value: Any) -> Any:
        return frozenset(value) if isinstance(value, list | tuple | set) else value

    @property
    def effect(self) -> tuple[Any, ...]:
        """What the action does to the ticket, without who asked or why: the de-duplication key."""
        cls = type(self)
        names = _EFFECT_FIELDS.get(cls)
        if names is None:
            skip = set(BaseAction.model_fields)
            names = _EFFECT_FIELDS[cls] = tuple(n for n in cls.model_fields if n not in skip)
        values = self.__dict__
        return (self.kind, *((name, _hashable(values[name])) for name in names))

    def describe(self) -> str:
        """A one-line human summary such as ``set_status waiting_on_customer``."""
        parts = []
        for name, value in self.effect[1:]:
            text = " ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
            text = " ".join(text.split())
            parts.append(f"{name}={text[:57] + '...' if len(text) > 60 else text}")
        return " ".join([str(self.effect[0]), *parts])


_EFFECT_FIELDS: dict[type[BaseAction], tuple[str, ...]] = {}


def _hashable(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return tuple(sorted(value))
    if isinstance(value, Mapping):
        return tuple(sorted(value.items()))
    return value


class AddComment(BaseAction):
    """Write a comment: public (the customer sees it) or private (an internal note for agents)."""

    kind: Literal["comment"] = "comment"
    body: str = Field(min_length=1)
    public: bool = True


class SetStatus(BaseAction):
    """Move the ticket to a status (waiting on customer is how a hold for the customer looks)."""

    kind: Literal["set_status"] = "set_status"
    status: Status


class SetSeverity(BaseAction):
    """Change the ticket's severity (for example lowering a severity-1 ticket, SEV1-1)."""

    kind: Literal["set_severity"] = "set_severity"
    severity: Severity


class SetPriority(BaseAction):
    """Change the ticket's queue priority."""

    kind: Literal["set_priority"] = "set_priority"
    priority: Priority


class AddTags(BaseAction):
    """Add tags (labels) without touching the others."""

    kind: Literal["add_tags"] = "add_tags"
    tags: frozenset[str]


class RemoveTags(BaseAction):
    """Remove tags (labels) without touching the others."""

    kind: Literal["remove_tags"] = "remove_tags"
    tags: frozenset[str]


class SetField(BaseAction):
    """Set a canonical field (mapped to a native or custom helpdesk field by the connector)."""

    kind: Literal["set_field"] = "set_field"
    field: str
    value: str


class Escalate(BaseAction):
    """Hand the ticket to an escalation target named in the policy (a group or a person)."""

    kind: Literal["escalate"] = "escalate"
    target: str


class Resolve(BaseAction):
    """Mark the ticket resolved with one of the policy's resolution reasons (CLOSE-2)."""

    kind: Literal["resolve"] = "resolve"
    resolution: str


class Close(BaseAction):
    """Close the ticket for good: it can never be reopened (CLOSE-5)."""

    kind: Literal["close"] = "close"


class CreateFollowUp(BaseAction):
    """Open a new ticket that links this one, carrying the customer's message (CLOSE-5)."""

    kind: Literal["create_follow_up"] = "create_follow_up"
    subject: str
    body: str


class Record(BaseAction):
    """Write an entry to the audit trail only; nothing is sent to the helpdesk (INTAKE-5)."""

    kind: Literal["record"] = "record"
    message: str
    actor: str = "ticketwarden"


class Remember(BaseAction):
    """Persist ``remember`` in the ticket's policy state without any other effect."""

    kind: Literal["remember"] = "remember"


Action = Annotated[
    AddComment
    | SetStatus
    | SetSeverity
    | SetPriority
    | AddTags
    | RemoveTags
    | SetField
    | Escalate
    | Resolve
    | Close
    | CreateFollowUp
    | Record
    | Remember,
    Field(discriminator="kind"),
]
"""Any action; pydantic picks the class from ``kind``."""

ACTION_TYPES: tuple[type[BaseAction], ...] = (
    AddComment,
    SetStatus,
    SetSeverity,
    SetPriority,
    AddTags,
    RemoveTags,
    SetField,
    Escalate,
    Resolve,
    Close,
    CreateFollowUp,
    Record,
    Remember,
)

ACTION_KINDS: frozenset[str] = frozenset(str(t.model_fields["kind"].default) for t in ACTION_TYPES)
"""Every action kind name, for validating scenarios and ``unless`` sets."""

INTERNAL_KINDS: frozenset[str] = frozenset({"record", "remember"})
"""Kinds that only touch ticketwarden's own store, never the helpdesk."""
