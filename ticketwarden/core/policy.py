"""The policy file: POLICY.md's rules as data, with every bold default built in.

A policy file is TOML. It never has to repeat the defaults: whatever it says is deep-merged over
the built-in preset (tables merge key by key, lists and values replace), then validated. So a
file containing only ::

    [closure]
    auto_resolve_after = "10d"

is the default policy with a ten-day silence window. Durations are written like ``7d``, ``4h``
or ``90m``; on a business-hours clock ``1d`` means one business day (the calendar's day length).

Errors are reported as :class:`PolicyError` naming the key path and what is wrong, never as a
traceback.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from ticketwarden.core.clock import (
    AlwaysOpen,
    BusinessCalendar,
    CalendarConfig,
    Span,
    UnionCalendarConfig,
    parse_span,
)
from ticketwarden.core.model import Organization, Priority, Severity, Ticket

TWENTY_FOUR_SEVEN = "24x7"
"""The name of the built-in always-open clock."""


class Section(BaseModel):
    """Base for policy sections: immutable, unknown keys are errors (a typo is not ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def serves(*rule_ids: str) -> dict[str, Any]:
    """A policy key's ``json_schema_extra``: the POLICY.md rules it serves (none: it is for
    people). A key without it serves its parent key's rules; ``policy docs`` prints them."""
    return {"rules": list(rule_ids)}


# --- Intake -----------------------------------------------------------------------------------


class IntakeField(Section):
    """One item a new ticket must carry (INTAKE-1)."""

    name: str = Field(description="canonical field name; subject/description/severity are native")
    label: str = Field(description="how the item is named to the customer")
    pattern: str | None = Field(None, description="regular expression a valid value must match")
    required: bool = Field(
        True,
        description=(
            "a ticket without this item is incomplete; false: the item is only checked when given"
        ),
    )


DEFAULT_INTAKE_FIELDS = (
    IntakeField(name="subject", label="a subject"),
    IntakeField(name="description", label="a description of the problem and the expected result"),
    IntakeField(name="severity", label="the severity (business impact 1–4)"),
    IntakeField(
        name="server_url",
        label="the full web address (URL) of the affected server",
        pattern=r"^https?://[^\s/]+\S*$",
    ),
    IntakeField(name="module", label="the module or product category"),
    IntakeField(name="steps", label="the steps to reproduce the problem"),
    IntakeField(
        name="sample_machines",
        label="sample machines (group ID and machine ID of affected endpoints)",
    ),
    IntakeField(name="version", label="the version number of the main application"),
)


class IntakePolicy(Section):
    """INTAKE-1..6: what a ticket must carry, and how incomplete tickets are held."""

    fields: tuple[IntakeField, ...] = Field(
        DEFAULT_INTAKE_FIELDS,
        description=(
            "the items a new ticket must carry; subject, description and severity are native, the "
            "others come from the desk's field mapping"
        ),
        json_schema_extra=serves("INTAKE-1"),
    )
    modules: tuple[str, ...] = Field(
        (
            "Agent",
            "Patch Management",
            "Monitoring",
            "Remote Control",
            "Backup",
            "Reporting",
            "Server",
        ),
        description="the module or product categories a ticket's `module` item may name",
        json_schema_extra=serves("INTAKE-1"),
    )
    hold_message: str = Field(
        "Thank you for your ticket. Before we can start working on it we need the following "
        "information:\n{missing}\nPlease reply to this ticket with the missing items.",
        description="comment holding an incomplete ticket; `{missing}` lists the missing items",
        json_schema_extra=serves("INTAKE-2"),
    )
    complete_message: str = Field(
        "Thank you — your ticket now has everything we need, and we are working on it.",
        description="comment releasing the hold once every item is there",
        json_schema_extra=serves("INTAKE-2"),
    )
    incomplete_tag: str = Field(
        "intake-incomplete",
        description="tag a ticket carries while items are missing",
        json_schema_extra=serves("INTAKE-1", "INTAKE-2"),
    )
    number_notice: str = Field(
        "Ticket {number} — please cite this ticket number in every reply and communication.",
        description="appended to every public comment; `{number}` is the ticket number",
        json_schema_extra=serves("INTAKE-3"),
    )
    cannot_comply_phrases: tuple[str, ...] = Field(
        (
            "cannot carry out",
            "can't carry out",
            "unable to carry out",
            "cannot perform the steps",
            "unable to perform",
            "können die schritte nicht",
            "nicht durchführen",
        ),
        description="phrases in a customer reply meaning they cannot carry out the steps",
        json_schema_extra=serves("INTAKE-4"),
    )
    cannot_comply_tag: str = Field(
        "steps-not-carried-out",
        description="tag set when the customer cannot carry out the steps",
        json_schema_extra=serves("INTAKE-4"),
    )
    access_marker: str = Field(
        "#access",
        description="an agent's private note starting with this logs server access",
        json_schema_extra=serves("INTAKE-5"),
    )
    environment_reason: str = Field(
        "environment",
        description="resolution reason an agent uses for INTAKE-6",
        json_schema_extra=serves("INTAKE-6"),
    )
    environment_message: str = Field(
        "The cause lies in the hardware or operating system of your environment, which is below "
        "the documented system requirements. We recommend the changes described above; please "
        "reply to this ticket once they are in place and we will resume work.",
        description=(
            "told to the customer when a ticket is resolved for its environment; the ticket then "
            "waits on the customer"
        ),
        json_schema_extra=serves("INTAKE-6"),
    )

    @model_validator(mode="after")
    def _unique_fields(self) -> IntakePolicy:
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"intake field names must be unique, repeated: {', '.join(dupes)}")
        return self


# --- Authorized contacts ------------------------------------------------------------------------


