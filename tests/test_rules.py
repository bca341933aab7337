"""The built-in rules' pure helpers and the edge cases scenarios do not show."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from ticketwarden import hookimpl
from ticketwarden.core.actions import AddComment
from ticketwarden.core.engine import Engine
from ticketwarden.core.model import (
    AuthorizedContact,
    AuthorRole,
    Comment,
    Event,
    EventKind,
    Roster,
    RosterEntry,
    Status,
    diff_rosters,
)
from ticketwarden.core.policy import Policy, Release, VersionsPolicy, default_policy
from ticketwarden.core.registry import load_plugins
from ticketwarden.core.rules import has_phrase, human_span, render
from ticketwarden.core.rules.closure import _is_acknowledgement, customer_was_told
from ticketwarden.core.rules.contacts import certification_valid
from ticketwarden.core.rules.currency import release_of, support_ends, supported_versions
from ticketwarden.core.rules.intake import missing_items
from ticketwarden.core.rules.obligations import matching_articles

from .conftest import MONDAY


def test_missing_items_names_blank_malformed_and_unknown_values(make_ticket: Any) -> None:
    """INTAKE-1"""
    policy = default_policy()
    assert missing_items(make_ticket(), policy) == ()
    ticket = make_ticket(
        subject="  ",
        severity=None,
        fields={"server_url": "ftp://x", "module": "reporting", "steps": "s", "version": "1"},
    )
    names = [m.name for m in missing_items(ticket, policy)]
    assert names == ["subject", "severity", "server_url", "sample_machines"]


@pytest.mark.parametrize(
    ("reported", "expected"),
    [("10.0.3", "10.0"), ("v10.1 build 7", "10.1"), ("9.5", "9.5"), ("10", None), ("8.1", None)],
)
def test_release_of_matches_the_longest_prefix(reported: str, expected: str | None) -> None:
    """VER-1"""
    release = release_of(reported, VersionsPolicy().releases)
    assert (release.version if release else None) == expected


def test_previous_release_is_supported_for_a_year_after_its_successor() -> None:
    """VER-1: 10.1 came out 2026-05-04, so 10.0 is supported up to and including 2027-05-03."""
    versions = VersionsPolicy()
    ten = next(r for r in versions.releases if r.version == "10.0")
    assert support_ends(ten, versions) == date(2027, 5, 3)
    assert supported_versions(versions, date(2027, 5, 3)) == ["10.0", "10.1"]
    assert supported_versions(versions, date(2027, 5, 4)) == ["10.1"]
    assert support_ends(versions.releases[-1], versions) is None


def test_releases_are_ordered_by_date_whatever_the_file_says() -> None:
    versions = VersionsPolicy(
        releases=(
            Release(version="2.0", released=date(2025, 1, 1)),
            Release(version="1.0", released=date(2024, 1, 1)),
        )
    )
    assert [r.version for r in versions.releases] == ["1.0", "2.0"]


def test_certification_counts_until_its_expiry_day() -> None:
    """AUTH-3"""
    contact = AuthorizedContact(email="a@x", certified_until=date(2026, 11, 30))
    assert certification_valid(contact, date(2026, 11, 30))
    assert not certification_valid(contact, date(2026, 12, 1))
    assert not certification_valid(AuthorizedContact(email="a@x"), date(2026, 1, 1))
    assert not certification_valid(None, date(2026, 1, 1))


def test_roster_diff_is_complete_and_ordered() -> None:
    """AUTH-2"""
    old = Roster(
        entries=(
            RosterEntry(
                organization="a",
                contacts=(
                    AuthorizedContact(email="x@a"),
                    AuthorizedContact(email="y@a", phone="1"),
                ),
            ),
        )
    )
    new = Roster(
        entries=(
            RosterEntry(organization="a", contacts=(AuthorizedContact(email="Y@a ", phone="2"),)),
            RosterEntry(organization="b", contacts=(AuthorizedContact(email="z@b"),)),
        )
    )
    assert [(c.organization, c.email, c.change) for c in diff_rosters(old, new)] == [
        ("a", "x@a", "removed"),
        ("a", "y@a", "updated"),
        ("b", "z@b", "added"),
    ]
    assert diff_rosters(new, new) == ()


def test_roster_lookup_distinguishes_unknown_organizations() -> None:
    """AUTH-1"""
    roster = Roster(entries=(RosterEntry(organization="a", contacts=()),))
    assert roster.knows("a") and not roster.knows("b") and not roster.knows(None)
    assert roster.lookup("a", "x@a") is None


def test_acknowledgements_do_not_count_as_clarifications() -> None:
    """CLOSE-4"""
    phrases = default_policy().closure.acknowledgement_phrases
    assert _is_acknowledgement("Thanks!", phrases)
    assert _is_acknowledgement("  thank   you. ", phrases)
    assert not _is_acknowledgement("Thanks, but it still fails", phrases)


def test_customer_was_told_needs_a_public_support_reply_after_the_customer(
    make_ticket: Any,
) -> None:
    """CLOSE-1"""
    t0, t1 = MONDAY, MONDAY + timedelta(hours=1)
    customer = Comment(id="1", author_role=AuthorRole.CUSTOMER, body="?", created_at=t1)
    note = Comment(id="2", author_role=AuthorRole.AGENT, body="n", public=False, created_at=t1)
    answer = Comment(id="3", author_role=AuthorRole.AGENT, body="a", created_at=t0)
    assert not customer_was_told(make_ticket(comments=(answer, customer, note)))
    late = answer.model_copy(update={"created_at": t1 + timedelta(minutes=1), "id": "4"})
    assert customer_was_told(make_ticket(comments=(answer, customer, note, late)))


def test_knowledge_base_ranking(make_ticket: Any) -> None:
    """OBL-1"""
    articles = default_policy().obligations.articles
    found = matching_articles(
        make_ticket(subject="Remote control session to agent fails"), articles, 3
    )
    assert [a.url.rsplit("/", 1)[1] for a in found] == ["remote-control", "agents-offline"]
    assert matching_articles(make_ticket(subject="Invoice question"), articles, 3) == []


def test_phrases_and_messages() -> None:
    assert has_phrase("Please   ESCALATE this now", ["please escalate"]) == "please escalate"
    assert has_phrase("nothing", ["please escalate"]) is None
    assert render("{a} {unknown}", a=1) == "1 {unknown}"
    from ticketwarden.core.clock import parse_span

    assert human_span(parse_span("2d4h")) == "2 days 4 hours"


def test_a_late_run_sends_only_the_latest_reminder(
    engine: Engine, make_ticket: Any, roster: Roster
) -> None:
    """CLOSE-3: a job that did not run for six days sends one reminder, not two."""
    waiting = make_ticket(status=Status.WAITING_ON_CUSTOMER)
    state = engine.evaluate(
        Event(id="c", kind=EventKind.CREATED, at=MONDAY), waiting, None, MONDAY, roster=roster
    ).state
    day6 = MONDAY + timedelta(days=6)
    result = engine.evaluate(Event(id="s", kind=EventKind.STALE, at=day6), waiting, state, day6)
    comments = [a for a in result.actions if a.rule_id == "CLOSE-3"]
    assert len(comments) == 1 and "reminder 2 of 2" in comments[0].body  # type: ignore[attr-defined]
    again = engine.evaluate(
        Event(id="s2", kind=EventKind.STALE, at=day6), waiting, result.state, day6
    )
    assert not [a for a in again.actions if a.rule_id == "CLOSE-3"]


def test_ticket_number_is_added_to_third_party_public_comments(
    make_ticket: Any, policy: Policy
) -> None:
    """INTAKE-3 wraps every plugin, not just the built-in ones."""

    def on_ticket_created() -> list[AddComment]:
        return [
            AddComment(rule_id="ACME-1", reason="r", body="Hello"),
            AddComment(rule_id="ACME-1", reason="r", body="internal", public=False),
        ]

    plugins = load_plugins(
        allow=["intake"],
        block=(),
        extra=[("acme", SimpleNamespace(on_ticket_created=hookimpl(on_ticket_created)))],
    )
    result = Engine(plugins, policy).evaluate(
        Event(id="c", kind=EventKind.CREATED, at=MONDAY), make_ticket(number="#77"), None, MONDAY
    )
    bodies = {a.body for a in result.actions if isinstance(a, AddComment)}
    assert (
        "Hello\n\nTicket #77 — please cite this ticket number in every reply and communication."
        in bodies
    )
    assert "internal" in bodies
