"""HOURS-1: follow-the-sun (union) calendars.

Known examples first (the 2026 weeks in which the US and the EU change clocks on different
dates, a holiday only one region has), then Hypothesis properties over random unions of two or
three random regional calendars, cross-checked against a brute-force count: minute by minute,
is any region open? The regions' open intervals for the oracle are built from zoneinfo and the
``holidays`` package directly (``_wall_instant`` from ``test_clock``), not from the calendar code.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ticketwarden.core.clock import (
    END_OF_DAY,
    Pause,
    RegionConfig,
    UnionCalendar,
    UnionCalendarConfig,
    WeeklyCalendar,
    due,
    elapsed,
)

from .test_clock import DST_DAYS, ZONES, Spec, _wall_instant, weeks

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
US = timedelta(microseconds=1)
EIGHT_TO_SIX = {d: [(time(8), time(18))] for d in range(5)}


@pytest.fixture(scope="module")
def berlin_new_york() -> UnionCalendar:
    """08:00-18:00 Berlin on German holidays plus 08:00-18:00 New York on US holidays."""
    return UnionCalendar(
        [
            WeeklyCalendar("Europe/Berlin", EIGHT_TO_SIX, "DE"),
            WeeklyCalendar("America/New_York", EIGHT_TO_SIX, "US"),
        ]
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("monday", "hours_a_day", "why"),
    [
        (date(2026, 3, 2), 16, "CET + EST: 07:00-23:00 UTC"),
        (date(2026, 3, 9), 15, "CET + EDT (US changed on 8 March): 07:00-22:00 UTC"),
        (date(2026, 3, 23), 15, "still CET + EDT"),
        (date(2026, 4, 13), 16, "CEST + EDT (EU changed on 29 March): 06:00-22:00 UTC"),
    ],
)
def test_union_hours_across_the_2026_dst_changes(
    berlin_new_york: UnionCalendar, monday: date, hours_a_day: int, why: str
) -> None:
    start = datetime.combine(monday, time(), UTC)
    for day in range(5):
        a = start + timedelta(days=day)
        assert berlin_new_york.between(a, a + timedelta(days=1)) == hours_a_day * H, (why, day)
    assert berlin_new_york.between(start + timedelta(days=5), start + timedelta(days=7)) == (
        timedelta(0)
    )


def test_a_holiday_only_one_region_has_leaves_the_other_open(
    berlin_new_york: UnionCalendar,
) -> None:
    # Good Friday 2026: a German holiday, not a US federal one; New York is open 12-22 UTC.
    friday = utc(2026, 4, 3)
    assert berlin_new_york.between(friday, friday + timedelta(days=1)) == 10 * H
    assert not berlin_new_york.is_open(utc(2026, 4, 3, 11, 59))
    assert berlin_new_york.is_open(utc(2026, 4, 3, 12))
    # Independence Day observed (Friday 3 July 2026): only Berlin, 06:00-16:00 UTC
    assert berlin_new_york.between(utc(2026, 7, 3), utc(2026, 7, 4)) == 10 * H
    # 2 h on Thursday evening, then 6 h of New York's Good Friday
    assert berlin_new_york.add(utc(2026, 4, 2, 20), 8 * H) == utc(2026, 4, 3, 18)


def test_overlapping_hours_count_once(berlin_new_york: UnionCalendar) -> None:
    # 14:00-17:00 UTC on 2 March both offices are open: three hours, not six
    assert berlin_new_york.between(utc(2026, 3, 2, 14), utc(2026, 3, 2, 17)) == 3 * H
    assert berlin_new_york.day_length == 10 * H  # the longest region day, unless configured


def test_union_of_one_region_is_that_region() -> None:
    region = WeeklyCalendar("Europe/Berlin", EIGHT_TO_SIX, "DE")
    union = UnionCalendar([WeeklyCalendar("Europe/Berlin", EIGHT_TO_SIX, "DE")])
    for start in (utc(2026, 3, 27, 16), utc(2026, 12, 23, 9), utc(2025, 10, 24, 12)):
        for d in (H, 10 * H, 37 * H + 5 * MIN):
            assert union.add(start, d) == region.add(start, d)
            assert union.between(start, start + 9 * d) == region.between(start, start + 9 * d)


def test_union_across_a_year_end(berlin_new_york: UnionCalendar) -> None:
    # Thursday 31 Dec 2026: New York is open until 23:00 UTC (30 min left at 22:30); 1 Jan is a
    # holiday in both, then the weekend: the other 30 min from Monday 4 Jan 07:00 UTC (Berlin)
    end = berlin_new_york.add(utc(2026, 12, 31, 22, 30), H)
    assert end == utc(2027, 1, 4, 7, 30)
    assert berlin_new_york.between(utc(2026, 12, 31, 22), end) == H + 30 * MIN


def test_union_config_builds_once_and_validates() -> None:
    config = UnionCalendarConfig(
        regions=(
            RegionConfig(timezone="Europe/Berlin", holidays_country="de"),
            RegionConfig(timezone="America/New_York", holidays_country="US"),
        )
    )
    assert config.build() is config.build()
    assert config.timezone == "Europe/Berlin"
    assert config.regions[0].holidays_country == "DE"
    with pytest.raises(ValidationError, match="needs at least one region"):
        UnionCalendarConfig(regions=())
    with pytest.raises(ValidationError, match="at least one weekday needs open hours"):
        RegionConfig(timezone="UTC", hours={"mon": []})
    with pytest.raises(ValidationError, match="timezone"):
        RegionConfig.model_validate({"hours": {"mon": ["08:00-18:00"]}})
    with pytest.raises(ValueError, match="at least one region"):
        UnionCalendar([])


# --------------------------------------------------------------------------------------------
# Properties and the brute-force oracle
# --------------------------------------------------------------------------------------------


@st.composite
def regions(draw: st.DrawFn) -> Spec:
    zone = draw(st.sampled_from(sorted(ZONES)))
    country, subdivision = ZONES[zone] if draw(st.booleans()) else (None, None)
    closed = frozenset(draw(st.sets(st.dates(date(2025, 12, 1), date(2026, 12, 31)), max_size=20)))
    return Spec(zone, draw(weeks()), country, subdivision, closed)


@st.composite
def unions(draw: st.DrawFn) -> tuple[UnionCalendar, list[Spec]]:
    specs = draw(st.lists(regions(), min_size=2, max_size=3))
    calendar = UnionCalendar(
        [WeeklyCalendar(s.zone, s.week, s.country, s.subdivision, s.closed) for s in specs]
    )
    return calendar, specs


@functools.cache
def _holidays(country: str, subdivision: str | None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision, years=range(2025, 2028))


def _open_intervals(spec: Spec, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """A region's open intervals around [start, end), from zoneinfo and holidays directly."""
    zone = ZoneInfo(spec.zone)
    out = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date() + timedelta(days=1):
        closed = day in spec.closed or (
            spec.country is not None and day in _holidays(spec.country, spec.subdivision)
        )
        for a, b in [] if closed else spec.week.get(day.weekday(), []):
            lo = _wall_instant(zone, day, a)
            hi = (
                _wall_instant(zone, day + timedelta(days=1), time())
                if b == END_OF_DAY
                else _wall_instant(zone, day, b)
            )
            if hi > lo:
                out.append((lo, hi))
        day += timedelta(days=1)
    return out