class ContactsPolicy(Section):
    """AUTH-1..3: who may open tickets and who gets priority."""

    unauthorized: Literal["reject", "flag"] = Field(
        "reject",
        description="reject: answer and wait for an authorized contact; flag: note and go on",
        json_schema_extra=serves("AUTH-1"),
    )
    unknown_organization: Literal["reject", "flag", "allow"] = Field(
        "flag",
        description="what to do when the roster has no entry for the organization",
        json_schema_extra=serves("AUTH-1"),
    )
    unauthorized_tag: str = Field(
        "unauthorized-requester",
        description="tag on a ticket from a requester who is not an authorized contact",
        json_schema_extra=serves("AUTH-1"),
    )
    reject_message: str = Field(
        "Thank you for contacting support. Tickets can only be opened by the authorized "
        "contacts your organization has designated. Please ask one of them to confirm this "
        "request in this ticket, or have your organization add you as an authorized contact.",
        description="answer to an unauthorized requester when `unauthorized` is `reject`",
        json_schema_extra=serves("AUTH-1"),
    )
    flag_note: str = Field(
        "Requester {email} is not an authorized contact of {organization}.",
        description="internal note when `unauthorized` is `flag`; `{email}`, `{organization}`",
        json_schema_extra=serves("AUTH-1"),
    )
    certified_tag: str = Field(
        "certified-admin",
        description="tag on a ticket opened by a validly certified administrator",
        json_schema_extra=serves("AUTH-3"),
    )
    certified_priority_boost: bool = Field(
        True,
        description="raise the queue priority one level for valid certified admins",
        json_schema_extra=serves("AUTH-3"),
    )
    certified_response_factor: float = Field(
        1.0,
        gt=0,
        le=1,
        description="first-response target multiplier for certified requesters (RESP-1)",
        json_schema_extra=serves("RESP-1", "AUTH-3"),
    )


# --- Severity 1 continuous effort ---------------------------------------------------------------


class ContinuityPolicy(Section):
    """SEV1-1: a severity-1 ticket needs a contact reachable around the clock."""

    contact_timeout: Span = Field(
        parse_span("2h"),
        description=(
            "how long a request for a 24×7 contact may go unanswered before the severity is lowered"
        ),
        json_schema_extra=serves("SEV1-1"),
    )
    lower_to: Severity = Field(
        Severity.HIGH,
        description="the severity a severity-1 ticket is lowered to after the timeout",
        json_schema_extra=serves("SEV1-1"),
    )
    contact_field: str = Field(
        "sev1_contact",
        description="ticket field naming the 24×7 contact (name and phone)",
        json_schema_extra=serves("SEV1-1"),
    )
    request_message: str = Field(
        "This is a severity 1 ticket, which we work around the clock. Please name an authorized "
        "contact who is available around the clock (name and phone) and answers within {timeout}.",
        description="asks the customer for a 24×7 contact; `{timeout}`",
        json_schema_extra=serves("SEV1-1"),
    )
    lowered_message: str = Field(
        "No authorized contact was available within {timeout} of our request, so continuous "
        "work on this ticket is suspended and its severity was lowered to {severity}. Reply when "
        "a contact is available again.",
        description="told when the severity is lowered; `{timeout}`, `{severity}`",
        json_schema_extra=serves("SEV1-1"),
    )


_DAY = timedelta(hours=24)
"""What "1d" means when policy durations are compared with each other (calendar days)."""


# --- Closure ------------------------------------------------------------------------------------


class ResolutionReason(Section):
    """One allowed reason to mark a ticket resolved (CLOSE-2, SCOPE-2, INTAKE-6)."""

    code: str = Field(
        description="the reason's code, as the desk's resolution field or tag carries it"
    )
    label: str = Field(description="how agents and reports name the reason")
    explanation: str = Field("", description="told to the customer when this reason is used")
    unsupported_cause: bool = Field(False, description="a SCOPE-2 cause that support excludes")


DEFAULT_REASONS = (
    ResolutionReason(code="no_response", label="(a) no customer response despite repeated contact"),
    ResolutionReason(code="no_longer_needed", label="(b) the customer no longer needs it"),
    ResolutionReason(code="fixed_by_update", label="(c) fixed by a current patch or upgrade"),
    ResolutionReason(code="works_as_designed", label="(d) works as designed and documented"),
    ResolutionReason(
        code="feature_request",
        label="(e) feature request",
        explanation="This is a feature request: please file it in our knowledge base, where "
        "product management reviews requests.",
    ),
    ResolutionReason(
        code="out_of_scope",
        label="(f) out of scope: training, licensing, business question, education or services",
    ),
    ResolutionReason(code="not_material", label="(g) not material, will not be fixed now"),
    ResolutionReason(
        code="environment",
        label="environment below system requirements (waits for the customer, INTAKE-6)",
    ),
    *(
        ResolutionReason(
            code=code,
            label=label,
            unsupported_cause=True,
            explanation=f"Problems caused by {label} are not covered by technical support.",
        )
        for code, label in (
            ("added_features", "features or devices added to the product"),
            ("accident_misuse", "accident or misuse"),
            ("modification", "modification of the product"),
            ("inadequate_environment", "an inadequate installation environment"),
            ("no_test_environment", "a major upgrade without a prior test environment"),
            ("off_label_use", "use outside the product's documented purpose"),
            ("unapproved_environment", "an environment that is not approved"),
            ("release_not_applied", "not applying a release that already fixed the problem"),
        )
    ),
)


