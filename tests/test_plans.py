"""Support plans: base → plan → organization targets, plan changes mid-ticket, and the tools.

RESP-1, RESP-2, HOURS-1 and SEV-1 read their targets and clocks through the layers; a plan
change keeps the response time already elapsed and recomputes the rest from the change.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ticketwarden.core.actions import Record
from ticketwarden.core.cli import app
from ticketwarden.core.context import PlanSpan, RuleContext, TicketState
from ticketwarden.core.engine import Engine
from ticketwarden.core.model import (
    Change,
    ChangeKind,
    Event,
    EventKind,
    Organization,
    Severity,
    Ticket,
)
from ticketwarden.core.policy import (
    Policy,
    PolicyError,
    load_policy,
    organization_report,
    policy_data,
    policy_from_data,
)
from ticketwarden.core.registry import Plugins

H = timedelta(hours=1)
FRIDAY = datetime.fromisoformat("2026-11-27T16:00:00+01:00")
runner = CliRunner()

PLANS: dict[str, Any] = {
    "calendars": {
        "follow-the-sun": {
            "regions": [
                {"timezone": "Europe/Berlin", "holidays_country": "DE"},
                {"timezone": "America/New_York", "holidays_country": "US"},
            ]
        },
        "vienna": {"timezone": "Europe/Vienna", "holidays_country": "AT"},
    },
    "plans": {
        "standard": {"description": "business hours"},
        "premium": {
            "around_the_clock": [1, 2],
            "severities": {"2": {"first_response": "2h", "update_interval": "4h"}},
            "organizations": ["globex"],
        },
        "enterprise": {"calendar": "follow-the-sun", "organizations": ["Initech"]},
    },
    "organizations": {
        "acme": {"plan": "standard"},
        "umbrella": {
            "plan": "premium",
            "calendar": "vienna",
            "severities": {"1": {"first_response": "30m"}},
        },
    },
}


@pytest.fixture(scope="module")
def planned() -> Policy:
    return policy_from_data(PLANS)


# --- Resolution ---------------------------------------------------------------------------------


def test_each_value_names_the_layer_that_set_it(planned: Policy) -> None:
    t = planned.targets("umbrella")
    assert (t.plan, t.organization, t.plan_source) == (
        "premium",
        "umbrella",
        "organizations.umbrella.plan",
    )
    one, two, three = (t.levels[s] for s in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM))
    assert (str(one.level.first_response), one.first_response_from) == (
        "30m",
        "organization umbrella",
    )
    assert (one.level.clock, one.clock_from) == ("24x7", "plan premium")
    assert (str(two.level.first_response), two.first_response_from) == ("2h", "plan premium")
    assert (str(two.level.update_interval), two.update_interval_from) == ("4h", "plan premium")
    assert (two.level.clock, two.clock_from) == ("24x7", "plan premium")
    assert (three.level.clock, three.clock_from) == ("vienna", "organization umbrella")
    assert (str(three.level.first_response), three.first_response_from) == ("8h", "base")
    assert t.layers() == "base → plan premium → organization umbrella"


def test_plan_sources_in_order_field_then_organization_then_plan_list(planned: Policy) -> None:
    assert planned.targets("globex").plan_source == "plans.premium.organizations"
    assert planned.targets("acme").plan == "standard"
    # the field wins over the file, in any letter case; an unknown value is ignored with a note
    assert planned.targets("acme", " PREMIUM ").plan_source == "field plan"
    unknown = planned.targets("acme", "platinum")
    assert (unknown.plan, unknown.notes) == (
        "standard",
        ("field plan names unknown plan 'platinum'; ignored",),
    )
    # organizations are matched by id first, then by name
    org = Organization(id="4711", name="Initech")
    assert planned.targets(org).plan == "enterprise"
    assert planned.targets(Organization(id="acme", name="Initech")).plan == "standard"
    assert planned.targets(None).key == (None, None)
    assert planned.targets("nobody").levels == planned.resolve(None, None)


def test_taking_a_severity_off_24x7_uses_the_nearest_calendar() -> None:
    policy = policy_from_data(
        {
            "calendars": {"us": {"timezone": "America/New_York", "holidays_country": "US"}},
            "plans": {"basic": {"around_the_clock": []}, "us": {"calendar": "us"}},
            "organizations": {"o": {"plan": "us", "around_the_clock": []}},
        }
    )
    basic = policy.resolve("basic", None)[Severity.CRITICAL]
    assert (basic.level.clock, basic.clock_from) == ("business", "plan basic")
    org = policy.resolve("us", "o")[Severity.CRITICAL]
    assert (org.level.clock, org.clock_from) == ("us", "organization o")


def test_a_policy_without_plans_resolves_to_the_base(policy: Policy) -> None:
    assert not policy.has_layers
    for sev, eff in policy.resolve(None, None).items():
        assert eff.level == policy.response.severities[sev]
        assert {eff.first_response_from, eff.update_interval_from, eff.clock_from} == {"base"}


def test_plans_survive_show_and_load(planned: Policy) -> None:
    import tomli_w

    text = tomli_w.dumps(policy_data(planned))
    assert policy_from_data(tomllib.loads(text)) == planned


# --- policy check ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[organizations.acme]\nplan = "gold"', "organizations.acme.plan: unknown plan 'gold'"),
        (
            '[plans.a]\norganizations = ["acme"]\n[plans.b]\norganizations = ["acme"]',
            "plans.b.organizations: organization 'acme' is in two plans ('a' and 'b')",
        ),
        (
            '[plans.a]\norganizations = ["acme"]\n[plans.b]\n[organizations.acme]\nplan = "b"',
            "organizations.acme.plan: organization 'acme' is in two plans",
        ),
        ("[calendars.x]\nhours = {}", "calendars.x: hours: at least one weekday needs open hours"),
        (
            '[calendars.x]\nregions = [{timezone = "UTC", hours = {mon = []}}]',
            "calendars.x.regions.0: hours: at least one weekday needs open hours",
        ),
        ("[calendars.x]\nregions = []", "calendars.x: regions: a follow-the-sun calendar needs"),
        ('[plans.a]\ncalendar = "moon"', "plans.a.calendar: unknown calendar 'moon'"),
        ('[organizations.o]\ncalendar = "moon"', "organizations.o.calendar: unknown calendar"),
        ("[plans.Gold]\n[plans.gold]", "'Gold' and 'gold' differ only in letter case"),
        ('[plans.a.severities.5]\nfirst_response = "1h"', "plans.a.severities.5"),
        ("[plans.a]\naround_the_clock = [7]", "plans.a.around_the_clock.0"),
    ],
)
def test_policy_check_rejects_bad_plans_naming_the_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml + "\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert message in str(info.value)
    result = runner.invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 2
    assert message in result.stderr


# --- policy show --org ----------------------------------------------------------------------------


def test_policy_show_org_names_each_layer(tmp_path: Path, planned: Policy) -> None:
    import tomli_w

    path = tmp_path / "p.toml"
    path.write_text(tomli_w.dumps(PLANS), encoding="utf-8")
    result = runner.invoke(app, ["policy", "show", str(path), "--org", "umbrella"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "plan 'premium' (organizations.umbrella.plan)" in out
    assert 'first_response = "30m"  # organization umbrella' in out
    assert 'first_response = "2h"  # plan premium' in out
    assert 'clock = "vienna"  # organization umbrella' in out
    assert "# calendar 'vienna' (severities 3, 4)" in out
    # the values are TOML that reads back as the effective targets
    data = tomllib.loads(out)["response"]["severities"]
    assert data["1"] == {"name": "critical", "first_response": "30m", "update_interval": "4h",
                         "clock": "24x7"}  # fmt: skip
    assert "is not named in the policy file" in organization_report(planned, "nobody")


# --- The engine: targets in use, plan changes -----------------------------------------------------


def _created(engine: Engine, ticket: Ticket, now: datetime) -> TicketState:
    event = Event(id="created", kind=EventKind.CREATED, at=ticket.created_at)
    return engine.evaluate(event, ticket, None, now).state


def _field_change(
    engine: Engine, ticket: Ticket, state: TicketState, at: datetime, plan: str
) -> tuple[Ticket, Any]:
    ticket = ticket.model_copy(update={"fields": {**ticket.fields, "plan": plan}, "updated_at": at})
    change = Change(kind=ChangeKind.FIELD_CHANGE, at=at, fields_changed=frozenset({"plan"}))
    event = Event(id=f"u:{at.isoformat()}", kind=EventKind.UPDATED, at=at, change=change)
    return ticket, engine.evaluate(event, ticket, state, at)


def test_no_plans_no_plan_history(engine: Engine, make_ticket: Callable[..., Ticket]) -> None:
    """A policy without plans keeps exactly the state it always did."""
    state = _created(engine, make_ticket(), datetime(2026, 11, 23, 8, 1, tzinfo=UTC))
    assert state.plan_history == ()


def test_upgrade_keeps_elapsed_time_and_is_audited_once(
    plugins: Plugins, planned: Policy, make_ticket: Callable[..., Ticket]
) -> None:
    engine = Engine(plugins, planned)
    ticket = make_ticket(severity=2, created_at=FRIDAY, updated_at=FRIDAY)
    state = _created(engine, ticket, FRIDAY)
    assert state.plan_history == (PlanSpan(since=FRIDAY, plan="standard", organization="acme",
                                           source="organizations.acme.plan"),)  # fmt: skip
    change_at = FRIDAY + H
    ticket, result = _field_change(engine, ticket, state, change_at, "premium")
    records = [a for a in result.actions if isinstance(a, Record)]
    assert len(records) == 1 and records[0].rule_id == "HOURS-1"
    assert (
        "1h00m of response-clock time elapsed before the change and is kept" in records[0].message
    )
    assert any("support plan changed" in n for n in result.explanation.notes)
    # 1 h of 2 h is left, on the 24×7 clock from 17:00: due 18:00 (not Monday 10:00)
    ctx = engine.context(result.state, change_at, targets=planned.targets_for(ticket))
    assert ctx.due(ticket.created_at, 2 * H, Severity.HIGH) == FRIDAY + 2 * H
    assert ctx.elapsed(ticket.created_at, Severity.HIGH, FRIDAY + 90 * timedelta(minutes=1)) == (
        90 * timedelta(minutes=1)
    )
    # evaluated again (a retry, a timer), the change is not recorded twice
    again = engine.evaluate(
        Event(id="stale", kind=EventKind.STALE, at=change_at), ticket, result.state, change_at
    )
    assert not [a for a in again.actions if isinstance(a, Record)]
    assert len(again.state.plan_history) == 2
    lines = engine.describe_targets(ticket, again.state)
    assert lines[0].startswith("targets: plan 'premium' (field plan)")
    assert "severity 2 (high): first_response 2h [plan premium]" in lines[1]
    assert any(line.startswith(f"plan since {change_at.isoformat()}") for line in lines)


def test_a_target_already_used_up_falls_due_at_the_change(
    plugins: Plugins, make_ticket: Callable[..., Ticket]
) -> None:
    policy = policy_from_data({"plans": {"fast": {"severities": {"3": {"first_response": "1h"}}}}})
    engine = Engine(plugins, policy)
    monday = datetime.fromisoformat("2026-11-23T09:00:00+01:00")
    ticket = make_ticket(created_at=monday, updated_at=monday)
    state = _created(engine, ticket, monday)
    ticket, result = _field_change(engine, ticket, state, monday + 3 * H, "fast")
    assert result.state.next_due == monday + 3 * H
    late = engine.evaluate(
        Event(id="t", kind=EventKind.STALE, at=monday + 3 * H), ticket, result.state, monday + 3 * H
    )
    assert "response-target-breached" in late.projected.tags


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 14 * 24 * 60),
    st.integers(0, 14 * 24 * 60),
    st.sampled_from([None, "standard", "premium", "enterprise"]),
    st.sampled_from([None, "standard", "premium", "enterprise"]),
    st.sampled_from(list(Severity)),
)
def test_nothing_is_lost_or_counted_twice(
    change_min: int, end_min: int, old: str | None, new: str | None, severity: Severity
) -> None:
    """HOURS-1: across a plan change, elapsed time is the old clock's up to the change plus the
    new clock's after it; due() is where that sum reaches the target, never before the change;
    a change between plans on the same clock moves nothing."""
    policy = policy_from_data(PLANS)
    start = datetime(2026, 3, 2, 6, tzinfo=UTC)
    change = start + timedelta(minutes=change_min)
    end = start + timedelta(minutes=end_min)
    history = (PlanSpan(since=start, plan=old), PlanSpan(since=change, plan=new))
    ctx = RuleContext(
        policy=policy,
        now=end,
        state=TicketState(plan_history=history),
        targets=policy.targets(None, new or ""),
    )
    old_clock = policy.clock(policy.resolve(old, None)[severity].level.clock)
    new_clock = policy.clock(policy.resolve(new, None)[severity].level.clock)
    expected = old_clock.between(start, min(change, end)) + new_clock.between(change, end)
    assert ctx.elapsed(start, severity, end) == expected
    target = timedelta(hours=6)
    at = ctx.due(start, target, severity)
    assert at is not None and at >= change
    used = old_clock.between(start, change)
    if used >= target:
        assert at == change
    else:
        assert ctx.elapsed(start, severity, at) == target
        assert ctx.elapsed(start, severity, at - timedelta(microseconds=1)) < target
    if old_clock is new_clock:
        assert at == max(change, old_clock.add(start, target))