def _open_minutes(specs: list[Spec], start: datetime, minutes: int) -> list[bool]:
    """For each minute from ``start``: is any region open at its first instant?"""
    intervals = [iv for spec in specs for iv in _open_intervals(spec, start, start + minutes * MIN)]
    flags = []
    for i in range(minutes):
        at = start + i * MIN
        flags.append(any(lo <= at < hi for lo, hi in intervals))
    return flags


# whole minutes; about half of them in the two weeks around the 2026 spring DST changes
minute_starts = st.one_of(
    st.integers(0, 390 * 24 * 60).map(lambda m: utc(2025, 12, 1) + m * MIN),
    st.sampled_from(
        sorted({d for days in DST_DAYS.values() for d in days if d.year == 2026})
    ).flatmap(
        lambda day: st.integers(-3 * 24 * 60, 1 * 24 * 60).map(
            lambda m: datetime.combine(day, time(), UTC) + m * MIN
        )
    ),
)
BRUTE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@BRUTE
@given(unions(), minute_starts, st.integers(0, 4 * 24 * 60))
def test_union_matches_a_minute_by_minute_count(
    cal: tuple[UnionCalendar, list[Spec]], start: datetime, minutes: int
) -> None:
    """between() equals the number of minutes in which some region is open (all boundaries of
    the random schedules fall on whole minutes), and add() ends exactly after the n-th open
    minute."""
    calendar, specs = cal
    flags = _open_minutes(specs, start, minutes)
    assert calendar.between(start, start + minutes * MIN) == sum(flags) * MIN
    opened = [i for i, is_open in enumerate(flags) if is_open]
    for n in sorted({1, len(opened) // 2, len(opened)} - {0}) if opened else ():
        assert calendar.add(start, n * MIN) == start + (opened[n - 1] + 1) * MIN
    for i in (0, minutes // 3, minutes - 1) if minutes else ():
        assert calendar.is_open(start + i * MIN) == flags[i]


instants = st.integers(0, 390 * 24 * 3600 * 10**6).map(
    lambda us: utc(2025, 12, 1) + timedelta(microseconds=us)
)
durations = st.timedeltas(timedelta(0), timedelta(days=15))
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(unions(), instants, durations)
def test_union_add_gives_exactly_the_duration_and_is_earliest(
    cal: tuple[UnionCalendar, list[Spec]], start: datetime, d: timedelta
) -> None:
    calendar, _ = cal
    end = calendar.add(start, d)
    assert calendar.between(start, end) == d
    if d:
        assert calendar.between(start, end - US) < d
        assert calendar.is_open(end - US)


@FAST
@given(unions(), instants, instants, instants, durations, durations)
def test_union_is_additive_and_monotonic(
    cal: tuple[UnionCalendar, list[Spec]],
    x: datetime,
    y: datetime,
    z: datetime,
    a: timedelta,
    b: timedelta,
) -> None:
    calendar, _ = cal
    p, q, r = sorted((x, y, z))
    assert calendar.between(p, r) == calendar.between(p, q) + calendar.between(q, r)
    assert calendar.add(calendar.add(p, a), b) == calendar.add(p, a + b)
    assert calendar.add(p, min(a, b)) <= calendar.add(q, max(a, b))
    # the union is open at least as long as each region, at most as long as all together
    regions = cal[0].regions
    spans = [region.between(p, r) for region in regions]
    assert max(spans) <= calendar.between(p, r) <= sum(spans, timedelta(0))


@FAST
@given(unions(), st.timedeltas(timedelta(days=-1), timedelta(days=10)), durations)
def test_union_due_and_elapsed_agree_with_pauses(
    cal: tuple[UnionCalendar, list[Spec]], offset: timedelta, d: timedelta
) -> None:
    """HOURS-1 on a union: due() is the first instant at which elapsed() reaches the target."""
    calendar, _ = cal
    start = utc(2026, 3, 20) + offset
    pauses = [Pause(utc(2026, 3, 21), utc(2026, 3, 24)), Pause(utc(2026, 3, 23), utc(2026, 3, 26))]
    at = due(calendar, start, d, pauses)
    assert at is not None
    assert elapsed(calendar, start, at, pauses) == d
    if d:
        assert elapsed(calendar, start, at - US, pauses) < d