class ClosurePolicy(Section):
    """CLOSE-1..5: when tickets may be resolved, reminded, reopened and closed."""

    reasons: tuple[ResolutionReason, ...] = Field(
        DEFAULT_REASONS,
        description=(
            "the allowed resolution reasons; those with `unsupported_cause` are SCOPE-2's excluded"
            " causes"
        ),
        json_schema_extra=serves("CLOSE-2", "SCOPE-2"),
    )
    reminders: tuple[Span, ...] = Field(
        (parse_span("2d"), parse_span("5d")),
        description=(
            "reminder times after a ticket starts waiting on the customer; strictly increasing, "
            "all before `auto_resolve_after`"
        ),
        json_schema_extra=serves("CLOSE-3"),
    )
    auto_resolve_after: Span = Field(
        parse_span("7d"),
        description=(
            "silence after which a ticket waiting on the customer is resolved with "
            "`no_response_reason`"
        ),
        json_schema_extra=serves("CLOSE-3"),
    )
    silence_clock: str = Field(
        TWENTY_FOUR_SEVEN,
        description="calendar the reminder and silence days count on",
        json_schema_extra=serves("CLOSE-3"),
    )
    no_response_reason: str = Field(
        "no_response",
        description="the reason code auto-resolve uses; one of `reasons`",
        json_schema_extra=serves("CLOSE-2", "CLOSE-3"),
    )
    reminder_message: str = Field(
        "We are still waiting for your reply (reminder {count} of {total}). Without a reply "
        "this ticket will be resolved on {deadline}.",
        description="a reminder; `{count}`, `{total}`, `{deadline}`",
        json_schema_extra=serves("CLOSE-3"),
    )
    auto_resolve_message: str = Field(
        "We have not heard from you despite repeated reminders, so this ticket is now "
        "resolved. You can reopen it with a clarification within {reopen_window}.",
        description="told when the ticket is resolved for silence; `{reopen_window}`",
        json_schema_extra=serves("CLOSE-3"),
    )
    reopen_window: Span = Field(
        parse_span("7d"),
        description="how long after resolution a customer reply reopens the ticket",
        json_schema_extra=serves("CLOSE-4"),
    )
    acknowledgement_phrases: tuple[str, ...] = Field(
        (
            "thanks",
            "thank you",
            "thx",
            "ok",
            "danke",
            "vielen dank",
        ),
        description="replies that are only thanks and do not reopen a resolved ticket",
        json_schema_extra=serves("CLOSE-4"),
    )
    final_close_after: Span = Field(
        parse_span("7d"),
        description="quiet time after resolution after which a ticket is closed for good",
        json_schema_extra=serves("CLOSE-5"),
    )
    follow_up_message: str = Field(
        "This ticket was resolved more than {reopen_window} ago and is closed for good. "
        "We have opened a new ticket for your message that links this one.",
        description=(
            "told when a reply to a closed ticket opens a linked follow-up; `{reopen_window}`"
        ),
        json_schema_extra=serves("CLOSE-5"),
    )
    unresolved_note: str = Field(
        "This ticket was marked resolved without {problem}. Per the support policy it stays "
        "open until {requirement}.",
        description=(
            "internal note when a ticket is resolved without an allowed reason or before the "
            "customer was told the solution; `{problem}`, `{requirement}`"
        ),
        json_schema_extra=serves("CLOSE-1", "CLOSE-2"),
    )

    @model_validator(mode="after")
    def _consistent(self) -> ClosurePolicy:
        codes = [r.code for r in self.reasons]
        if self.no_response_reason not in codes:
            raise ValueError(
                f"no_response_reason {self.no_response_reason!r} is not one of the reasons"
            )
        offsets = [s.to_timedelta(_DAY) for s in self.reminders]
        if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
            raise ValueError("reminders must be strictly increasing")
        if offsets and offsets[-1] >= self.auto_resolve_after.to_timedelta(_DAY):
            raise ValueError("the last reminder must come before auto_resolve_after")
        return self

    def reason(self, code: str) -> ResolutionReason | None:
        """The resolution reason with this code, if the policy allows it."""
        return next((r for r in self.reasons if r.code == code), None)


# --- Severity levels and response ---------------------------------------------------------------


class SeverityLevel(Section):
    """SEV-1..SEV-4: what one severity means and the targets it runs on."""

    name: str = Field(description="the severity's name")
    definition: str = Field(description="what the severity means")
    first_response: Span = Field(
        description="first-response target", json_schema_extra=serves("RESP-1")
    )
    update_interval: Span = Field(
        description="interval between updates until a root cause or workaround is found",
        json_schema_extra=serves("RESP-2"),
    )
    clock: str = Field(
        description=f"'{TWENTY_FOUR_SEVEN}' or the name of a calendar",
        json_schema_extra=serves("HOURS-1"),
    )
    priority: Priority = Field(
        description=(
            "the desk priority of a ticket of this severity: `urgent`, `high`, `normal` or `low`"
        )
    )


class ResponsePolicy(Section):
    """RESP-1..3: first response and update targets per severity, warnings and breaches."""

    severities: dict[Severity, SeverityLevel] = Field(
        {
            Severity.CRITICAL: SeverityLevel(
                name="critical",
                definition="whole system down, agents offline or server stopped, critical "
                "production impact — highest priority, around the clock",
                first_response=parse_span("1h"),
                update_interval=parse_span("4h"),
                clock=TWENTY_FOUR_SEVEN,
                priority=Priority.URGENT,
            ),
            Severity.HIGH: SeverityLevel(
                name="high",
                definition="significant loss of function with major production impact, or system "
                "integrity at risk — high priority within business hours",
                first_response=parse_span("4h"),
                update_interval=parse_span("1d"),
                clock="business",
                priority=Priority.HIGH,
            ),
            Severity.MEDIUM: SeverityLevel(
                name="medium",
                definition="moderate loss of function, some production impact — priority within "
                "business hours",
                first_response=parse_span("8h"),
                update_interval=parse_span("2d"),
                clock="business",
                priority=Priority.NORMAL,
            ),
            Severity.LOW: SeverityLevel(
                name="low",
                definition="minor loss of function, or questions about integration, installation "
                "and configuration — within business hours",
                first_response=parse_span("24h"),
                update_interval=parse_span("5d"),
                clock="business",
                priority=Priority.LOW,
            ),
        },
        description="what each severity 1–4 means and its targets; all four are required",
        json_schema_extra=serves("SEV-1", "SEV-2", "SEV-3", "SEV-4"),
    )
    warn_at: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="share of the first-response target after which a warning is raised",
        json_schema_extra=serves("RESP-1"),
    )
    warning_tag: str = Field(
        "response-due-soon",
        description="tag on a ticket whose first response is due soon",
        json_schema_extra=serves("RESP-1"),
    )
    breach_tag: str = Field(
        "response-target-breached",
        description="tag on a ticket whose first-response target is breached",
        json_schema_extra=serves("RESP-1"),
    )
    update_overdue_tag: str = Field(
        "update-overdue",
        description="tag on a ticket whose update interval has passed without an update",
        json_schema_extra=serves("RESP-2"),
    )
    updates_stop_tags: tuple[str, ...] = Field(
        ("workaround-provided", "update-arrangement"),
        description="tags meaning a root cause/workaround was found or another arrangement made",
        json_schema_extra=serves("RESP-2"),
    )
    contact_unavailable_tag: str = Field(
        "contact-unavailable",
        description="tag an agent sets when the customer's contact is unavailable",
        json_schema_extra=serves("RESP-3"),
    )
    contact_unavailable_action: Literal["lower_severity", "slow_updates", "both"] = Field(
        "both",
        description=(
            "what the unavailable-contact tag does: `lower_severity`, `slow_updates` or `both`"
        ),
        json_schema_extra=serves("RESP-3"),
    )
    slow_update_factor: float = Field(
        2.0,
        ge=1,
        description="update interval multiplier while the contact is unavailable",
        json_schema_extra=serves("RESP-3"),
    )

    @field_validator("severities")
    @classmethod
    def _all_severities(cls, value: dict[Severity, SeverityLevel]) -> dict[Severity, SeverityLevel]:
        missing = sorted(set(Severity) - set(value))
        if missing:
            raise ValueError(f"every severity needs targets; missing {missing}")
        return value


