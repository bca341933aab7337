"""HOURS-1: cross-check the business-hours clock against ``businesstimedelta``.

Deterministic (a seeded ``random.Random``), 10,000 random cases over four set-ups: Mon-Fri
09:00-17:00 and the same with a 12:00-13:00 lunch break, each in UTC and in Europe/Berlin, all
with the same explicit holiday dates given to both implementations. ``add`` and ``between``
must agree exactly (to the microsecond; no tolerance).

What we learned reading businesstimedelta 1.0.1 (``site-packages/businesstimedelta``), and how
each point is handled here:

* Time zones: it takes pytz zones and builds each boundary with ``tz.localize``, which is exact
  for wall times that exist once. Its ``HolidayRule`` ends a holiday at ``start + 1 day``
  without ``normalize``, i.e. 24 real hours later, which on a DST-change day is an hour off
  (it ends at 01:00 the next day in spring, 23:00 the same day in autumn). Our hours are
  09:00-17:00, far from both, so Europe/Berlin is compared as well as UTC.
* ``add(x, 0)`` for a closed ``x``: it returns the next opening; we return ``x`` (zero open
  time has elapsed at ``x`` already, which keeps ``add`` additive). The one narrow exclusion
  below checks its answer is exactly the next opening instead.
* ``Rule.difference`` drops microseconds (it rebuilds the result from ``days`` and
  ``seconds``); ``add`` keeps them. Random inputs are whole seconds; a separate small test
  pins the truncation down.
* ``Rule.difference`` sorts its arguments (``end < start`` gives a positive result); ours is
  zero then, by contract. Only ``start <= end`` is compared.
* ``HolidayRule.next_holiday`` looks at most 5 years ahead and then crashes (``TypeError`` from
  ``datetime.combine(None, ...)``), so the holiday list runs 6 years past the last input.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import businesstimedelta
import pytest
import pytz

from ticketwarden.core.clock import WeeklyCalendar

WORKDAYS = (0, 1, 2, 3, 4)
# 10,000 in all; fewer in Europe/Berlin, where businesstimedelta's pytz localize() is slow
CASES = {"UTC": 3000, "Europe/Berlin": 2000}
FIRST, LAST = date(2025, 1, 1), date(2028, 12, 31)  # inputs fall in these years


def _holidays(rng: random.Random) -> frozenset[date]:
    """Fixed dates (New Year, Christmas) plus ~20 random dates a year, until 6 years after the
    inputs (see the module docstring for why)."""
    dates: set[date] = set()
    for year in range(FIRST.year - 1, LAST.year + 7):
        dates |= {date(year, 1, 1), date(year, 12, 25), date(year, 12, 26)}
        start = date(year, 1, 1).toordinal()
        dates |= {date.fromordinal(start + rng.randrange(365)) for _ in range(20)}
    return frozenset(dates)


def _setup(zone: str, lunch: bool, closed: frozenset[date]) -> tuple[WeeklyCalendar, Any]:
    hours = [(time(9), time(12)), (time(13), time(17))] if lunch else [(time(9), time(17))]
    ours = WeeklyCalendar(zone, {d: hours for d in WORKDAYS}, closed_dates=closed)
    tz = pytz.timezone(zone)
    rules: list[object] = [
        businesstimedelta.WorkDayRule(
            start_time=time(9), end_time=time(17), working_days=list(WORKDAYS), tz=tz
        ),
        businesstimedelta.HolidayRule(closed, tz=tz),
    ]
    if lunch:
        rules.append(
            businesstimedelta.LunchTimeRule(
                start_time=time(12), end_time=time(13), working_days=list(WORKDAYS), tz=tz
            )
        )
    return ours, businesstimedelta.Rules(rules)


def _start(rng: random.Random, zone: str) -> datetime:
    """A whole-second instant; 30 % exactly on a wall-clock boundary (open, lunch, close,
    midnight), where off-by-one conventions show."""
    days = (LAST - FIRST).days
    if rng.random() < 0.3:
        day = FIRST + timedelta(days=rng.randrange(days))
        wall = rng.choice((time(0), time(9), time(12), time(13), time(17)))
        local: datetime = pytz.timezone(zone).localize(datetime.combine(day, wall))
        return local.astimezone(UTC)
    return datetime.combine(FIRST, time(), UTC) + timedelta(seconds=rng.randrange(days * 86400))


def _duration(rng: random.Random) -> timedelta:
    """Whole seconds: often whole hours (to land exactly on closing times), sometimes zero."""
    roll = rng.random()
    if roll < 0.05:
        return timedelta(0)
    if roll < 0.45:
        return timedelta(hours=rng.randrange(1, 41))
    return timedelta(seconds=rng.randrange(1, 40 * 3600))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
@pytest.mark.parametrize("lunch", [False, True], ids=["09-17", "09-12+13-17"])
def test_add_and_between_match_businesstimedelta(zone: str, lunch: bool) -> None:
    """HOURS-1: same schedule and holidays, same answers, on thousands of random cases."""
    rng = random.Random(f"crosscheck-{zone}-{lunch}")
    ours, theirs = _setup(zone, lunch, _holidays(rng))
    compared = 0
    for _ in range(CASES[zone]):
        start, duration = _start(rng, zone), _duration(rng)
        expected = start + businesstimedelta.BusinessTimeDelta(theirs, timedelta=duration)
        got = ours.add(start, duration)
        if duration == timedelta(0) and not ours.is_open(start):
            # The one documented difference (module docstring): theirs counts from the next
            # opening even for zero; ours returns start. Check theirs is that opening exactly.
            opening = ours.add(start, timedelta(microseconds=1)) - timedelta(microseconds=1)
            assert (got, expected) == (start, opening), (start, duration)
        else:
            assert got == expected, (start, duration, got, expected)
            compared += 1

        end = start + timedelta(seconds=rng.randrange(0, 7 * 86400))
        for stop in (end, got):
            assert ours.between(start, stop) == theirs.difference(start, stop).timedelta, (
                start,
                stop,
            )
    assert compared > 0.9 * CASES[zone]


def test_businesstimedelta_difference_drops_microseconds() -> None:
    """Why the random inputs are whole seconds: their difference() truncates, ours is exact."""
    ours, theirs = _setup("UTC", False, frozenset({date(2026, 12, 25)}))
    start = datetime(2026, 3, 2, 10, tzinfo=UTC)
    end = start + timedelta(hours=1, microseconds=500)
    assert ours.between(start, end) == timedelta(hours=1, microseconds=500)
    assert theirs.difference(start, end).timedelta == timedelta(hours=1)
    # add keeps microseconds on both sides
    later = start + businesstimedelta.BusinessTimeDelta(
        theirs, timedelta=timedelta(microseconds=1500)
    )
    assert ours.add(start, timedelta(microseconds=1500)) == later
