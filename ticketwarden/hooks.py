"""The whole plugin contract of ticketwarden: hook specifications and markers, nothing else.

Plugins — the built-in policy rules and connectors as much as third-party ones — are modules or
objects whose functions carry :data:`hookimpl` and are registered through the entry-point group
``ticketwarden``. An implementation may accept *fewer* arguments than its spec names (pluggy
passes only what it asks for), which is how these specs can grow without breaking plugins.
Hook contracts change only by adding arguments; each change is noted in the hook's docstring.

Lifecycle hooks (``on_*``) are synchronous and pure: they read the ticket, the change and
``ctx`` (policy, injected clock ``ctx.now``, roster, the ticket's stored policy state) and return
actions (:mod:`ticketwarden.core.actions`); they never read the wall clock and never do I/O.
pluggy collects the results of every implementation; the engine flattens, merges,
de-duplicates and explains them. Returning ``None`` or an empty list means "nothing to do".

Paths: the *webhook path* is the sidecar receiving a helpdesk webhook; the *sync path* is the
scheduled job catching up on changes and firing due timers. Both call the same hooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ticketwarden.core.actions import BaseAction
    from ticketwarden.core.context import Due, RuleContext
    from ticketwarden.core.model import Change, RosterChange, Ticket

PROJECT = "ticketwarden"
"""The pluggy project name and the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def on_ticket_created(ticket: Ticket, ctx: RuleContext) -> Sequence[BaseAction] | None:
    """A ticket appeared in a helpdesk.

    Fires on both paths: a creation webhook, or sync finding a ticket it has never evaluated.
    It fires once per ticket (the engine's state remembers it ran).

    :param ticket: the new ticket, normalized.
    :param ctx: policy, ``now``, desk, roster and the ticket's (fresh) policy state.
    :returns: the actions this plugin asks for, or ``None``. Results of all plugins are
        collected; the engine merges them (identical effects once, status conflicts settled by
        precedence, actions whose ``unless`` kinds are also asked for dropped).
    """


@hookspec
def on_ticket_updated(
    ticket: Ticket, change: Change, ctx: RuleContext
) -> Sequence[BaseAction] | None:
    """An existing ticket changed.

    Fires on both paths for each change a connector reports: a customer reply (also to a
    resolved or closed ticket — ``change.previous_status`` tells), an agent reply or note, a
    status or field change, an escalation request, an agent-triggered policy action.

    :param ticket: the ticket *after* the change.
    :param change: what changed, who did it and when.
    :param ctx: policy, ``now``, desk, roster and the ticket's policy state.
    :returns: actions or ``None``; all plugins' results are collected and merged.
    """


@hookspec
def on_resolve(ticket: Ticket, ctx: RuleContext) -> Sequence[BaseAction] | None:
    """A ticket was marked resolved by an agent (or by a rule, seen again on the next read).

    Fires on both paths when a ticket's status becomes resolved. ``ticket.resolution_reason``
    holds the reason the agent chose, if the desk maps one.

    :param ticket: the resolved ticket.
    :param ctx: policy, ``now``, desk, roster and the ticket's policy state.
    :returns: actions or ``None``; all plugins' results are collected and merged.
    """


@hookspec
def on_stale(ticket: Ticket, ctx: RuleContext) -> Sequence[BaseAction] | None:
    """A timer on the ticket may be due: ``ctx.now`` has reached the ticket's next due time.

    Fires on the sync path (and the sidecar's scheduler) for tickets whose stored next-due time
    has passed. Several timers may be due at once after a long pause; each plugin checks its own
    timers against ``ctx.now`` and must not act early.

    :param ticket: the ticket as the helpdesk has it now.
    :param ctx: policy, ``now``, desk, roster and the ticket's policy state.
    :returns: actions or ``None``; all plugins' results are collected and merged.
    """


@hookspec
def next_due(ticket: Ticket, ctx: RuleContext) -> Sequence[Due] | Due | None:
    """When does this plugin next want ``on_stale`` for this ticket?

    Fires on both paths after every evaluation, on the ticket and state as they will be once
    the evaluation's actions are applied, so a scheduler can ask "when is this ticket next due?"
    and ``ticketwarden explain`` can say what would fire when.

    :param ticket: the ticket after this evaluation's actions.
    :param ctx: the context with the updated state.
    :returns: one :class:`~ticketwarden.core.context.Due`, several, or ``None`` when no timer of
        this plugin runs. The engine keeps the earliest as the ticket's next due time.
    """


@hookspec
def on_roster_changed(
    changes: Sequence[RosterChange], ctx: RuleContext
) -> Sequence[BaseAction] | None:
    """The authorized-contact roster differs from the copy seen last time (AUTH-2).

    Fires on the sync path when the roster read from the helpdesk or the roster file changes.
    ``ctx`` has no ticket state here (an empty state) and actions apply to no ticket, so only
    ``record`` actions are meaningful.

    :param changes: every contact added, removed or updated, in a stable order.
    :param ctx: policy, ``now``, desk and the *new* roster.
    :returns: actions (``record``) or ``None``; all plugins' results are collected.
    """


@hookspec
def register_connectors() -> Mapping[str, type[Any]] | None:
    """Name the helpdesk connector classes this plugin provides.

    Fires once, when the plugin manager is asked for connectors (configuration loading, the
    ``plugins`` and ``emulate`` commands). The connector contract itself is
    :mod:`ticketwarden.core.connector`.

    :returns: a mapping of connector name (as used in ``ticketwarden.toml``) to connector class,
        or ``None``. Results of all plugins are combined; a name claimed twice is an error that
        names both plugins.
    """