# --- Escalation ---------------------------------------------------------------------------------


class EscalationPolicy(Section):
    """ESC-1..2: automatic escalation and escalation on the customer's request."""

    severity1_target: str = Field(
        "support-on-call",
        description=(
            "escalation target of every severity-1 ticket (the desk's `escalation` maps it)"
        ),
        json_schema_extra=serves("ESC-1"),
    )
    breach_target: str = Field(
        "support-leads",
        description="escalation target when a response target is breached",
        json_schema_extra=serves("ESC-1"),
    )
    customer_request_target: str = Field(
        "support-management",
        description="escalation target when the customer asks for escalation",
        json_schema_extra=serves("ESC-2"),
    )
    request_phrases: tuple[str, ...] = Field(
        (
            "please escalate",
            "escalate this",
            "request escalation",
            "speak to a manager",
            "talk to management",
            "bitte eskalieren",
            "eskalation",
        ),
        description="phrases in a customer reply that ask for escalation",
        json_schema_extra=serves("ESC-2"),
    )
    request_acknowledgement: str = Field(
        "Your request for escalation has been passed to support management, who will contact "
        "you about this ticket.",
        description="told to the customer who asked for escalation",
        json_schema_extra=serves("ESC-2"),
    )
    escalated_tag: str = Field(
        "escalated",
        description="tag on an escalated ticket",
        json_schema_extra=serves("ESC-1", "ESC-2"),
    )


# --- Customer obligations -----------------------------------------------------------------------


class Article(Section):
    """A knowledge-base article and the words that make it relevant (OBL-1)."""

    title: str = Field(description="the article's title")
    url: str = Field(description="the article's address")
    keywords: tuple[str, ...] = Field(
        description="words in a new ticket's subject or description that make the article relevant"
    )


class ObligationsPolicy(Section):
    """OBL-1..3: knowledge base first, current patches, one issue per ticket."""

    articles: tuple[Article, ...] = Field(
        (
            Article(
                title="Agents show offline after a server update",
                url="https://kb.example.com/articles/agents-offline",
                keywords=("offline", "agent", "check-in"),
            ),
            Article(
                title="Patch scans fail or report no patches",
                url="https://kb.example.com/articles/patch-scan",
                keywords=("patch", "scan"),
            ),
            Article(
                title="Remote control sessions do not connect",
                url="https://kb.example.com/articles/remote-control",
                keywords=("remote", "control", "session"),
            ),
        ),
        description="knowledge-base articles suggested on new tickets",
        json_schema_extra=serves("OBL-1"),
    )
    max_suggestions: int = Field(
        3,
        ge=0,
        description="most articles suggested on one ticket (0: none)",
        json_schema_extra=serves("OBL-1"),
    )
    suggestion_message: str = Field(
        "While we look into this, these knowledge-base articles may already help:\n{articles}",
        description="comment suggesting articles; `{articles}`",
        json_schema_extra=serves("OBL-1"),
    )
    patch_message: str = Field(
        "You are running version {version}; the current release is {current}. Please install "
        "current patches and updates promptly — many problems are already fixed there.",
        description="told when a ticket names an older version; `{version}`, `{current}`",
        json_schema_extra=serves("OBL-2", "VER-1"),
    )
    multiple_issue_phrases: tuple[str, ...] = Field(
        (
            "another issue",
            "another problem",
            "second issue",
            "second problem",
            "also a problem",
            "noch ein problem",
            "weiteres problem",
        ),
        description="phrases meaning a ticket describes more than one issue",
        json_schema_extra=serves("OBL-3"),
    )
    multiple_issue_note: str = Field(
        "This ticket may describe more than one issue. The policy asks for one issue per "
        "ticket: consider asking the customer to open a separate ticket for each.",
        description="internal note when such a phrase is found",
        json_schema_extra=serves("OBL-3"),
    )


# --- Currency and end of life -------------------------------------------------------------------


class Release(Section):
    """A released version of the main application and when it became available (VER-1)."""

    version: str = Field(description="the version number, as the ticket's `version` item gives it")
    released: date = Field(description="the release date")


class EndOfLife(Section):
    """A product or module withdrawn from support, announced ahead (VER-2)."""

    module: str = Field(description="the module or product withdrawn from support")
    ends: date = Field(description="the last day of support")


