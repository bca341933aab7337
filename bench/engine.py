"""Benchmark: the policy engine against plain ``json.loads`` on the same tickets.

``python bench/engine.py [--tickets N] [--seed S]`` (default N=100000, S=1)

1. Generates N varied, normalized tickets deterministically from the seed: severities 1-4 and
   some missing, incomplete or malformed intake fields, authorized and unknown requesters,
   unknown organizations, versions 10.1.x / 10.0.x / 9.5.x, subjects and descriptions of a few
   hundred characters, 0-6 comments (customer/agent, public/private), created times spread over
   four weeks of May-June 2026 in several time zones, statuses new/open/waiting_on_customer.
2. Times ``json.loads`` over the N ``Ticket.model_dump_json()`` strings (best of 3).
3. Builds the ``Ticket`` objects outside the timed region and times the engine: per ticket
   ``on_ticket_created`` at creation time, then ``on_stale`` on the projected ticket and the new
   state a few days later (reminders, warnings, breaches and auto-resolves fire). Best of 3 when
   one pass is cheap enough, otherwise fewer passes (the output says how many).
4. Prints a table, then a cProfile breakdown of 2,000 tickets (top 15 by cumulative time, and
   the top 15 by own time).
5. Times the engine again with support plans in use (``PLANS``): acme on a premium plan with
   severities 1-2 around the clock, globex on an enterprise plan with a follow-the-sun calendar
   (Berlin + New York) and an organization override, and one ticket in ten naming a plan in its
   ``plan`` field (a third of those upgrade mid-way: the stale pass sees another plan, so the
   plan-change path runs too).
6. Runs the clock section (``bench/clock_section.py``).
7. Ends with exactly four goal lines: engine_vs_json_loads, engine_plans_vs_json_loads,
   clock_add_speed, clock_add_identical. Always exits 0.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import random
import sys
import sysconfig
import time
import traceback
import zlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

BENCH_DIR = Path(__file__).resolve().parent
try:
    import ticketwarden  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without the package installed
    sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

from ticketwarden.core.engine import Engine, Evaluation  # noqa: E402
from ticketwarden.core.model import (  # noqa: E402
    AuthorizedContact,
    AuthorRole,
    Comment,
    Contact,
    Event,
    EventKind,
    Organization,
    Roster,
    RosterEntry,
    Severity,
    Status,
    Ticket,
)
from ticketwarden.core.policy import default_policy, policy_from_data  # noqa: E402
from ticketwarden.core.registry import load_plugins  # noqa: E402

ENGINE_TARGET = 2.00
ENGINE_BUDGET_S = 100.0
"""Upper bound for all timed engine passes together; fewer than 3 passes when one is slower."""
PROFILE_SAMPLE = 2000

# --- Ticket generation ----------------------------------------------------------------------------

ZONES = tuple(ZoneInfo(z) for z in ("UTC", "Europe/Berlin", "Europe/Berlin", "America/New_York"))
START = datetime(2026, 5, 11, 6, 0, tzinfo=ZoneInfo("UTC"))  # a Monday, after 10.1's release
SPREAD_S = 28 * 86400

MODULES = (
    "Agent",
    "Patch Management",
    "Monitoring",
    "Remote Control",
    "Backup",
    "Reporting",
    "Server",
)
BAD_MODULES = ("Antivirus", "Mobile", "patching", "???")

REQUESTERS = (
    # (email, name, weight): mostly the authorized contact, some unauthorized, some unknown
    ("anna@acme.example", "Anna Berger", 70),
    ("ben@acme.example", "Ben Schulz", 10),
    ("carl@acme.example", "Carl Vogt", 8),
    ("it-helpdesk@acme.example", "IT Helpdesk", 4),
    ("dora@globex.example", "Dora Klein", 5),
    ("", "", 3),
)
ORGS = (("acme", "ACME GmbH", 88), ("globex", "Globex Corp", 7), (None, None, 5))

TOPICS = (
    (
        "Agents show offline after the server update",
        "Since we applied the latest server update last night, roughly {n} agents show offline in "
        "the console although the machines are running and reachable. The last check-in time is "
        "stuck at the moment of the update.",
    ),
    (
        "Patch scan reports no missing patches",
        "The weekly patch scan finishes without errors but reports zero missing patches on {n} "
        "Windows servers, while Windows Update on the same machines lists several pending updates.",
    ),
    (
        "Remote control session does not connect",
        "Remote control sessions to {n} workstations hang at 'connecting' and time out after a "
        "minute. Sessions to other machines in the same network work fine.",
    ),
    (
        "Backup job fails with error 0x80070005",
        "The nightly backup job for the file server fails with error 0x80070005 (access denied) "
        "since {n} days. The service account has not been changed.",
    ),
    (
        "Monitoring alerts arrive twice",
        "Every monitoring alert for the database servers is delivered twice by e-mail, about {n} "
        "seconds apart, which floods the on-call mailbox.",
    ),
    (
        "Report export to PDF is empty",
        "Exporting the monthly executive summary to PDF produces an empty document with {n} blank "
        "pages; the HTML preview shows the data correctly.",
    ),
    (
        "Server console very slow",
        "The web console takes more than {n} seconds to load any page since Monday. CPU and memory "
        "on the application server look normal.",
    ),
)
EXTRAS = (
    "",
    "",
    "",
    " We also have another problem: the dashboard widgets do not refresh.",
    " Please escalate this, it blocks our quarterly rollout.",
    " Could you also offer a training for two new colleagues?",
    " The issue is critical for us because the whole site is affected.",
    " We restarted the service and rebooted the server, without any change.",
    " Logs are attached as a zip file; the relevant entries start at 02:14 UTC.",
)
STEPS = (
    "1. Open the console\n2. Go to Devices\n3. Filter by group 'Berlin'\n4. See status offline",
    "Run a patch scan on any Windows 2022 server and compare with Windows Update.",
    "Start a remote control session from the device page; it never connects.",
    "Start the backup job manually from the scheduler and watch the job log.",
    "",
    "   ",
)
COMMENTS = (
    (AuthorRole.CUSTOMER, True, "Any news on this? The problem still occurs on {n} machines."),
    (AuthorRole.CUSTOMER, True, "Attached are the log files you asked for. Thank you."),
    (AuthorRole.CUSTOMER, True, "thanks"),
    (
        AuthorRole.AGENT,
        True,
        "Thank you for the details. Could you send the agent logs from "
        "one affected machine (C:\\ProgramData\\Agent\\logs)?",
    ),
    (
        AuthorRole.AGENT,
        True,
        "We reproduced the problem in our lab and are working on a fix; "
        "next update within two business days.",
    ),
    (
        AuthorRole.AGENT,
        False,
        "#access logged in to the customer's server to check the service account",
    ),
    (
        AuthorRole.AGENT,
        False,
        "Looks like the known issue with the check-in service; linking to the internal bug.",
    ),
)


def _weighted(rng: random.Random, items: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    return rng.choices(items, weights=[i[-1] for i in items])[0]


def make_ticket(i: int, rng: random.Random) -> Ticket:
    """One realistic, varied normalized ticket."""
    zone = rng.choice(ZONES)
    created = (START + timedelta(seconds=rng.randrange(SPREAD_S))).astimezone(zone)
    email, name, _ = _weighted(rng, REQUESTERS)
    org_id, org_name, _ = _weighted(rng, ORGS)
    severity = rng.choices(
        [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, None],
        weights=[5, 20, 45, 22, 8],
    )[0]
    status = rng.choices(
        [Status.NEW, Status.OPEN, Status.WAITING_ON_CUSTOMER], weights=[70, 20, 10]
    )[0]
    subject, body = rng.choice(TOPICS)
    description = (
        f"Hello support,\n\n{body.format(n=rng.randint(2, 400))}{rng.choice(EXTRAS)}\n\n"
        f"Kind regards,\n{name or 'IT team'}"
    )
    if rng.random() < 0.02:
        description = ""
    fields: dict[str, str] = {}
    if rng.random() < 0.85:
        fields["server_url"] = rng.choice(
            (
                "https://rmm.acme.example/",
                "https://rmm.acme.example:8443/console",
                "http://10.0.4.17/",
                "rmm.acme.example",
            )  # the last one is malformed
        )
    if rng.random() < 0.88:
        fields["module"] = rng.choice(MODULES) if rng.random() < 0.93 else rng.choice(BAD_MODULES)
    if rng.random() < 0.8:
        fields["steps"] = rng.choice(STEPS)
    if rng.random() < 0.75:
        fields["sample_machines"] = (
            f"group {rng.randint(1, 40)} / machine {rng.randint(1000, 99999)}, "
            f"group {rng.randint(1, 40)} / machine {rng.randint(1000, 99999)}"
        )
    if rng.random() < 0.9:
        major = rng.choices(("10.1", "10.0", "9.5"), weights=(55, 35, 10))[0]
        fields["version"] = f"{major}.{rng.randint(0, 6)}"
    comments = []
    at = created
    for c in range(rng.choices(range(7), weights=(30, 20, 18, 12, 10, 6, 4))[0]):
        at = at + timedelta(minutes=rng.randint(5, 36 * 60))
        role, public, text = rng.choice(COMMENTS)
        comments.append(
            Comment(
                id=f"c{i}-{c}",
                author_role=role,
                author=email if role == AuthorRole.CUSTOMER else "agent.smith@vendor.example",
                body=text.format(n=rng.randint(2, 50)),
                public=public,
                created_at=at,
            )
        )
    if comments and status == Status.NEW:
        status = Status.OPEN
    tags = frozenset(rng.sample(("vip", "rollout", "berlin", "q2"), rng.randint(0, 2)))
    return Ticket(
        id=str(100000 + i),
        number=f"#{100000 + i}",
        desk="zendesk",
        subject=f"{subject} (site {rng.randint(1, 30)})" if rng.random() > 0.01 else "",
        description=description,
        status=status,
        severity=severity,
        requester=Contact(id=f"u{zlib.crc32(email.encode()) % 10**6}", name=name, email=email),
        organization=Organization(id=org_id, name=org_name) if org_id else None,
        fields=fields,
        tags=tags,
        comments=tuple(comments),
        created_at=created,
        updated_at=at,
    )


def make_roster() -> Roster:
    return Roster(
        entries=(
            RosterEntry(
                organization="acme",
                contacts=(
                    AuthorizedContact(email="anna@acme.example", name="Anna Berger"),
                    AuthorizedContact(email="ben@acme.example", name="Ben Schulz"),
                ),
            ),
        )
    )


PLANS: dict[str, Any] = {
    "calendars": {
        "follow-the-sun": {
            "regions": [
                {"timezone": "Europe/Berlin", "holidays_country": "DE"},
                {"timezone": "America/New_York", "holidays_country": "US"},
            ]
        }
    },
    "plans": {
        "standard": {"description": "business hours"},
        "premium": {
            "around_the_clock": [1, 2],
            "severities": {"2": {"first_response": "2h", "update_interval": "4h"}},
        },
        "enterprise": {"calendar": "follow-the-sun", "organizations": ["globex"]},
    },
    "organizations": {
        "acme": {"plan": "premium"},
        "globex": {"severities": {"3": {"first_response": "4h"}}},
    },
}
"""The support plans of the second timed run (step 5 of the module docstring)."""


PlanJob = tuple[Ticket, Event, datetime, Event, datetime, str | None]


def plan_jobs(jobs: list[Job], rng: random.Random) -> list[PlanJob]:
    """The same jobs, one ticket in ten naming a plan in its field; a third of those name
    another plan by the stale pass (an upgrade mid-ticket, the last element)."""
    out: list[PlanJob] = []
    for ticket, created, now1, stale, now2 in jobs:
        upgrade = None
        if rng.random() < 0.1:
            plan = rng.choice(("standard", "premium", "enterprise"))
            ticket = ticket.model_copy(update={"fields": {**ticket.fields, "plan": plan}})
            if rng.random() < 1 / 3:
                upgrade = "premium" if plan != "premium" else "enterprise"
        out.append((ticket, created, now1, stale, now2, upgrade))
    return out


def run_engine_plans(engine: Engine, jobs: list[PlanJob], roster: Roster) -> tuple[int, int]:
    """:func:`run_engine` with plans: an upgraded ticket shows its new plan to the stale pass."""
    evaluate = engine.evaluate
    n_actions = 0
    stale_fired = 0
    for ticket, created, now1, stale, now2, upgrade in jobs:
        first: Evaluation = evaluate(created, ticket, None, now1, roster=roster)
        seen = first.projected
        if upgrade is not None:
            fields = {**seen.fields, "plan": upgrade}
            seen = seen.model_copy(update={"fields": fields, "updated_at": now1})
        second = evaluate(stale, seen, first.state, now2, roster=roster)
        n_actions += len(first.actions) + len(second.actions)
        stale_fired += bool(second.actions)
    return n_actions, stale_fired


# --- Timing ---------------------------------------------------------------------------------------


def time_json_loads(blobs: list[str]) -> float:
    best = float("inf")
    loads = json.loads
    for _ in range(3):
        t0 = time.perf_counter()
        for blob in blobs:
            loads(blob)
        best = min(best, time.perf_counter() - t0)
    return best


Job = tuple[Ticket, Event, datetime, Event, datetime]


def plan(tickets: list[Ticket], rng: random.Random) -> list[Job]:
    """The two occasions per ticket: created (now = a minute later), stale 2-9 days later."""
    jobs = []
    for t in tickets:
        now1 = t.updated_at + timedelta(minutes=1)
        now2 = now1 + timedelta(days=rng.uniform(2, 9))
        created = Event(id=f"{t.id}:created", kind=EventKind.CREATED, at=t.created_at)
        stale = Event(id=f"{t.id}:stale:{int(now2.timestamp())}", kind=EventKind.STALE, at=now2)
        jobs.append((t, created, now1, stale, now2))
    return jobs


def run_engine(engine: Engine, jobs: list[Job], roster: Roster) -> tuple[int, int]:
    """Both hooks for every ticket; returns (actions, fired stale evaluations)."""
    evaluate = engine.evaluate
    n_actions = 0
    stale_fired = 0
    for ticket, created, now1, stale, now2 in jobs:
        first: Evaluation = evaluate(created, ticket, None, now1, roster=roster)
        second = evaluate(stale, first.projected, first.state, now2, roster=roster)
        n_actions += len(first.actions) + len(second.actions)
        stale_fired += bool(second.actions)
    return n_actions, stale_fired


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    n = max(1, args.tickets)

    t0 = time.perf_counter()
    gc.disable()  # setup only: building 100k tickets triggers many useless full collections
    rng = random.Random(args.seed)
    generated = [make_ticket(i, rng) for i in range(n)]
    blobs = [t.model_dump_json() for t in generated]
    del generated
    tickets = [Ticket.model_validate_json(b) for b in blobs]
    roster = make_roster()
    engine = Engine(load_plugins(), default_policy())
    jobs = plan(tickets, random.Random(args.seed + 1))
    gc.enable()
    gc.collect()
    # The benchmark's own data (blobs, tickets, jobs) is long-lived: move it out of the
    # collector's generations so full collections triggered by the engine's garbage do not
    # rescan it (that would add ~13% at N=100000 and is an artefact of holding N tickets).
    gc.freeze()
    avg_len = sum(map(len, blobs)) / n
    print(
        f"generated {n} tickets (seed {args.seed}, avg JSON {avg_len:,.0f} bytes) "
        f"in {time.perf_counter() - t0:.1f}s; plugins: "
        f"{', '.join(i.name for i in engine.plugins.info())}"
    )

    t_json = time_json_loads(blobs)

    # Warm-up (calendar caches, pydantic, pluggy) outside the timed region.
    run_engine(engine, jobs[: min(200, n)], roster)
    runs: list[float] = []
    n_actions = stale_fired = 0
    while len(runs) < 3:
        t0 = time.perf_counter()
        n_actions, stale_fired = run_engine(engine, jobs, roster)
        runs.append(time.perf_counter() - t0)
        if sum(runs) + runs[-1] > ENGINE_BUDGET_S:
            break
    t_engine = min(runs)
    ratio = t_engine / t_json

    print()
    print(
        f"engine vs json.loads: {n} tickets, json.loads best of 3, engine best of {len(runs)}"
        f"{'' if len(runs) == 3 else ' (time budget: fewer runs)'}"
        f" (runs: {', '.join(f'{r:.2f}s' for r in runs)})"
    )
    rows = (
        ("tickets", f"{n}"),
        ("json.loads seconds", f"{t_json:.3f}"),
        ("engine seconds (created + stale)", f"{t_engine:.3f}"),
        ("engine tickets/s (both hooks)", f"{n / t_engine:,.0f}"),
        ("engine evaluations/s", f"{2 * n / t_engine:,.0f}"),
        ("avg actions per ticket", f"{n_actions / n:.2f}"),
        ("tickets with stale actions", f"{stale_fired / n:.0%}"),
        ("ratio engine / json.loads", f"{ratio:.2f}x"),
    )
    for label, value in rows:
        print(f"  {label:<36}{value:>14}")

    planned = Engine(engine.plugins, policy_from_data(PLANS))
    p_jobs = plan_jobs(jobs, random.Random(args.seed + 2))
    run_engine_plans(planned, p_jobs[: min(200, n)], roster)
    p_runs: list[float] = []
    while len(p_runs) < 3:
        t0 = time.perf_counter()
        run_engine_plans(planned, p_jobs, roster)
        p_runs.append(time.perf_counter() - t0)
        if sum(runs) + sum(p_runs) + p_runs[-1] > ENGINE_BUDGET_S:
            break
    t_plans = min(p_runs)
    p_ratio = t_plans / t_json
    print()
    print(
        f"engine with support plans (premium, enterprise follow-the-sun, organization override,"
        f" 10% plan fields, 3% upgrades): best of {len(p_runs)}"
        f" (runs: {', '.join(f'{r:.2f}s' for r in p_runs)})"
    )
    for label, value in (
        ("engine seconds with plans", f"{t_plans:.3f}"),
        ("engine tickets/s with plans", f"{n / t_plans:,.0f}"),
        ("engine tickets/s without plans", f"{n / t_engine:,.0f}"),
        ("ratio engine with plans / json.loads", f"{p_ratio:.2f}x"),
    ):
        print(f"  {label:<36}{value:>14}")

    sample = jobs[: min(PROFILE_SAMPLE, n)]
    profiler = cProfile.Profile()
    profiler.enable()
    run_engine(engine, sample, roster)
    profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(15)
        text = out.getvalue()
        for prefix in (sysconfig.get_paths()["purelib"], str(BENCH_DIR.parent)):
            text = text.replace(prefix + "/", "")  # ticketwarden/core/engine.py, pluggy/...
        lines = [ln for ln in text.splitlines() if ln.strip()]
        start = next((k for k, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
        print()
        print(
            f"cProfile, {len(sample)} tickets, top 15 by {order} time "
            f"(profiled total {getattr(stats, 'total_tt', 0.0):.2f}s):"
        )
        for ln in lines[start:]:
            print(f"  {ln}")

    print()
    try:
        from clock_section import run_clock_bench

        clock_goals = run_clock_bench()
    except Exception:  # the goal lines must still come out, and the script exits 0
        traceback.print_exc()
        clock_goals = [
            "goal clock_add_speed: error (target >= 1.00x) MISS",
            "goal clock_add_identical: error (target == 0) MISS",
        ]

    print()
    verdict = "PASS" if ratio <= ENGINE_TARGET else "MISS"
    print(f"goal engine_vs_json_loads: {ratio:.2f}x (target <= {ENGINE_TARGET:.2f}x) {verdict}")
    verdict = "PASS" if p_ratio <= ENGINE_TARGET else "MISS"
    print(
        f"goal engine_plans_vs_json_loads: {p_ratio:.2f}x (target <= {ENGINE_TARGET:.2f}x) "
        f"{verdict}"
    )
    for line in clock_goals:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
