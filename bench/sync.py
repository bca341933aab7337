"""Benchmark: one scheduled-sync pass over a rate-limited desk of N generated tickets.

``python bench/sync.py [--tickets 20000] [--small 5000] [--rate 700] [--seed 1]``

1. **The desk** (``bench/sync_desk.py``, modelled on ``tests/toydesk.py``): an in-process
   emulator whose change feed returns whole tickets with their comments, 500 per page, with
   Zendesk-style rate-limit headers and a server-enforced limit of R requests a minute (429 +
   ``Retry-After`` beyond it), on a ``FakeClock`` shared with the connector's ``DeskClient``
   (``Runtime`` clock/sleep/wall_clock). The connector's budget is the plan:
   ``RateBudget(requests_per_minute=R, share=1.0)``. It batches every desk-changing action of
   one evaluation (fields, tags, status, escalation and all comments) into one ``PATCH``.
2. **The tickets**: N generated deterministically from the seed — mostly complete, open,
   recently answered tickets whose priority already matches their severity (the policy does
   nothing), new ones without comments yet, incomplete ones (INTAKE-1/2 hold: one write),
   severity 1 (ESC-1 escalation + SEV1-1 contact request: one write), tickets waiting on the
   customer for 2-6 days (a CLOSE-3 reminder timer: one write) and resolved ones (CLOSE-5).
3. **The pass**: one ``DeskSync.run()`` with ``SyncOptions(now=...)`` against a fresh SQLite
   store (WAL, ``synchronous = FULL``) in a temporary directory — on tmpfs (``/dev/shm``) when
   there is one, so wall time shows the job's CPU cost; ``--db-dir DIR`` for a disk, and the
   output estimates the disk's fsync cost from the pass's commit count — the default policy
   (``unknown_organization = "allow"``: the desk has no roster), in a fresh subprocess per size
   so peak RSS (``ru_maxrss``) is the pass's own; ``--small`` and ``--tickets`` are both run.
4. **Printed**: the request breakdown (feed pages, ticket reads by the ``DeskSync`` method that
   asked, candidate-search pages, writes), API calls against the lower bound, 429s after the
   first request, throughput against the rate-limit bound, peak memory at both sizes (and RSS
   along the pass), tickets per second of wall time, the pass's ``DeskReport`` — and
   correctness checks: the writes the policy asks for that the pass did not make, and timers
   still due after it.

Lower bound (how it is defined): ``ceil((N + E) / page)`` feed pages + ``W`` writes, where

* ``E`` = tickets the pass itself changed while the cursor was behind them: the feed delivers
  them again at its end (their update time moved), and the cursor has to pass them;
* ``W`` = tickets for which the policy asks at least one desk-changing action (anything but
  ``record``/``remember``) — one request each for a connector that batches. It comes from an
  I/O-free oracle: the engine run over every generated ticket as a first pass meets it
  (``created`` for an open ticket; its facts as of its last update for a done one), then
  ``on_stale`` where a timer is already due. The tickets the pass wrote are printed beside it;
* no other reads are unavoidable here: the feed carries whole tickets with comments and the
  desk has no roster. A timer's re-read of a ticket the same pass read from the feed minutes
  earlier is *not* counted as needed (the "lenient" row counts it, for comparison).

Ends with exactly four goal lines: sync_api_calls_vs_bound, sync_429s_after_headers,
sync_rate_use, sync_peak_memory. Always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
try:
    import ticketwarden  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without the package installed
    sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

API_TARGET = 1.10
RATE_USE_TARGET = 0.90
MEMORY_TARGET_MB = 200.0
DEFAULT_RATE = 700
CHILD_TIMEOUT_S = 600

# --- One pass (runs in a child process) -----------------------------------------------------------


def _rss_mb() -> float:
    """Current resident set size of this process (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _classify(method: str, path: str, query: str) -> str:
    if method == "GET" and path == "/api/changes":
        return "feed page"
    if method == "GET" and path == "/api/search":
        return "candidate search page"
    if method == "GET" and path.startswith("/api/tickets/"):
        return "ticket read"
    if method == "GET" and path == "/api/tickets":
        return "follow-up lookup"
    if method in ("PATCH", "POST", "PUT"):
        return "write"
    return f"{method} {path}"


def policy_oracle(
    factory: Any, connector: Any, engine: Any, now: Any
) -> tuple[set[str], Counter[str]]:
    """What the policy asks of this desk as of ``now``, evaluated without any I/O: per ticket,
    as a first pass meets it — ``created`` for an open ticket, its facts as of the last update
    for a done one — followed by ``on_stale`` if a timer is already due. Returns the tickets
    with at least one desk-changing action (one write each for a batching connector) and
    those actions by rule."""
    from ticketwarden.core.model import Event, EventKind

    needed: set[str] = set()
    by_rule: Counter[str] = Counter()
    for i in range(factory.n):
        ticket = connector._ticket(factory.record(i))
        if ticket.status.is_done:
            seen = Event(id=f"seen:{ticket.id}", kind=EventKind.STALE, at=ticket.updated_at)
            actions = list(engine.evaluate(seen, ticket, None, now).actions)
        else:
            created = Event(id=f"created:{ticket.id}", kind=EventKind.CREATED, at=ticket.created_at)
            first = engine.evaluate(created, ticket, None, now)
            actions = list(first.actions)
            if first.state.next_due is not None and first.state.next_due <= now:
                stale = Event(id=f"stale:{ticket.id}", kind=EventKind.STALE, at=now)
                actions += engine.evaluate(stale, first.projected, first.state, now).actions
        changing = [a for a in actions if a.kind not in ("record", "remember")]
        if changing:
            needed.add(ticket.id)
            by_rule.update(a.rule_id for a in changing)
    return needed, by_rule


async def _one_pass(n: int, rate: int, seed: int, db_dir: str) -> dict[str, Any]:
    from sync_desk import PAGE_SIZE, SyncBenchConnector, SyncBenchEmulator, TicketFactory

    from ticketwarden.core.engine import Engine
    from ticketwarden.core.policy import policy_from_data
    from ticketwarden.core.registry import load_plugins
    from ticketwarden.core.store import Store
    from ticketwarden.core.sync import DeskSync, SyncOptions
    from ticketwarden.testing.emulator import FakeClock

    setup_started = time.perf_counter()
    clock = FakeClock()
    now = clock.now()
    factory = TicketFactory(n, now, seed)
    emulator = SyncBenchEmulator(factory, clock=clock, rate_limit=rate)

    class CountingStore(Store):
        """The store unchanged; counts committed write transactions (each one an fsync of the
        WAL under ``synchronous = FULL``)."""

        commits = 0

        @contextlib.contextmanager
        def transaction(self) -> Iterator[Any]:
            with super().transaction() as tx:
                yield tx
            CountingStore.commits += 1

    store = CountingStore(f"sqlite:///{db_dir}/ticketwarden.db")
    CountingStore.commits = 0
    engine = Engine(
        load_plugins(), policy_from_data({"contacts": {"unknown_organization": "allow"}})
    )
    setup_s = time.perf_counter() - setup_started

    writing_tickets: set[str] = set()
    rss_samples: list[tuple[int, float]] = []
    marks: dict[str, int] = {}

    def on_action(desk: str, ticket: Any, action: Any, result: Any) -> None:
        if action.kind not in ("record", "remember"):
            writing_tickets.add(ticket.id)

    def on_progress(desk: str, read: int) -> None:
        if read % PAGE_SIZE == 0:
            rss_samples.append((read, _rss_mb()))

    class InstrumentedSync(DeskSync):
        """DeskSync unchanged; only notes where the catch-up ends and the timers begin."""

        async def _timers(self, *, candidates: bool = True) -> None:
            marks["timers_start"] = len(emulator.requests)
            marks["feed_items"] = connector.feed_items
            rss_samples.append((self.report.tickets_read, _rss_mb()))
            await super()._timers(candidates=candidates)

    baseline_mb = _rss_mb()
    connector = SyncBenchConnector.on(emulator, clock, rate)
    async with connector:
        sync = InstrumentedSync(
            connector,
            engine,
            store,
            SyncOptions(now=now),
            on_action=on_action,
            on_progress=on_progress,
        )
        sim_start = clock.monotonic()
        wall_start = time.perf_counter()
        report = await sync.run()
        wall_s = time.perf_counter() - wall_start
        sim_s = clock.monotonic() - sim_start
    peak_mb = _peak_mb()

    log = emulator.requests
    kinds: Counter[str] = Counter()
    by_phase: Counter[tuple[str, str]] = Counter()
    timers_start = marks.get("timers_start", len(log))
    for index, entry in enumerate(log):
        kind = (
            "429 (retried)"
            if entry.status == 429
            else _classify(entry.method, entry.path, entry.query)
        )
        kinds[kind] += 1
        by_phase[("catch-up" if index < timers_start else "timers", kind)] += 1
    after_first_429 = sum(1 for entry in log[1:] if entry.status == 429)

    # correctness spot checks: timers still due after the pass; CLOSE-5 closes that never came
    left_due = len(store.due("bench", now, limit=10**9))
    day_ms = 86_400_000
    now_ms = int(now.timestamp() * 1000)
    resolved_due_not_closed = 0
    for i, kind in enumerate(emulator.kind):
        if kind != "resolved":
            continue
        record = emulator.record(factory.tid(i))
        generated = factory.record(i)
        if (
            record is not None
            and record["status"] == "solved"
            and generated["updated"] + 7 * day_ms <= now_ms
        ):
            resolved_due_not_closed += 1
    store.close()

    oracle_started = time.perf_counter()
    needed, needed_by_rule = policy_oracle(factory, connector, engine, now)
    oracle_s = time.perf_counter() - oracle_started
    missed = needed - writing_tickets
    extra = writing_tickets - needed
    missed_kinds = Counter(emulator.kind_of(t) for t in missed)
    extra_kinds = Counter(emulator.kind_of(t) for t in extra)

    feed_items = marks.get("feed_items", connector.feed_items)
    echoes = max(0, feed_items - n)
    pages_needed = math.ceil((n + echoes) / PAGE_SIZE)
    writes_needed = len(needed)
    timer_reads = connector.reads_by_caller.get("_stale", 0)
    return {
        "n": n,
        "rate": rate,
        "page": PAGE_SIZE,
        "setup_s": setup_s,
        "wall_s": wall_s,
        "sim_s": sim_s,
        "requests": len(log),
        "kinds": dict(kinds),
        "by_phase": {f"{p}|{k}": v for (p, k), v in by_phase.items()},
        "commits": CountingStore.commits,
        "db_dir": db_dir,
        "reads_by_caller": dict(connector.reads_by_caller),
        "apply_by_caller": dict(connector.apply_by_caller),
        "apply_calls": connector.apply_calls,
        "apply_calls_writing": connector.apply_calls_writing,
        "emulator_changed_writes": emulator.changed_writes,
        "feed_pages": connector.feed_pages,
        "feed_items": connector.feed_items,
        "search_items": connector.search_items,
        "echoes": echoes,
        "pages_needed": pages_needed,
        "writes_needed": writes_needed,
        "writes_made_tickets": len(writing_tickets),
        "needed_by_rule": dict(sorted(needed_by_rule.items())),
        "missed": len(missed),
        "missed_kinds": dict(missed_kinds),
        "extra": len(extra),
        "extra_kinds": dict(extra_kinds),
        "oracle_s": oracle_s,
        "timer_reads": timer_reads,
        "429_after_first": after_first_429,
        "client_rate_limited": report.rate_limited,
        "baseline_mb": baseline_mb,
        "peak_mb": peak_mb,
        "rss_samples": rss_samples,
        "left_due": left_due,
        "resolved_due_not_closed": resolved_due_not_closed,
        "desk_kinds": dict(emulator.kinds),
        "report": {
            "tickets_read": report.tickets_read,
            "events": report.events,
            "timers": report.timers,
            "actions_by_rule": dict(sorted(report.actions_by_rule.items())),
            "outcomes": dict(report.outcomes),
            "failures": len(report.failures),
            "first_failures": report.failures[:3],
            "api_calls": report.api_calls,
            "rate_limited": report.rate_limited,
            "skipped": report.skipped,
            "cursor": report.cursor,
        },
    }


def child(n: int, rate: int, seed: int, db_parent: str | None) -> int:
    with tempfile.TemporaryDirectory(prefix="tw-bench-sync-", dir=db_parent) as db_dir:
        result = asyncio.run(_one_pass(n, rate, seed, db_dir))
    print(json.dumps(result))
    return 0


# --- The parent: run both sizes, print ------------------------------------------------------------


def default_db_parent() -> str | None:
    """tmpfs when there is one: the goals do not depend on fsync, and the pass's wall time
    then shows the job's CPU cost; ``--db-dir`` puts the store on a disk instead."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def commit_cost_ms(db_parent: str | None, commits: int = 200) -> float:
    """Milliseconds of one small committed store transaction (a ticket's state) in
    ``db_parent``: on a disk that is mostly the fsync ``synchronous = FULL`` asks for."""
    from datetime import UTC, datetime

    from ticketwarden.core.context import TicketState
    from ticketwarden.core.model import Status
    from ticketwarden.core.store import Store

    state = TicketState(created_seen=True, status=Status.OPEN, next_due=datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix="tw-bench-commit-", dir=db_parent) as db_dir:
        store = Store(f"sqlite:///{db_dir}/ticketwarden.db")
        try:
            started = time.perf_counter()
            for i in range(commits):
                with store.transaction() as tx:
                    store.save_state(tx, "bench", str(i), state)
            return (time.perf_counter() - started) / commits * 1000.0
        finally:
            store.close()


def run_size(n: int, rate: int, seed: int, db_dir: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--child", str(n), "--rate", str(rate), "--seed", str(seed)),
        *(("--db-dir", db_dir) if db_dir else ()),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(
            f"the {n}-ticket pass failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def _ratio(r: dict[str, Any], lenient: bool = False) -> float:
    bound = r["pages_needed"] + r["writes_needed"] + (r["timer_reads"] if lenient else 0)
    return r["requests"] / bound if bound else float("inf")


def print_size(r: dict[str, Any]) -> None:
    n, page = r["n"], r["page"]
    minutes = r["sim_s"] / 60.0
    use = r["requests"] / (minutes * r["rate"]) if minutes > 0 else float("inf")
    print(
        f"{n:,} tickets: one pass, page {page}, limit {r['rate']}/min "
        f"(wall {r['wall_s']:.1f}s, setup {r['setup_s']:.1f}s, oracle {r['oracle_s']:.1f}s, "
        f"simulated {minutes:.2f} min)"
    )
    print("  desk mix: " + ", ".join(f"{k} {v}" for k, v in sorted(r["desk_kinds"].items())))
    print(f"  {'requests by kind':<44}{'catch-up':>10}{'timers':>10}{'total':>10}")
    phases = r["by_phase"]
    for kind in sorted(r["kinds"], key=lambda k: -r["kinds"][k]):
        c = phases.get(f"catch-up|{kind}", 0)
        t = phases.get(f"timers|{kind}", 0)
        print(f"  {kind:<44}{c:>10}{t:>10}{c + t:>10}")
    print(f"  {'all requests':<44}{'':>10}{'':>10}{r['requests']:>10}")
    reads = r["reads_by_caller"]
    if reads:
        where = {
            "_process": "DeskSync._process: feed ticket without comments",
            "_stale": "DeskSync._stale: due timer / unknown candidate",
            "_evaluate": "DeskSync._evaluate: after a 409 conflict",
            "_not_yet_applied": "DeskSync._not_yet_applied: pending ledger entry",
        }
        print("  ticket reads by caller (connector.read_ticket):")
        for caller, count in sorted(reads.items(), key=lambda kv: -kv[1]):
            print(f"    {where.get(caller, caller):<54}{count:>8}")
    writes = r["apply_by_caller"]
    if writes:
        print(
            "  apply() calls with desk changes by caller: "
            + ", ".join(f"{k} {v}" for k, v in sorted(writes.items()))
            + f"; write requests that changed the desk: {r['emulator_changed_writes']}"
        )
    print(
        f"  feed: {r['feed_pages']} pages, {r['feed_items']} items "
        f"({r['echoes']} re-delivered: tickets the pass changed behind the cursor); "
        f"candidate search returned {r['search_items']} tickets"
    )
    bound = r["pages_needed"] + r["writes_needed"]
    print(
        "  policy oracle (engine only, no I/O): desk-changing actions by rule: "
        + ", ".join(f"{k} {v}" for k, v in r["needed_by_rule"].items())
    )
    print(
        f"  tickets written: needed {r['writes_needed']}, written by the pass "
        f"{r['writes_made_tickets']}; missed {r['missed']} "
        f"{r['missed_kinds'] or ''}, not needed {r['extra']} {r['extra_kinds'] or ''}"
    )
    rows = (
        ("pages needed ceil((N+E)/page)", f"{r['pages_needed']}"),
        ("writes needed (tickets the policy changes)", f"{r['writes_needed']}"),
        ("lower bound", f"{bound}"),
        ("API calls used", f"{r['requests']}"),
        ("calls / bound", f"{_ratio(r):.2f}x"),
        ("calls / bound, timer re-reads counted", f"{_ratio(r, lenient=True):.2f}x"),
        ("429s after the first request", f"{r['429_after_first']}"),
        ("requests / (sim. minutes x R)", f"{use:.2f}"),
        ("tickets / s (wall)", f"{n / r['wall_s']:,.0f}" if r["wall_s"] > 0 else "-"),
        (
            "requests / wall minute (CPU-bound capacity)",
            f"{r['requests'] / (r['wall_s'] / 60):,.0f}" if r["wall_s"] > 0 else "-",
        ),
        ("RSS before the pass (MB)", f"{r['baseline_mb']:.0f}"),
        ("peak RSS (MB)", f"{r['peak_mb']:.0f}"),
    )
    for label, value in rows:
        print(f"  {label:<44}{value:>14}")
    kinds = r["kinds"]
    reads = r["reads_by_caller"]
    writes_sent = kinds.get("write", 0)
    print(
        f"  over the bound: {r['requests'] - bound:+d} = ticket reads {kinds.get('ticket read', 0)}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(reads.items())) + ")" if reads else "")
        + f" + search pages {kinds.get('candidate search page', 0)}"
        + f" + feed pages over need {kinds.get('feed page', 0) - r['pages_needed']}"
        + f" + 429s {kinds.get('429 (retried)', 0)}"
        + f" + writes sent {writes_sent} - writes needed {r['writes_needed']}"
        + (f" ({r['missed']} tickets the policy changes were not written)" if r["missed"] else "")
    )
    samples = r["rss_samples"]
    if samples:
        step = max(1, len(samples) // 8)
        shown = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
        print(
            "  RSS during the pass (tickets read: MB): "
            + ", ".join(f"{t}: {mb:.0f}" for t, mb in shown)
        )
    rep = r["report"]
    print(
        f"  DeskReport: tickets_read {rep['tickets_read']}, events {rep['events']}, "
        f"timers {rep['timers']}, api_calls {rep['api_calls']}, rate_limited "
        f"{rep['rate_limited']}, failures {rep['failures']}, skipped {rep['skipped']}"
    )
    print(
        "    actions by rule: "
        + (", ".join(f"{k} {v}" for k, v in rep["actions_by_rule"].items()) or "none")
    )
    print("    outcomes: " + (", ".join(f"{k} {v}" for k, v in rep["outcomes"].items()) or "none"))
    for failure in rep["first_failures"]:
        print(f"    failure: {failure}")
    print(
        f"  checks: timers still due after the pass {r['left_due']}; resolved tickets past "
        f"CLOSE-5's 7 days still not closed {r['resolved_due_not_closed']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20000)
    parser.add_argument("--small", type=int, default=5000)
    parser.add_argument(
        "--rate", type=int, default=DEFAULT_RATE, help="requests/min the desk allows"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--db-dir",
        default=None,
        help="where the temporary SQLite store is created (default: the system temp dir)",
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(max(1, args.child), args.rate, args.seed, args.db_dir)

    t_start = time.perf_counter()
    db_parent = args.db_dir or default_db_parent()
    where = db_parent or tempfile.gettempdir()
    tmpfs = where == "/dev/shm"
    print(
        f"store: SQLite (WAL, synchronous=FULL) in a temporary directory under {where}"
        + (" (tmpfs: commits cost no fsync; --db-dir DIR for a disk)" if tmpfs else "")
    )
    print()
    large_n = max(1, args.tickets)
    small_n = max(1, args.small)
    results: dict[str, dict[str, Any] | None] = {"small": None, "large": None}
    for label, n in (("small", small_n), ("large", large_n)):
        try:
            results[label] = run_size(n, args.rate, args.seed, db_parent)
            print_size(results[label])  # type: ignore[arg-type]
        except Exception:
            traceback.print_exc()
        print()

    small, large = results["small"], results["large"]
    if small and large:
        print(
            f"peak memory: {small['n']:,} tickets {small['peak_mb']:.0f} MB, "
            f"{large['n']:,} tickets {large['peak_mb']:.0f} MB "
            f"(growth {large['peak_mb'] - small['peak_mb']:+.0f} MB for "
            f"{large['n'] - small['n']:+,} tickets; before the pass "
            f"{small['baseline_mb']:.0f} / {large['baseline_mb']:.0f} MB)"
        )
    if large:
        try:
            here = commit_cost_ms(db_parent)
            disk_dir = tempfile.gettempdir()
            disk = commit_cost_ms(disk_dir) if db_parent == "/dev/shm" else here
            fsync_s = large["commits"] * max(0.0, disk - here) / 1000.0
            print(
                f"store commits in the {large['n']:,}-ticket pass: {large['commits']:,} "
                f"({large['commits'] / max(1, large['report']['tickets_read']):.2f} per ticket "
                f"read); one commit costs {here:.2f} ms here and {disk:.2f} ms in {disk_dir}"
                + (
                    f" -> ~{fsync_s:.0f}s more there, about "
                    f"{large['n'] / (large['wall_s'] + fsync_s):,.0f} tickets/s"
                    if db_parent == "/dev/shm"
                    else ""
                )
            )
        except Exception:
            traceback.print_exc()
    print(f"total {time.perf_counter() - t_start:.1f}s")
    print()

    goals: list[str] = []
    if large:
        ratio = _ratio(large)
        goals.append(
            f"goal sync_api_calls_vs_bound: {ratio:.2f}x (target <= {API_TARGET:.2f}x) "
            f"{'PASS' if ratio <= API_TARGET else 'MISS'}"
        )
        count = large["429_after_first"]
        goals.append(
            f"goal sync_429s_after_headers: {count} (target == 0) "
            f"{'PASS' if count == 0 else 'MISS'}"
        )
        minutes = large["sim_s"] / 60.0
        use = large["requests"] / (minutes * large["rate"]) if minutes > 0 else 0.0
        goals.append(
            f"goal sync_rate_use: {use:.2f} (target >= {RATE_USE_TARGET:.2f}) "
            f"{'PASS' if use >= RATE_USE_TARGET else 'MISS'}"
        )
        peak = large["peak_mb"]
        goals.append(
            f"goal sync_peak_memory: {peak:.0f} MB (target < {MEMORY_TARGET_MB:.0f} MB) "
            f"{'PASS' if peak < MEMORY_TARGET_MB else 'MISS'}"
        )
    else:
        goals = [
            f"goal sync_api_calls_vs_bound: error (target <= {API_TARGET:.2f}x) MISS",
            "goal sync_429s_after_headers: error (target == 0) MISS",
            f"goal sync_rate_use: error (target >= {RATE_USE_TARGET:.2f}) MISS",
            f"goal sync_peak_memory: error (target < {MEMORY_TARGET_MB:.0f} MB) MISS",
        ]
    for line in goals:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