class VersionsPolicy(Section):
    """VER-1..2: supported versions and end of life."""

    releases: tuple[Release, ...] = Field(
        (
            Release(version="9.5", released=date(2024, 6, 3)),
            Release(version="10.0", released=date(2025, 6, 2)),
            Release(version="10.1", released=date(2026, 5, 4)),
        ),
        description=(
            "the releases of the main application; support windows are computed from their dates"
        ),
        json_schema_extra=serves("VER-1"),
    )
    previous_supported_for: Span = Field(
        parse_span("365d"),
        description="how long a release stays supported after its successor is released",
        json_schema_extra=serves("VER-1"),
    )
    unsupported_action: Literal["flag", "resolve"] = Field(
        "flag",
        description="on an unsupported version: `flag`, or `resolve` with reason (c)",
        json_schema_extra=serves("VER-1"),
    )
    unsupported_message: str = Field(
        "Version {version} is no longer supported. Supported versions are {supported}; please "
        "upgrade — the problem may already be fixed there.",
        description="told when the version is not supported; `{version}`, `{supported}`",
        json_schema_extra=serves("VER-1"),
    )
    unsupported_tag: str = Field(
        "unsupported-version",
        description="tag on a ticket naming an unsupported version",
        json_schema_extra=serves("VER-1"),
    )
    end_of_life: tuple[EndOfLife, ...] = Field(
        (),
        description="modules or products withdrawn from support and when",
        json_schema_extra=serves("VER-2"),
    )
    announce_ahead: Span = Field(
        parse_span("365d"),
        description=(
            "how long before the end of support it is announced on tickets about the module"
        ),
        json_schema_extra=serves("VER-2"),
    )
    eol_announcement: str = Field(
        "Please note: support for {module} ends on {ends}. Plan your migration before then.",
        description="the announcement; `{module}`, `{ends}`",
        json_schema_extra=serves("VER-2"),
    )
    eol_message: str = Field(
        "Support for {module} ended on {ends}, so this request is outside the scope of "
        "technical support.",
        description="told on a ticket about a module whose support has ended; `{module}`, `{ends}`",
        json_schema_extra=serves("VER-2"),
    )

    @field_validator("releases")
    @classmethod
    def _ordered(cls, value: tuple[Release, ...]) -> tuple[Release, ...]:
        return tuple(sorted(value, key=lambda r: r.released))


# --- Exclusions ---------------------------------------------------------------------------------


class OutOfScopeCategory(Section):
    """A kind of request that is not technical support and where it goes instead (SCOPE-1)."""

    name: str = Field(description="the category's name, as `category_field` may give it")
    keywords: tuple[str, ...] = Field(description="phrases that put a ticket in this category")
    route_to: str = Field(description="escalation target of the team that takes such requests")


class ScopePolicy(Section):
    """SCOPE-1..2: requests that are not technical support."""

    categories: tuple[OutOfScopeCategory, ...] = Field(
        (
            OutOfScopeCategory(
                name="implementation",
                keywords=("implementation project", "implement for us", "set up for us"),
                route_to="consulting",
            ),
            OutOfScopeCategory(
                name="training",
                keywords=("training", "schulung", "teach us", "course"),
                route_to="education",
            ),
            OutOfScopeCategory(
                name="consulting",
                keywords=("consulting", "best practice review", "beratung"),
                route_to="consulting",
            ),
            OutOfScopeCategory(
                name="development",
                keywords=("custom development", "write a script for us", "develop a custom"),
                route_to="consulting",
            ),
            OutOfScopeCategory(
                name="hosting",
                keywords=("hosting", "host our server"),
                route_to="consulting",
            ),
        ),
        description="kinds of request that are not technical support",
        json_schema_extra=serves("SCOPE-1"),
    )
    category_field: str = Field(
        "request_type",
        description="ticket field that may name the category directly",
        json_schema_extra=serves("SCOPE-1"),
    )
    action: Literal["route", "flag"] = Field(
        "route",
        description=(
            "`route`: escalate to the category's team and resolve with reason (f); `flag`: tag only"
        ),
        json_schema_extra=serves("SCOPE-1"),
    )
    routed_message: str = Field(
        "Your request concerns {category}, which is not part of technical support. We have "
        "passed it to our {route_to} team, who will contact you.",
        description="told when a request is routed; `{category}`, `{route_to}`",
        json_schema_extra=serves("SCOPE-1"),
    )
    out_of_scope_tag: str = Field(
        "out-of-scope",
        description="tag on an out-of-scope request",
        json_schema_extra=serves("SCOPE-1"),
    )


# --- Support plans and organizations --------------------------------------------------------------

BASE_LAYER = "base"
"""How explanations name the policy's own targets (the layer plans and organizations override)."""


class SeverityTargets(Section):
    """What a plan or an organization may override for one severity (RESP-1, RESP-2)."""

    first_response: Span | None = Field(
        None,
        description="first-response target for this severity",
        json_schema_extra=serves("RESP-1"),
    )
    update_interval: Span | None = Field(
        None, description="update interval for this severity", json_schema_extra=serves("RESP-2")
    )


class TargetLayer(Section):
    """Overrides of the response targets (RESP-1, RESP-2, HOURS-1, SEV-1): a support plan or an
    organization. Whatever a layer leaves unset comes from the layer below it."""

    description: str = Field("", description="for people", json_schema_extra=serves())
    calendar: str | None = Field(
        None,
        description="calendar every severity off the 24×7 clock runs on (HOURS-1)",
        json_schema_extra=serves("HOURS-1"),
    )
    around_the_clock: tuple[Severity, ...] | None = Field(
        None,
        description="the severities on the 24×7 clock; replaces the list below (SEV-1)",
        json_schema_extra=serves("SEV-1", "HOURS-1"),
    )
    severities: dict[Severity, SeverityTargets] = Field(
        default_factory=dict,
        description="per-severity target overrides",
        json_schema_extra=serves("RESP-1", "RESP-2"),
    )


class SupportPlan(TargetLayer):
    """A named support plan (standard, premium 24×7, enterprise …) and who is on it."""

    organizations: tuple[str, ...] = Field((), description="organization ids or names on this plan")


class OrganizationPolicy(TargetLayer):
    """One organization: its plan and its own overrides, the top layer of its targets."""

    plan: str | None = Field(None, description="the organization's plan, a name under `plans`")


