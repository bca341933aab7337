"""Customer obligations — "Pflichten des Kunden": OBL-1 … OBL-3.

Software can only help customers meet their obligations: it suggests knowledge-base articles
on a new ticket, reminds customers on an older (still supported) release to install current
patches, and points agents at tickets that look like several issues in one.
"""

from __future__ import annotations

from ticketwarden.core.actions import AddComment, AddTags, BaseAction
from ticketwarden.core.context import RuleContext
from ticketwarden.core.model import Ticket
from ticketwarden.core.policy import Article
from ticketwarden.core.rules import has_phrase, normalize, render
from ticketwarden.core.rules.contacts import local_today
from ticketwarden.core.rules.currency import release_of, support_ends
from ticketwarden.hooks import hookimpl

RULE_IDS = (
    "OBL-1",
    "OBL-2",
    "OBL-3",
)
"""The policy rules this plugin enforces (policy tests reject rule ids no plugin declares)."""

MULTIPLE_ISSUES_TAG = "multiple-issues"


def matching_articles(ticket: Ticket, articles: tuple[Article, ...], limit: int) -> list[Article]:
    """OBL-1: articles ranked by how many of their keywords the subject and description contain
    (ties keep the policy's order); articles matching no keyword are never suggested."""
    text = normalize(f"{ticket.subject} {ticket.description}")
    scored = [(sum(normalize(k) in text for k in a.keywords), i, a) for i, a in enumerate(articles)]
    ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
    return [a for _, _, a in ranked[:limit]]


def suggest_knowledge_base(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """OBL-1: suggest matching knowledge-base articles on a new ticket."""
    obligations = ctx.policy.obligations
    found = matching_articles(ticket, obligations.articles, obligations.max_suggestions)
    if not found:
        return []
    listing = "\n".join(f"- {a.title}: {a.url}" for a in found)
    return [
        AddComment(
            rule_id="OBL-1",
            reason=f"{len(found)} knowledge-base article(s) match the ticket",
            body=render(obligations.suggestion_message, articles=listing, number=ticket.number),
            unless=frozenset({"resolve", "close"}),
        )
    ]


def remind_current_patches(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """OBL-2: a customer on a supported but not current release is asked to install current
    patches and updates promptly (unsupported releases are VER-1's)."""
    versions = ctx.policy.versions
    reported = ticket.field("version")
    release = release_of(reported, versions.releases) if reported else None
    today = local_today(ctx)
    available = [r for r in versions.releases if r.released <= today]
    if release is None or not available:
        return []
    current = available[-1]
    end = support_ends(release, versions)
    if release.released >= current.released or end is None or today > end:
        return []
    return [
        AddComment(
            rule_id="OBL-2",
            reason=f"version {reported} is supported but not current ({current.version})",
            body=render(
                ctx.policy.obligations.patch_message,
                version=reported,
                current=current.version,
                number=ticket.number,
            ),
            unless=frozenset({"resolve", "close"}),
        )
    ]


def point_out_multiple_issues(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """OBL-3: one issue per ticket — a ticket whose text reads like several issues gets an
    internal note suggesting a split (software cannot split it; the agent decides)."""
    obligations = ctx.policy.obligations
    phrase = has_phrase(
        f"{ticket.subject}\n{ticket.description}", obligations.multiple_issue_phrases
    )
    if phrase is None:
        return []
    reason = f"the ticket may describe several issues ({phrase!r})"
    return [
        AddTags(rule_id="OBL-3", reason=reason, tags=frozenset({MULTIPLE_ISSUES_TAG})),
        AddComment(
            rule_id="OBL-3", reason=reason, public=False, body=obligations.multiple_issue_note
        ),
    ]


@hookimpl
def on_ticket_created(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """OBL-1, OBL-2 and OBL-3 on a new ticket."""
    return (
        suggest_knowledge_base(ticket, ctx)
        + remind_current_patches(ticket, ctx)
        + point_out_multiple_issues(ticket, ctx)
    )
