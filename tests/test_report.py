"""The report's computations (core/report.py) on constructed states and audit rows with answers
worked out by hand, and its renderings (CSV, JSON, table, HTML)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ticketwarden.core.context import PauseSpan, TicketState
from ticketwarden.core.model import Severity, Status
from ticketwarden.core.policy import Policy, default_policy, policy_from_data
from ticketwarden.core.report import (
    ALL,
    Attainment,
    Report,
    TargetRow,
    TicketRow,
    build_report,
    classify,
)
from ticketwarden.core.store import AuditEntry
from ticketwarden.reporting import report_csv, report_json
from ticketwarden.reporting.text import table_text

SINCE = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
UNTIL = datetime(2026, 11, 30, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def ticket(
    tid: str,
    *,
    created: datetime | None,
    severity: int | None = 1,
    status: Status = Status.OPEN,
    desk: str = "a",
    tags: tuple[str, ...] = (),
    updates: tuple[datetime, ...] = (),
    fields: dict[str, str] | None = None,
    memory: dict[str, Any] | None = None,
    **facts: Any,
) -> TicketRow:
    """A stored state as the sync job leaves it (creation time and replies in memory)."""
    mem: dict[str, Any] = {
        "_sync:fields": {"fields": fields or {}, "tags": sorted(tags)},
        "_sync:agent_updates": [u.isoformat() for u in updates],
        **(memory or {}),
    }
    if created is not None:
        mem["_sync:created_at"] = created.isoformat()
    if updates and "first_response_at" not in facts:
        facts["first_response_at"] = updates[0]
    state = TicketState(
        created_seen=True,
        status=status,
        severity=Severity(severity) if severity else None,
        memory=mem,
        **facts,
    )
    return TicketRow(desk=desk, ticket_id=tid, state=state)


def audit(tid: str, rule: str, action: str, detail: str, when: datetime, **kw: str) -> AuditEntry:
    return AuditEntry(
        at=when,
        actor="ticketwarden",
        desk=kw.get("desk", "a"),
        ticket_id=tid,
        rule_id=rule,
        action=action,
        reason="because",
        outcome=kw.get("outcome", "applied"),
        detail=detail,
    )


def report(
    states: list[TicketRow],
    rows: list[AuditEntry] | None = None,
    policy: Policy | None = None,
    now: datetime = UNTIL,
) -> Report:
    return build_report(
        states, rows or [], policy or default_policy(), since=SINCE, until=UNTIL, now=now
    )


def row(rep: Report, desk: str, severity: str) -> TargetRow:
    (found,) = [r for r in rep.targets if r.desk == desk and r.severity == severity]
    return found


def test_first_response_is_measured_against_the_target_on_the_severity_clock() -> None:
    policy = policy_from_data({"contacts": {"certified_response_factor": 0.5}})
    states = [
        # severity 1: 1 h around the clock
        ticket("met", created=at(23, 10), first_response_at=at(23, 10, 45)),
        ticket("late", created=at(23, 10), first_response_at=at(23, 11, 30)),
        # 20 min, then waiting on the customer 10:20-12:00, then 40 min: due 12:40
        ticket(
            "paused",
            created=at(23, 10),
            first_response_at=at(23, 12, 30),
            pauses=(PauseSpan(start=at(23, 10, 20), end=at(23, 12)),),
        ),
        ticket("unanswered", created=at(23, 10)),  # due 11:00, still nobody: missed
        ticket("running", created=at(29, 23, 30)),  # due 00:30 after the period: pending
        ticket("before", created=at(22, 10)),  # created before the period: not counted
        # resolved before anyone owed an answer: no target
        ticket("done", created=at(23, 10), status=Status.RESOLVED, resolved_at=at(23, 10, 30)),
        # resolved after the target without an answer: missed
        ticket("dropped", created=at(23, 10), status=Status.RESOLVED, resolved_at=at(23, 13)),
        # certified requester: half the target, 30 min
        ticket(
            "certified",
            created=at(23, 10),
            first_response_at=at(23, 10, 45),
            tags=("certified-admin",),
        ),
        # severity 3: 8 business hours from Monday 09:00 Berlin (08:00 UTC): due 17:00 Berlin
        ticket("biz-met", created=at(23, 8), severity=3, first_response_at=at(23, 15, 59)),
        ticket("biz-late", created=at(23, 8), severity=3, first_response_at=at(23, 16, 1)),
    ]
    rep = report(states, policy=policy)
    sev1 = row(rep, "a", "1")
    assert sev1.tickets == 8
    assert sev1.first_response == Attainment.of(met=2, missed=4, pending=1)
    assert sev1.first_response.rate == pytest.approx(2 / 6)
    sev3 = row(rep, "a", "3")
    assert (sev3.tickets, sev3.first_response.met, sev3.first_response.missed) == (2, 1, 1)
    total = row(rep, ALL, ALL)
    assert total.tickets == 10
    assert total.first_response == Attainment.of(met=3, missed=5, pending=1)
    assert row(rep, "a", ALL).first_response == total.first_response


def test_update_intervals_run_from_one_public_agent_reply_to_the_next() -> None:
    states = [
        # 4 h intervals: 10→13 met, 13→18 missed (due 17:00), 18→ nothing: missed at 22:00
        ticket("gaps", created=at(22, 9), updates=(at(23, 10), at(23, 13), at(23, 18))),
        # resolved before the next update was owed
        ticket(
            "solved",
            created=at(22, 9),
            updates=(at(23, 10),),
            status=Status.RESOLVED,
            resolved_at=at(23, 12),
        ),
        # the next update falls due after now: still running
        ticket("running", created=at(22, 9), updates=(at(29, 22),)),
        # a workaround was provided: no more regular updates owed
        ticket(
            "workaround", created=at(22, 9), updates=(at(23, 10),), tags=("workaround-provided",)
        ),
        # contact unavailable (RESP-3): intervals twice as long, 10→17 met, then missed
        ticket(
            "slow",
            created=at(22, 9),
            updates=(at(23, 10), at(23, 17)),
            memory={"RESP-3:slow": True},
        ),
        # everything before the period
        ticket("old", created=at(21, 9), updates=(at(22, 10), at(22, 13))),
        # waiting on the customer since 11:00: the clock stands still
        ticket(
            "waiting",
            created=at(22, 9),
            updates=(at(23, 10),),
            status=Status.WAITING_ON_CUSTOMER,
            pauses=(PauseSpan(start=at(23, 11)),),
        ),
    ]
    sev1 = row(report(states), "a", "1")
    assert sev1.update_interval == Attainment.of(met=2, missed=3, pending=2)
    assert sev1.tickets == 0, "none created in the period"


def test_an_early_report_leaves_open_targets_pending() -> None:
    states = [ticket("t", created=at(23, 10), updates=(at(23, 10, 30),))]
    rep = report(states, now=at(23, 12))
    assert row(rep, "a", "1").first_response == Attainment.of(met=1, missed=0, pending=0)
    # the update is due at 14:30, after now
    assert row(rep, "a", "1").update_interval == Attainment.of(met=0, missed=0, pending=1)


def test_policy_events_are_counted_from_the_audit_trail() -> None:
    states = [
        ticket("t1", created=at(23, 10)),
        ticket("t2", created=at(23, 10), severity=2),
        ticket("t3", created=at(23, 10), status=Status.RESOLVED, resolved_at=at(27, 10)),
        ticket("t4", created=at(23, 10), status=Status.CLOSED, resolved_at=at(24, 10)),
        ticket("t5", created=at(23, 10), resolved_at=at(25, 10)),
        ticket("t6", created=at(23, 10), memory={"CLOSE-4:reopened": at(26, 9).isoformat()}),
        ticket("t7", created=at(23, 10)),
        ticket("t8", created=at(20, 10), fields={"version": "9.0.1"}),
        ticket("b1", created=at(23, 10), desk="b"),
    ]
    rows = [
        audit("t1", "RESP-1", "add_tags", "add_tags tags=response-due-soon", at(23, 10, 48)),
        audit("t1", "RESP-1", "comment", "comment body=First response due", at(23, 10, 48)),
        audit("t2", "RESP-1", "add_tags", "add_tags tags=response-target-breached", at(23, 15)),
        audit("t1", "RESP-2", "add_tags", "add_tags tags=update-overdue", at(24, 10)),
        audit("t1", "RESP-2", "add_tags", "add_tags tags=update-overdue", at(25, 10)),
        audit("t3", "CLOSE-3", "comment", "comment body=Reminder 1", at(25, 10)),
        audit("t3", "CLOSE-3", "comment", "comment body=No reply: resolved", at(27, 10)),
        audit("t3", "CLOSE-3", "resolve", "resolve resolution=no_response", at(27, 10)),
        audit("t4", "CLOSE-5", "close", "close", at(28, 10)),
        audit("t5", "CLOSE-4", "set_status", "set_status status=open", at(26, 10)),
        audit("t5", "CLOSE-4", "set_status", "set_status status=resolved", at(26, 11)),
        audit("t1", "ESC-1", "escalate", "escalate target=support-leads", at(23, 11)),
        audit("t2", "ESC-1", "escalate", "escalate target=x", at(23, 11), outcome="failed"),
        audit("t2", "ESC-2", "escalate", "escalate target=support-management", at(24, 11)),
        audit("t7", "AUTH-1", "add_tags", "add_tags tags=unauthorized-requester", at(23, 10)),
        audit("t8", "VER-1", "add_tags", "add_tags tags=unsupported-version", at(23, 9)),
        audit("t1", "ESC-1", "escalate", "escalate target=support-leads", at(22, 11)),  # before
        audit("b1", "ESC-2", "escalate", "escalate target=m", at(24, 11), desk="b"),
        audit(
            "b1", "AUTH-1", "add_tags", "add_tags tags=unauthorized-requester", at(23, 10), desk="b"
        ),
    ]
    rep = report(states, rows)
    a, b, everything = rep.activity
    assert (a.desk, b.desk, everything.desk) == ("a", "b", ALL)
    assert a.tickets_created == 7 and b.tickets_created == 1
    assert (a.reminders, a.auto_resolves, a.final_closes) == (1, 1, 1)
    assert (a.resolved, a.reopened) == (3, 2)  # t3 t4 t5 resolved; t5 (audit), t6 (memory)
    assert a.reopen_rate == pytest.approx(2 / 4)
    assert (a.escalations_automatic, a.escalations_requested) == (1, 1)
    assert (a.unauthorized, a.unsupported_version) == (1, 1)
    assert a.unauthorized_rate == pytest.approx(1 / 7)
    assert (everything.escalations_requested, everything.unauthorized) == (2, 2)
    assert everything.unauthorized_rate == pytest.approx(2 / 8)
    assert rep.unsupported_versions == {"9.0.1": 1}
    sev1, sev2 = row(rep, "a", "1"), row(rep, "a", "2")
    assert (sev1.warnings, sev1.breaches, sev1.updates_overdue) == (1, 0, 2)
    assert (sev2.warnings, sev2.breaches) == (0, 1)
    assert row(rep, ALL, ALL).breaches == 1


def test_days_are_counted_in_the_policy_time_zone() -> None:
    rows = [
        # 23:30 UTC on Monday is Tuesday in Berlin
        audit("t", "RESP-2", "add_tags", "add_tags tags=update-overdue", at(23, 23, 30)),
        audit("t", "ESC-1", "escalate", "escalate target=x", at(23, 12)),
    ]
    rep = report([ticket("t", created=at(23, 10))], rows)
    assert [d.day.isoformat() for d in rep.daily][:2] == ["2026-11-23", "2026-11-24"]
    # the UTC week ends at 01:00 on Monday in Berlin: eight local days are touched
    assert len(rep.daily) == 8 and rep.daily[-1].day.isoformat() == "2026-11-30"
    monday, tuesday = rep.daily[0], rep.daily[1]
    assert (monday.escalations, monday.updates_overdue) == (1, 0)
    assert tuesday.updates_overdue == 1


def test_states_from_before_this_version_are_left_out_and_said_so() -> None:
    rep = report([ticket("legacy", created=None, first_response_at=at(23, 11))])
    assert row(rep, ALL, ALL).first_response == Attainment.of(0, 0, 0)
    assert rep.notes and "1 ticket(s)" in rep.notes[0]


def test_classify_names_each_kind_and_ignores_the_rest() -> None:
    policy = default_policy()
    when = at(23, 10)
    assert classify(audit("t", "RESP-1", "add_tags", "add_tags tags=x", when), policy) is None
    assert classify(audit("t", "INTAKE-2", "comment", "comment", when), policy) is None
    assert classify(audit("t", "CLOSE-3", "comment", "c", when, outcome="failed"), policy) is None
    assert classify(audit("t", "CLOSE-3", "comment", "c", when, outcome="unchanged"), policy) == (
        "reminder"
    )


def test_bad_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        build_report([], [], default_policy(), since=UNTIL, until=SINCE, now=UNTIL)
    with pytest.raises(ValueError, match="timezone-aware"):
        build_report(
            [], [], default_policy(), since=SINCE.replace(tzinfo=None), until=UNTIL, now=UNTIL
        )


def sample() -> Report:
    states = [
        ticket("t1", created=at(23, 10), first_response_at=at(23, 10, 30)),
        ticket("t2", created=at(23, 10), severity=3, fields={"version": "9.0.1"}),
    ]
    rows = [
        audit("t2", "VER-1", "add_tags", "add_tags tags=unsupported-version", at(23, 10)),
        audit("t2", "RESP-1", "add_tags", "add_tags tags=response-target-breached", at(24, 10)),
    ]
    return report(states, rows)


def test_json_is_the_report_model() -> None:
    rep = sample()
    data = json.loads(report_json(rep))
    assert Report.model_validate(data) == rep
    assert data["activity"][-1]["desk"] == ALL


def test_csv_has_one_number_per_line() -> None:
    lines = list(csv.DictReader(io.StringIO(report_csv(sample()))))
    assert set(lines[0]) == {"section", "desk", "key", "metric", "value"}
    value = {(r["section"], r["desk"], r["key"], r["metric"]): r["value"] for r in lines}
    assert value[("targets", "a", "1", "first_response_met")] == "1"
    assert value[("targets", "a", "1", "first_response_rate")] == "1.0000"
    assert value[("targets", "a", "3", "first_response_rate")] == "0.0000"
    assert value[("targets", ALL, ALL, "breaches")] == "1"
    assert value[("unsupported_versions", ALL, "9.0.1", "tickets")] == "1"
    assert value[("daily", ALL, "2026-11-24", "breaches")] == "1"
    assert value[("period", ALL, "", "since")] == SINCE.isoformat()


def test_table_shows_rates_and_totals() -> None:
    text = table_text(sample())
    assert "Response targets" in text and "Policy activity" in text
    assert "100 %" in text and "9.0.1" in text


def test_html_is_one_self_contained_page_with_svg_charts() -> None:
    from ticketwarden.reporting.html import report_html

    page = report_html(sample())
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 2 and "<script" not in page
    # nothing to fetch: no external URL in an attribute (the SVG namespace is no fetch)
    for attribute in ("src=", 'href="http', "url(http", "@import"):
        assert attribute not in page
    assert report_html(sample()) == page, "the same report renders to the same bytes"