@dataclass(frozen=True, slots=True)
class EffectiveLevel:
    """One severity's targets after all layers, and which layer set each value."""

    level: SeverityLevel
    first_response_from: str
    update_interval_from: str
    clock_from: str


@dataclass(frozen=True)
class Targets:
    """A ticket's effective response targets: base → plan → organization, later layers win.

    ``plan_source`` says how the plan was chosen (``field plan``, ``organizations.acme.plan``,
    ``plans.premium.organizations``); ``notes`` say what was ignored and why.
    """

    plan: str | None
    organization: str | None
    plan_source: str
    levels: Mapping[Severity, EffectiveLevel]
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str | None, str | None]:
        """What identifies these targets: the plan and the organization override in use."""
        return (self.plan, self.organization)

    def level(self, severity: Severity | None) -> SeverityLevel:
        """The effective targets of a severity (severity 4's while none is known)."""
        return self.levels[severity or Severity.LOW].level

    def layers(self) -> str:
        """The layers in resolution order, e.g. ``base → plan premium → organization acme``."""
        names = [BASE_LAYER]
        if self.plan is not None:
            names.append(f"plan {self.plan}")
        if self.organization is not None:
            names.append(f"organization {self.organization}")
        return " → ".join(names)

    def describe_plan(self) -> str:
        """The plan in use and how it was chosen, in words."""
        if self.plan is None:
            return "no support plan (the base targets)"
        return f"plan {self.plan!r} ({self.plan_source})"

    def lines(self, severities: Sequence[Severity] | None = None) -> list[str]:
        """One line per severity: each value with the layer that set it."""
        out = [f"targets: {self.describe_plan()}; layers {self.layers()}"]
        out += [f"note: {n}" for n in self.notes]
        for sev in severities if severities is not None else sorted(self.levels):
            eff = self.levels[sev]
            out.append(
                f"severity {int(sev)} ({eff.level.name}): first_response "
                f"{eff.level.first_response} [{eff.first_response_from}], update_interval "
                f"{eff.level.update_interval} [{eff.update_interval_from}], clock "
                f"{eff.level.clock} [{eff.clock_from}]"
            )
        return out


def _resolve(
    base: ResponsePolicy,
    layers: Sequence[tuple[str, TargetLayer]],
) -> dict[Severity, EffectiveLevel]:
    """Apply ``layers`` in order over the base severities (see :meth:`Policy.resolve`)."""
    values: dict[Severity, dict[str, tuple[Any, str]]] = {
        sev: {
            "first_response": (lvl.first_response, BASE_LAYER),
            "update_interval": (lvl.update_interval, BASE_LAYER),
            "clock": (lvl.clock, BASE_LAYER),
        }
        for sev, lvl in base.severities.items()
    }
    business: tuple[str, str] | None = None
    for sev in (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL):
        lvl = base.severities.get(sev)
        if lvl is not None and lvl.clock != TWENTY_FOUR_SEVEN:
            business = (lvl.clock, BASE_LAYER)
            break
    for label, layer in layers:
        if layer.calendar is not None:
            business = (layer.calendar, label)
            for entry in values.values():
                if entry["clock"][0] != TWENTY_FOUR_SEVEN:
                    entry["clock"] = business
        if layer.around_the_clock is not None:
            for sev, entry in values.items():
                if sev in layer.around_the_clock:
                    entry["clock"] = (TWENTY_FOUR_SEVEN, label)
                elif entry["clock"][0] == TWENTY_FOUR_SEVEN and business is not None:
                    entry["clock"] = (business[0], label)
        for sev, override in layer.severities.items():
            entry = values[sev]
            if override.first_response is not None:
                entry["first_response"] = (override.first_response, label)
            if override.update_interval is not None:
                entry["update_interval"] = (override.update_interval, label)
    resolved: dict[Severity, EffectiveLevel] = {}
    for sev, entry in values.items():
        level = base.severities[sev].model_copy(
            update={name: value for name, (value, _) in entry.items()}
        )
        resolved[sev] = EffectiveLevel(
            level=level,
            first_response_from=entry["first_response"][1],
            update_interval_from=entry["update_interval"][1],
            clock_from=entry["clock"][1],
        )
    return resolved


# --- The whole policy ---------------------------------------------------------------------------


def _calendar_kind(value: Any) -> str:
    """``[union]`` for a follow-the-sun calendar (it has ``regions``), else ``[weekly]``; the
    brackets keep the tag out of the key paths that error messages show."""
    if isinstance(value, Mapping):
        return "[union]" if "regions" in value else "[weekly]"
    return "[union]" if isinstance(value, UnionCalendarConfig) else "[weekly]"


AnyCalendarConfig = Annotated[
    Annotated[CalendarConfig, Tag("[weekly]")] | Annotated[UnionCalendarConfig, Tag("[union]")],
    Discriminator(_calendar_kind),
]
"""A calendar in the policy file: weekly hours (or 24×7), or a follow-the-sun union."""


