"""Benchmark section: ``WeeklyCalendar.add`` against ``businesstimedelta`` on the same inputs.

The schedule is Mon-Fri 09:00-17:00 in Europe/Berlin with the German national holidays of
2024-2035 given to both implementations as the same explicit set of dates. businesstimedelta gets
a pytz zone (its ``localize`` API needs one); with 09:00-17:00 hours no interval touches a DST
change, where its pytz arithmetic would be off (see tests/test_clock_crosscheck.py).

Durations are 1 s to 40 h, i.e. up to 5 business days. Zero is left out on purpose: for a closed
start our ``add(x, 0)`` is ``x`` and businesstimedelta's is the next opening, a documented
difference of convention (see tests/test_clock_crosscheck.py).

``bench/engine.py`` imports :func:`run_clock_bench` after putting ``bench/`` on ``sys.path``;
``python bench/clock_section.py`` runs it on its own.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

try:
    from ticketwarden.core.clock import WeeklyCalendar
except ModuleNotFoundError:  # run as a script from a checkout: put the project root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ticketwarden.core.clock import WeeklyCalendar

import businesstimedelta
import holidays
import pytz

ZONE = "Europe/Berlin"
OPEN, CLOSE = clock_time(9), clock_time(17)
WORKDAYS = (0, 1, 2, 3, 4)


def _holiday_dates() -> frozenset[date]:
    return frozenset(holidays.country_holidays("DE", years=range(2024, 2036)).keys())


def _inputs(n: int, seed: int) -> list[tuple[datetime, timedelta]]:
    """n random (start, duration): starts anywhere in 2025-2029 (open or closed), whole
    seconds, aware UTC; durations 1 s to 40 business hours."""
    rng = random.Random(seed)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    span = 5 * 365 * 86400
    cases = []
    for _ in range(n):
        start = base + timedelta(seconds=rng.randrange(span))
        if rng.random() < 0.2:  # a fifth exactly on a local boundary (open, close, midnight)
            local = start.astimezone(pytz.timezone(ZONE)).replace(tzinfo=None)
            wall = rng.choice((OPEN, CLOSE, clock_time(0)))
            start = pytz.timezone(ZONE).localize(datetime.combine(local.date(), wall))
            start = start.astimezone(UTC)
        duration = timedelta(seconds=rng.randrange(1, 40 * 3600))
        cases.append((start, duration))
    return cases


def _best_of_3(func: Callable[[], list[datetime]]) -> tuple[float, list[datetime]]:
    best, result = float("inf"), []
    for _ in range(3):
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


def run_clock_bench(n: int = 20000, seed: int = 1) -> list[str]:
    """Time both implementations on the same n inputs; print a table; return the goal lines."""
    closed = _holiday_dates()
    ours = WeeklyCalendar(ZONE, {d: [(OPEN, CLOSE)] for d in WORKDAYS}, closed_dates=closed)
    tz = pytz.timezone(ZONE)
    theirs = businesstimedelta.Rules(
        [
            businesstimedelta.WorkDayRule(
                start_time=OPEN, end_time=CLOSE, working_days=list(WORKDAYS), tz=tz
            ),
            businesstimedelta.HolidayRule(closed, tz=tz),
        ]
    )
    cases = _inputs(n, seed)

    def run_ours() -> list[datetime]:
        add = ours.add
        return [add(start, duration) for start, duration in cases]

    def run_theirs() -> list[datetime]:
        delta = businesstimedelta.BusinessTimeDelta
        return [start + delta(theirs, timedelta=duration) for start, duration in cases]

    t_ours, r_ours = _best_of_3(run_ours)
    t_theirs, r_theirs = _best_of_3(run_theirs)
    mismatches = sum(a != b for a, b in zip(r_ours, r_theirs, strict=True))
    ratio = t_theirs / t_ours  # speed ours / theirs = time theirs / time ours

    print(f"clock add: {n} cases, Mon-Fri 09-17 {ZONE} + DE holidays, best of 3")
    print(f"  {'implementation':<22}{'seconds':>10}{'adds/s':>14}")
    print(f"  {'ticketwarden':<22}{t_ours:>10.3f}{n / t_ours:>14,.0f}")
    print(f"  {'businesstimedelta':<22}{t_theirs:>10.3f}{n / t_theirs:>14,.0f}")
    print(f"  ratio ours/theirs: {ratio:.2f}x, mismatches: {mismatches}")
    return [
        f"goal clock_add_speed: {ratio:.2f}x (target >= 1.00x) {'PASS' if ratio >= 1 else 'MISS'}",
        f"goal clock_add_identical: {mismatches} mismatches (target == 0) "
        f"{'PASS' if mismatches == 0 else 'MISS'}",
    ]


if __name__ == "__main__":
    for line in run_clock_bench():
        print(line)
