"""Currency and end of life — "Aktualität und Endphase": VER-1 and VER-2.

The current version is supported, and each earlier one until a year (configurable) after its
successor became available; tickets on older versions are answered with the upgrade
requirement. Products withdrawn from support are announced ahead and out of scope after their
end date.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta

from ticketwarden.core.actions import AddComment, AddTags, BaseAction, Resolve
from ticketwarden.core.context import RuleContext
from ticketwarden.core.model import Change, Ticket
from ticketwarden.core.policy import Release, VersionsPolicy
from ticketwarden.core.rules import render
from ticketwarden.core.rules.contacts import local_today
from ticketwarden.hooks import hookimpl

RULE_IDS = (
    "VER-1",
    "VER-2",
)
"""The policy rules this plugin enforces (policy tests reject rule ids no plugin declares)."""

_PARTS = re.compile(r"\d+")


def version_parts(text: str) -> tuple[int, ...]:
    """The numeric components of a version as written by customers ("v10.0.3 build 7" → 10, 0,
    3, 7); empty when there are none."""
    return tuple(int(p) for p in _PARTS.findall(text))


def release_of(version: str, releases: Sequence[Release]) -> Release | None:
    """The release a reported version belongs to: the longest release version that is a prefix
    of it, component by component ("10.0.3" belongs to "10.0", not to "10")."""
    parts = version_parts(version)
    best: Release | None = None
    for release in releases:
        own = version_parts(release.version)
        if (
            own
            and parts[: len(own)] == own
            and (best is None or len(own) > len(version_parts(best.version)))
        ):
            best = release
    return best


def support_ends(release: Release, policy: VersionsPolicy) -> date | None:
    """VER-1: the last day a release is supported (``None``: it is the current release)."""
    releases = list(policy.releases)
    index = releases.index(release)
    if index == len(releases) - 1:
        return None
    successor = releases[index + 1]
    days = policy.previous_supported_for.to_timedelta(timedelta(days=1))
    return successor.released + days - timedelta(days=1)


def supported_versions(policy: VersionsPolicy, today: date) -> list[str]:
    """VER-1: the versions supported on ``today``, oldest first."""
    return [
        r.version
        for r in policy.releases
        if r.released <= today and ((end := support_ends(r, policy)) is None or today <= end)
    ]


def require_supported_version(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """VER-1: a ticket on a version past its support window is answered with the upgrade
    requirement — flagged, or resolved with reason (c) fixed by a current patch or upgrade."""
    versions = ctx.policy.versions
    reported = ticket.field("version")
    release = release_of(reported, versions.releases) if reported else None
    if release is None:
        return []
    today = local_today(ctx)
    end = support_ends(release, versions)
    if end is None or today <= end:
        return []
    reason = f"version {reported} ({release.version}) left support on {end.isoformat()}"
    actions: list[BaseAction] = [
        AddTags(rule_id="VER-1", reason=reason, tags=frozenset({versions.unsupported_tag})),
        AddComment(
            rule_id="VER-1",
            reason=reason,
            body=render(
                versions.unsupported_message,
                version=reported,
                supported=", ".join(supported_versions(versions, today)) or "none",
                number=ticket.number,
            ),
            occasion=f"version:{reported}",
        ),
    ]
    if versions.unsupported_action == "resolve":
        actions.append(Resolve(rule_id="VER-1", reason=reason, resolution="fixed_by_update"))
    return actions


def enforce_end_of_life(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """VER-2: tickets for a product or module after its end-of-support date are out of scope
    (resolved with reason (f)); within the announcement period the customer is told the date."""
    versions = ctx.policy.versions
    module = ticket.field("module").casefold()
    today = local_today(ctx)
    for eol in versions.end_of_life:
        if eol.module.casefold() != module:
            continue
        values = {"module": eol.module, "ends": eol.ends.isoformat(), "number": ticket.number}
        if today > eol.ends:
            reason = f"support for {eol.module} ended on {eol.ends.isoformat()}"
            return [
                AddTags(
                    rule_id="VER-2",
                    reason=reason,
                    tags=frozenset({ctx.policy.scope.out_of_scope_tag}),
                ),
                AddComment(
                    rule_id="VER-2", reason=reason, body=render(versions.eol_message, **values)
                ),
                Resolve(rule_id="VER-2", reason=reason, resolution="out_of_scope"),
            ]
        ahead = versions.announce_ahead.to_timedelta(timedelta(days=1))
        if today >= eol.ends - ahead:
            return [
                AddComment(
                    rule_id="VER-2",
                    reason=f"end of support for {eol.module} announced ({eol.ends.isoformat()})",
                    body=render(versions.eol_announcement, **values),
                    occasion=f"eol:{eol.module}:{eol.ends.isoformat()}",
                    unless=frozenset({"resolve", "close"}),
                )
            ]
    return []


@hookimpl
def on_ticket_created(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """VER-1 and VER-2 on a new ticket."""
    return require_supported_version(ticket, ctx) + enforce_end_of_life(ticket, ctx)


@hookimpl
def on_ticket_updated(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """VER-1 and VER-2 when the version or module is supplied later (e.g. after an INTAKE-2
    hold)."""
    actions: list[BaseAction] = []
    if "version" in change.fields_changed:
        actions += require_supported_version(ticket, ctx)
    if "module" in change.fields_changed:
        actions += enforce_end_of_life(ticket, ctx)
    return actions