class Policy(Section):
    """The effective support policy: the built-in preset merged with a policy file."""

    name: str = Field(
        "default",
        description="the policy's name, shown by `check` and `policy check`",
        json_schema_extra=serves(),
    )
    calendars: dict[str, AnyCalendarConfig] = Field(
        {"business": CalendarConfig()},
        description="business-hours calendars by name; `24x7` is built in and cannot be redefined",
        json_schema_extra=serves("HOURS-1"),
    )
    intake: IntakePolicy = IntakePolicy()
    contacts: ContactsPolicy = ContactsPolicy()
    continuity: ContinuityPolicy = ContinuityPolicy()
    closure: ClosurePolicy = ClosurePolicy()
    response: ResponsePolicy = ResponsePolicy()
    escalation: EscalationPolicy = EscalationPolicy()
    obligations: ObligationsPolicy = ObligationsPolicy()
    versions: VersionsPolicy = VersionsPolicy()
    scope: ScopePolicy = ScopePolicy()
    plans: dict[str, SupportPlan] = Field(
        default_factory=dict,
        description="support plans by name: overrides of the response targets",
        json_schema_extra=serves("RESP-1", "RESP-2", "HOURS-1", "SEV-1"),
    )
    organizations: dict[str, OrganizationPolicy] = Field(
        default_factory=dict,
        description="organizations by id or name: their plan and their own overrides",
        json_schema_extra=serves("RESP-1", "RESP-2", "HOURS-1", "SEV-1"),
    )
    plan_field: str = Field(
        "plan",
        min_length=1,
        description="ticket field a connector maps a plan name into",
        json_schema_extra=serves("RESP-1", "RESP-2", "HOURS-1"),
    )

    @model_validator(mode="after")
    def _clocks_exist(self) -> Policy:
        if TWENTY_FOUR_SEVEN in self.calendars:
            raise ValueError(
                f"calendars: {TWENTY_FOUR_SEVEN!r} is built in and cannot be redefined"
            )
        known = {TWENTY_FOUR_SEVEN, *self.calendars}
        for sev, level in self.response.severities.items():
            if level.clock not in known:
                raise ValueError(
                    f"response.severities.{int(sev)}.clock: unknown calendar {level.clock!r} "
                    f"(known: {', '.join(sorted(known))})"
                )
        if self.closure.silence_clock not in known:
            raise ValueError(
                f"closure.silence_clock: unknown calendar {self.closure.silence_clock!r}"
            )
        return self

    @model_validator(mode="after")
    def _plans_consistent(self) -> Policy:
        """Every plan and organization names known calendars and plans; no organization is
        on two plans; plan names differ in more than letter case (a field value matches any)."""
        known = {TWENTY_FOUR_SEVEN, *self.calendars}
        folded: dict[str, str] = {}
        for name in self.plans:
            other = folded.setdefault(name.strip().casefold(), name)
            if other != name:
                raise ValueError(f"plans: {other!r} and {name!r} differ only in letter case")
        layers: list[tuple[str, TargetLayer]] = [(f"plans.{n}", p) for n, p in self.plans.items()]
        layers += [(f"organizations.{n}", o) for n, o in self.organizations.items()]
        for where, layer in layers:
            if layer.calendar is not None and layer.calendar not in known:
                raise ValueError(
                    f"{where}.calendar: unknown calendar {layer.calendar!r} "
                    f"(known: {', '.join(sorted(known))})"
                )
        member: dict[str, str] = {}
        for name, plan in self.plans.items():
            for org in plan.organizations:
                first = member.setdefault(org, name)
                if first != name:
                    raise ValueError(
                        f"plans.{name}.organizations: organization {org!r} is in two plans "
                        f"({first!r} and {name!r})"
                    )
        for org, entry in self.organizations.items():
            if entry.plan is None:
                continue
            if entry.plan not in self.plans:
                raise ValueError(
                    f"organizations.{org}.plan: unknown plan {entry.plan!r} "
                    f"(known: {', '.join(sorted(self.plans)) or 'no plans defined'})"
                )
            listed = member.get(org)
            if listed is not None and listed != entry.plan:
                raise ValueError(
                    f"organizations.{org}.plan: organization {org!r} is in two plans "
                    f"({entry.plan!r} here, {listed!r} in plans.{listed}.organizations)"
                )
        return self

    # -- support plans: base → plan → organization (RESP-1, RESP-2, HOURS-1) ---------------------

    @property
    def has_layers(self) -> bool:
        """Whether any plan or organization override exists (else every ticket gets the base)."""
        return bool(self.plans or self.organizations)

    def resolve(self, plan: str | None, organization: str | None) -> dict[Severity, EffectiveLevel]:
        """Every severity's targets for a plan and an organization override (names as in the
        file; ``None`` or an unknown name: that layer is skipped). Deterministic: the base,
        then the plan, then the organization; within a layer ``calendar`` moves every severity
        off the 24×7 clock to it, then ``around_the_clock`` puts exactly the listed severities
        on the 24×7 clock (one taken off it runs on the nearest layer's calendar, else on the
        base's business calendar: the clock of the lowest severity not on 24×7), then the
        per-severity targets apply. Computed once per combination."""
        key = (plan if plan in self.plans else None, organization)
        if organization is not None and organization not in self.organizations:
            key = (key[0], None)
        cached = self._resolved.get(key)
        if cached is None:
            layers: list[tuple[str, TargetLayer]] = []
            if key[0] is not None:
                layers.append((f"plan {key[0]}", self.plans[key[0]]))
            if key[1] is not None:
                layers.append((f"organization {key[1]}", self.organizations[key[1]]))
            cached = self._resolved[key] = _resolve(self.response, layers)
        return cached

    @cached_property
    def _resolved(self) -> dict[tuple[str | None, str | None], dict[Severity, EffectiveLevel]]:
        return {}

    @cached_property
    def _plan_names(self) -> dict[str, str]:
        return {name.strip().casefold(): name for name in self.plans}

    @cached_property
    def _members(self) -> dict[str, str]:
        return {org: name for name, plan in self.plans.items() for org in plan.organizations}

    def plan_named(self, value: str) -> str | None:
        """The plan a field value names (letter case and surrounding spaces ignored)."""
        return self._plan_names.get(value.strip().casefold())

    def targets(self, organization: Organization | str | None, plan_value: str = "") -> Targets:
        """The effective targets for an organization (by id, else by name, as the policy file
        keys it) and a plan named in the ticket's ``plan_field`` (``plan_value``).

        The plan comes from, first to last: the field (an unknown value is ignored with a
        note), ``organizations.<org>.plan``, the plan whose ``organizations`` list the
        organization; else there is none."""
        if isinstance(organization, Organization):
            names = [n for n in (organization.id, organization.name) if n]
        else:
            names = [organization] if organization else []
        org_key = next((n for n in names if n in self.organizations), None)
        notes: list[str] = []
        plan: str | None = None
        source = ""
        if plan_value.strip():
            plan = self.plan_named(plan_value)
            if plan is not None:
                source = f"field {self.plan_field}"
            else:
                notes.append(
                    f"field {self.plan_field} names unknown plan {plan_value.strip()!r}; ignored"
                )
        if plan is None and org_key is not None and self.organizations[org_key].plan:
            plan = self.organizations[org_key].plan
            source = f"organizations.{org_key}.plan"
        if plan is None:
            listed = next((n for n in names if n in self._members), None)
            if listed is not None:
                plan = self._members[listed]
                source = f"plans.{plan}.organizations"
        return Targets(
            plan=plan,
            organization=org_key,
            plan_source=source,
            levels=self.resolve(plan, org_key),
            notes=tuple(notes),
        )

    def targets_for(self, ticket: Ticket) -> Targets:
        """The ticket's effective targets: its organization and its plan field."""
        if not self.has_layers:
            return self._base_targets
        return self.targets(ticket.organization, ticket.field(self.plan_field))

    @cached_property
    def _base_targets(self) -> Targets:
        return Targets(
            plan=None,
            organization=None,
            plan_source="",
            levels=self.resolve(None, None),
        )

    @property
    def timezone(self) -> str:
        """The support organisation's home time zone: the first calendar's (dates such as
        certification expiry and release anniversaries are judged there)."""
        for calendar in self.calendars.values():
            return calendar.timezone
        return "UTC"

    def clock(self, name: str) -> BusinessCalendar:
        """The calendar with this name (``24x7`` is built in); each is built once and reused."""
        if name == TWENTY_FOUR_SEVEN:
            return _ALWAYS_OPEN
        return self.calendars[name].build()

    def calendar_for(self, severity: Severity | None) -> BusinessCalendar:
        """The clock a severity's targets run on; an unknown severity uses severity 4's."""
        return self.clock(self.response.severities[severity or Severity.LOW].clock)


_ALWAYS_OPEN = AlwaysOpen()


def organization_report(policy: Policy, organization: str) -> str:
    """``policy show --org``: an organization's effective response targets as TOML, each value
    commented with the layer that set it (base, plan, organization), and the calendars used."""
    targets = policy.targets(organization)
    known = organization in policy.organizations or organization in policy._members
    lines = [f"# effective targets for organization {organization!r}: {targets.describe_plan()}"]
    if not known:
        lines.append(f"# {organization!r} is not named in the policy file: the base targets apply")
    lines.append(f"# layers, later wins: {targets.layers()}")
    clocks: dict[str, list[int]] = {}
    for sev in sorted(targets.levels):
        eff = targets.levels[sev]
        clocks.setdefault(eff.level.clock, []).append(int(sev))
        lines += [
            "",
            f"[response.severities.{int(sev)}]",
            f'name = "{eff.level.name}"',
            f'first_response = "{eff.level.first_response}"  # {eff.first_response_from}',
            f'update_interval = "{eff.level.update_interval}"  # {eff.update_interval_from}',
            f'clock = "{eff.level.clock}"  # {eff.clock_from}',
        ]
    lines.append("")
    for name, sevs in clocks.items():
        calendar = policy.clock(name)
        used = ", ".join(str(n) for n in sevs)
        day = int(calendar.day_length.total_seconds()) // 60
        length = f"{day // 60}h" + (f"{day % 60}m" if day % 60 else "")
        lines.append(f"# calendar {name!r} (severities {used}): {calendar.name}; 1d = {length}")
    return "\n".join(lines) + "\n"


# --- Loading ------------------------------------------------------------------------------------


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file, the key and the problem."""


def default_policy() -> Policy:
    """The built-in preset: every rule of POLICY.md with its bold defaults."""
    return _DEFAULT


_DEFAULT = Policy()


WHOLE_TABLES = frozenset({"hours"})
"""Tables that replace the preset's instead of merging: a calendar's weekly ``hours`` describe
the whole week (days not listed are closed)."""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: tables merge key by key (except :data:`WHOLE_TABLES`),
    everything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if (
            isinstance(value, Mapping)
            and isinstance(merged.get(key), Mapping)
            and key not in WHOLE_TABLES
        ):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def policy_data(policy: Policy) -> dict[str, Any]:
    """The policy as plain TOML-ready data (durations as text, dates as dates)."""
    data: dict[str, Any] = _restore_dates(policy.model_dump(mode="json", exclude_none=True))
    return data


def _restore_dates(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _restore_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_dates(v) for v in value]
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    return value


def policy_from_data(data: Mapping[str, Any], source: str = "<policy>") -> Policy:
    """Validate policy data merged over the default preset; errors name the key path."""
    merged = deep_merge(policy_data(_DEFAULT), data)
    try:
        return Policy.model_validate(merged)
    except ValidationError as exc:
        raise PolicyError(format_validation_error(exc, source)) from None


def load_policy(path: Path | None) -> Policy:
    """Read a TOML policy file (``None``: the default preset)."""
    if path is None:
        return _DEFAULT
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None
    return policy_from_data(data, str(path))


def _clean_loc(loc: tuple[int | str, ...]) -> str:
    """A key path without pydantic's schema steps (``chain[...]``, ``function-...``)."""
    parts = [str(p) for p in loc if not ("[" in str(p) or str(p).startswith("function-"))]
    return ".".join(parts)


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``source: key.path: what is wrong``.

    Where a value could be given in several forms (a duration as text or as an object), only
    the explanation for the form the file used is kept.
    """
    errors = exc.errors()
    locs = [_clean_loc(e["loc"]) for e in errors]
    lines = []
    for error, loc in zip(errors, locs, strict=True):
        if error["type"] == "is_instance_of" and locs.count(loc) > 1:
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        given = error.get("input")
        hint = ""
        if error["type"] == "extra_forbidden":
            message = "unknown key (not part of the file format)"
        elif (
            given is not None and not isinstance(given, dict | list) and repr(given) not in message
        ):
            hint = f" (got {given!r})"
        lines.append(f"  {loc or '(top level)'}: {message}{hint}")
    return "\n".join([f"{source}: {len(lines)} problem(s) in the policy", *lines])
