"""HOURS-1: business-hours clocks, pauses, spans and their configuration.

Known examples first (weekends, German holidays, closed dates, split days, 24×7, DST days,
pauses), then Hypothesis properties over random weekly schedules in three zones with DST, and
an independent day-by-day oracle for ``between``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from ticketwarden.core.clock import (
    END_OF_DAY,
    AlwaysOpen,
    BusinessCalendar,
    CalendarConfig,
    Pause,
    Span,
    WeeklyCalendar,
    due,
    elapsed,
    parse_span,
)

BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
US = timedelta(microseconds=1)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def office() -> BusinessCalendar:
    """The default policy calendar: Mon-Fri 08:00-18:00 Europe/Berlin, German holidays."""
    return CalendarConfig().build()


# --------------------------------------------------------------------------------------------
# Spans
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days", "seconds", "canonical"),
    [
        ("7d", 7, 0, "7d"),
        ("4h", 0, 4 * 3600, "4h"),
        ("90m", 0, 5400, "1h30m"),
        ("1h30m", 0, 5400, "1h30m"),
        ("2d4h", 2, 4 * 3600, "2d4h"),
        ("45s", 0, 45, "45s"),
        ("0m", 0, 0, "0s"),
        ("48h", 0, 48 * 3600, "48h"),
        (" 1d 2h 3m 4s ", 1, 7384, "1d2h3m4s"),
    ],
)
def test_parse_span_valid(text: str, days: int, seconds: int, canonical: str) -> None:
    span = parse_span(text)
    assert span == Span(days=days, seconds=seconds)
    assert str(span) == canonical
    assert parse_span(str(span)) == span


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration ''"),
        ("   ", "empty duration"),
        ("-4h", "negative duration '-4h'"),
        ("4x", "unknown unit 'x' in duration '4x'"),
        ("3 weeks", "unknown unit 'weeks'"),
        ("1.5h", "invalid duration '1.5h'"),
        ("4h3d", "invalid duration '4h3d'"),  # units out of order
        ("4h4h", "invalid duration '4h4h'"),
        ("h", "invalid duration 'h'"),
        ("4", "invalid duration '4'"),
        ("garbage", "invalid duration 'garbage'"),
    ],
)
def test_parse_span_invalid(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        parse_span(text)


def test_span_to_timedelta_depends_on_the_clock(office: BusinessCalendar) -> None:
    """ "1d" is 24 h on the 24×7 clock and one business day (10 h at 08-18) otherwise."""
    span = parse_span("1d2h")
    assert span.to_timedelta(AlwaysOpen().day_length) == timedelta(hours=26)
    assert office.day_length == timedelta(hours=10)
    assert span.to_timedelta(office.day_length) == timedelta(hours=12)


def test_span_as_pydantic_field() -> None:
    class Target(BaseModel):
        first: Span
        later: tuple[Span, ...] = ()

    target = Target.model_validate({"first": "90m", "later": ["1d", "2d4h"]})
    assert target.first == Span(seconds=5400)
    assert target.model_dump() == {"first": "1h30m", "later": ("1d", "2d4h")}
    assert target.model_dump_json() == '{"first":"1h30m","later":["1d","2d4h"]}'
    assert Target.model_validate_json(target.model_dump_json()) == target
    assert Target(first=Span(days=1)).first == Span(days=1)
    assert Target.model_json_schema()["properties"]["first"] == {"title": "First", "type": "string"}
    with pytest.raises(ValidationError, match="unknown unit 'y'"):
        Target.model_validate({"first": "3y"})
    with pytest.raises(ValidationError):
        Target.model_validate({"first": 5})
    with pytest.raises(ValueError, match="non-negative"):
        Span(days=-1)


# --------------------------------------------------------------------------------------------
# Known examples
# --------------------------------------------------------------------------------------------


def test_friday_evening_rolls_to_monday(office: BusinessCalendar) -> None:
    friday = berlin(2026, 3, 6, 17)
    assert office.add(friday, 2 * H) == berlin(2026, 3, 9, 9)
    assert office.between(friday, berlin(2026, 3, 9, 9)) == 2 * H
    assert office.between(berlin(2026, 3, 7, 10), berlin(2026, 3, 8, 23)) == timedelta(0)


def test_boundaries_are_half_open(office: BusinessCalendar) -> None:
    assert office.is_open(berlin(2026, 3, 9, 8))
    assert not office.is_open(berlin(2026, 3, 9, 18))
    assert office.is_open(berlin(2026, 3, 9, 18) - US)
    # a target that ends exactly at closing time is due at closing time, not next morning
    assert office.add(berlin(2026, 3, 9, 8), 10 * H) == berlin(2026, 3, 9, 18)
    # counting from a closed instant starts at the next opening
    assert office.add(berlin(2026, 3, 9, 18), US) == berlin(2026, 3, 10, 8) + US


def test_zero_duration_returns_start(office: BusinessCalendar) -> None:
    """Documented choice: add(x, 0) is x, open or closed (keeps add additive)."""
    saturday = berlin(2026, 3, 7, 12)
    assert office.add(saturday, timedelta(0)) is saturday
    assert office.add(berlin(2026, 3, 9, 9), timedelta(0)) == berlin(2026, 3, 9, 9)
    with pytest.raises(ValueError, match="negative duration"):
        office.add(saturday, -H)


def test_german_christmas_holidays_are_skipped(office: BusinessCalendar) -> None:
    """25 and 26 Dec 2025 are Thursday and Friday: Wednesday 17:00 + 2 h is Monday 09:00."""
    assert office.add(berlin(2025, 12, 24, 17), 2 * H) == berlin(2025, 12, 29, 9)
    assert not office.is_open(berlin(2026, 12, 25, 10))
    assert office.between(berlin(2025, 12, 24, 0), berlin(2025, 12, 29, 0)) == 10 * H


def test_holiday_subdivision_counts() -> None:
    """6 Jan (Epiphany) is a holiday in Bavaria, not in Berlin."""
    epiphany = berlin(2026, 1, 6, 10)
    assert CalendarConfig(holidays_subdivision="BY").build().is_open(epiphany) is False
    assert CalendarConfig(holidays_subdivision="BE").build().is_open(epiphany) is True
    assert CalendarConfig(holidays_country=None).build().is_open(berlin(2026, 12, 25, 10))


def test_custom_closed_date_is_skipped() -> None:
    calendar = CalendarConfig(closed_dates=[date(2026, 3, 9)]).build()
    assert calendar.add(berlin(2026, 3, 6, 17), 2 * H) == berlin(2026, 3, 10, 9)


def test_several_intervals_per_day() -> None:
    calendar = CalendarConfig(hours={"mon": ["13:00-17:00", "08:00-12:00"]}).build()
    assert calendar.add(berlin(2026, 3, 9, 11), 2 * H) == berlin(2026, 3, 9, 14)
    assert calendar.between(berlin(2026, 3, 9, 0), berlin(2026, 3, 10, 0)) == 8 * H
    assert not calendar.is_open(berlin(2026, 3, 9, 12, 30))
    assert calendar.add(berlin(2026, 3, 9, 16), 2 * H) == berlin(2026, 3, 16, 9)
    assert calendar.day_length == 8 * H


def test_always_open() -> None:
    clock = AlwaysOpen()
    assert (clock.name, clock.day_length) == ("24x7", 24 * H)
    saturday = berlin(2026, 3, 7, 23)
    assert clock.is_open(saturday)
    assert clock.add(saturday, 2 * H) == berlin(2026, 3, 8, 1)
    assert clock.between(saturday, berlin(2026, 3, 8, 1)) == 2 * H
    assert clock.between(berlin(2026, 3, 8, 1), saturday) == timedelta(0)
    assert CalendarConfig(always_open=True).build().name == "24x7"


NAIVE, AWARE = datetime(2026, 3, 9, 9), berlin(2026, 3, 9, 9)


@pytest.mark.parametrize("clock", [CalendarConfig().build(), AlwaysOpen()], ids=["weekly", "24x7"])
@pytest.mark.parametrize(
    "call",
    [
        lambda clock: clock.add(NAIVE, H),
        lambda clock: clock.add(NAIVE, timedelta(0)),
        lambda clock: clock.between(NAIVE, AWARE),
        lambda clock: clock.between(AWARE, NAIVE),
        lambda clock: clock.is_open(NAIVE),
        lambda clock: elapsed(clock, NAIVE, AWARE, ()),
        lambda clock: due(clock, NAIVE, H, ()),
        lambda clock: Pause(start=NAIVE),
        lambda clock: Pause(start=AWARE, end=NAIVE),
    ],
    ids=[
        "add",
        "add0",
        "between-start",
        "between-end",
        "is_open",
        "elapsed",
        "due",
        "pause",
        "pause-end",
    ],
)
def test_naive_datetimes_are_rejected(
    clock: BusinessCalendar, call: Callable[[BusinessCalendar], object]
) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        call(clock)


# --------------------------------------------------------------------------------------------
# DST: every boundary is an absolute instant
# --------------------------------------------------------------------------------------------

ALL_DAY = {d: [(time(0), END_OF_DAY)] for d in range(7)}
EIGHT_TO_SIX = {d: [(time(8), time(18))] for d in range(7)}


@pytest.mark.parametrize(
    ("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25), (date(2026, 3, 30), 24)]
)
def test_dst_days_in_berlin(day: date, hours: int) -> None:
    start = datetime.combine(day, time(), BERLIN)
    end = datetime.combine(day + timedelta(days=1), time(), BERLIN)
    all_day = WeeklyCalendar("Europe/Berlin", ALL_DAY)
    assert all_day.between(start, end) == hours * H
    assert all_day.add(start, hours * H) == end
    assert AlwaysOpen().between(start, end) == hours * H
    business = WeeklyCalendar("Europe/Berlin", EIGHT_TO_SIX)
    assert business.between(start, end) == 10 * H
    opening = datetime.combine(day, time(8), BERLIN)
    assert business.add(opening, 10 * H) == datetime.combine(day, time(18), BERLIN)
    assert all_day.day_length == 24 * H  # the nominal day; the real one varies


def test_dst_gap_and_repeated_hour_boundaries() -> None:
    """A boundary in the skipped hour is the jump; one in the repeated hour its first time."""
    spring = WeeklyCalendar("Europe/Berlin", {6: [(time(2, 30), time(4))]})
    sunday = datetime(2026, 3, 29, tzinfo=UTC)
    assert spring.between(sunday, sunday + 24 * H) == H  # opens at 03:00 CEST (01:00 UTC)
    assert not spring.is_open(datetime(2026, 3, 29, 0, 59, tzinfo=UTC))
    assert spring.is_open(datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
    autumn = WeeklyCalendar("Europe/Berlin", {6: [(time(2, 30), time(3))]})
    sunday = datetime(2026, 10, 25, tzinfo=UTC) - 2 * H
    # 02:30 CEST (00:30 UTC) to 03:00 CET (02:00 UTC)
    assert autumn.between(sunday, sunday + 24 * H) == timedelta(minutes=90)
    assert autumn.add(sunday, timedelta(minutes=90)) == datetime(2026, 10, 25, 2, tzinfo=UTC)


def test_results_are_utc_and_inputs_in_any_zone(office: BusinessCalendar) -> None:
    new_york = datetime(2026, 3, 6, 11, tzinfo=ZoneInfo("America/New_York"))  # 17:00 Berlin
    result = office.add(new_york, 2 * H)
    assert result.tzinfo is UTC
    assert result == berlin(2026, 3, 9, 9)


def test_long_durations_cross_years(office: BusinessCalendar) -> None:
    start = berlin(2025, 6, 2, 8)
    later = office.add(start, 3000 * H)
    assert office.between(start, later) == 3000 * H
    assert later.year == 2026


def test_year_end_boundaries(office: BusinessCalendar) -> None:
    """Results that land exactly on the last closing time of a year stay in that year."""
    assert office.add(berlin(2026, 12, 31, 8), 10 * H) == berlin(2026, 12, 31, 18)
    assert office.add(berlin(2026, 12, 31, 8), 10 * H + US) == berlin(2027, 1, 4, 8) + US
    a_year = office.between(berlin(2025, 12, 31, 17), berlin(2026, 12, 31, 18))
    assert office.add(berlin(2025, 12, 31, 17), a_year) == berlin(2026, 12, 31, 18)
    all_day = WeeklyCalendar("Europe/Berlin", ALL_DAY)
    assert all_day.add(berlin(2026, 12, 31, 0), 24 * H) == berlin(2027, 1, 1, 0)
    assert all_day.between(berlin(2026, 12, 31, 12), berlin(2027, 1, 1, 12)) == 24 * H
    assert all_day.is_open(berlin(2027, 1, 1, 0))


# --------------------------------------------------------------------------------------------
# Pauses (HOURS-1: time waiting on the customer does not count)
# --------------------------------------------------------------------------------------------


def test_pause_in_the_middle_shifts_due_by_its_open_time(office: BusinessCalendar) -> None:
    start = berlin(2026, 3, 9, 9)
    assert due(office, start, 4 * H, ()) == berlin(2026, 3, 9, 13)
    pause = Pause(start=berlin(2026, 3, 9, 10), end=berlin(2026, 3, 9, 11, 30))
    assert due(office, start, 4 * H, [pause]) == berlin(2026, 3, 9, 14, 30)
    # overnight: 17:00-09:00 has only 2 h of open time (17-18, 08-09)
    night = Pause(start=berlin(2026, 3, 9, 17), end=berlin(2026, 3, 10, 9))
    assert due(office, start, 10 * H, [night]) == berlin(2026, 3, 10, 11)
    assert elapsed(office, start, berlin(2026, 3, 10, 11), [night]) == 10 * H


def test_open_pause_stops_the_clock(office: BusinessCalendar) -> None:
    start = berlin(2026, 3, 9, 9)
    waiting = Pause(start=berlin(2026, 3, 9, 10))
    assert due(office, start, 4 * H, [waiting]) is None
    # a target reached before the pause began is unaffected
    assert due(office, start, H, [waiting]) == berlin(2026, 3, 9, 10)
    assert elapsed(office, start, berlin(2026, 3, 12, 9), [waiting]) == H


def test_overlapping_pauses_count_once(office: BusinessCalendar) -> None:
    start = berlin(2026, 3, 9, 9)
    pauses = [
        Pause(start=berlin(2026, 3, 9, 10, 30), end=berlin(2026, 3, 9, 11, 30)),
        Pause(start=berlin(2026, 3, 9, 10), end=berlin(2026, 3, 9, 11)),
        Pause(start=berlin(2026, 3, 9, 10, 15), end=berlin(2026, 3, 9, 10, 45)),
    ]
    assert due(office, start, 4 * H, pauses) == berlin(2026, 3, 9, 14, 30)
    assert elapsed(office, start, berlin(2026, 3, 9, 12), pauses) == timedelta(minutes=90)


def test_pause_before_start_and_zero_target(office: BusinessCalendar) -> None:
    start = berlin(2026, 3, 9, 9)
    early = Pause(start=berlin(2026, 3, 9, 8), end=berlin(2026, 3, 9, 10))
    assert due(office, start, 4 * H, [early]) == berlin(2026, 3, 9, 14)
    assert due(office, start, timedelta(0), [early]) == start
    assert elapsed(office, start, start - H, [early]) == timedelta(0)
    with pytest.raises(ValueError, match="before it starts"):
        Pause(start=start, end=start - H)


# --------------------------------------------------------------------------------------------
# CalendarConfig
# --------------------------------------------------------------------------------------------


def test_config_defaults_and_normalization() -> None:
    config = CalendarConfig()
    assert config.hours["monday"] == ["08:00-18:00"] and "saturday" not in config.hours
    assert config.build() is config.build()
    assert config == CalendarConfig()  # the cached calendar does not affect equality
    short = CalendarConfig(
        hours={"Sun": ["13:00-24:00", "0:00-12:00"], "mon": []}, holidays_country="de"
    )
    assert short.hours == {"monday": [], "sunday": ["00:00-12:00", "13:00-24:00"]}
    assert short.holidays_country == "DE"
    calendar = short.build()
    assert calendar.between(berlin(2026, 3, 8, 0), berlin(2026, 3, 9, 0)) == 23 * H
    assert CalendarConfig(day_length=parse_span("8h")).build().day_length == 8 * H
    dumped = CalendarConfig(day_length=parse_span("8h")).model_dump(mode="json")
    assert dumped["day_length"] == "8h"
    assert CalendarConfig.model_validate(dumped).build().day_length == 8 * H


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timezone": "Europe/Berlinn"}, "unknown time zone 'Europe/Berlinn'"),
        ({"hours": {"funday": ["08:00-10:00"]}}, "unknown weekday 'funday'"),
        ({"hours": {"mon": ["08:00-12:00", "11:00-13:00"]}}, "monday: intervals .* overlap"),
        ({"hours": {"mon": ["18:00-08:00"]}}, "monday: interval '18:00-08:00' starts at or after"),
        ({"hours": {"mon": ["08:00-08:00"]}}, "starts at or after its end"),
        ({"hours": {"mon": ["8-18"]}}, "monday: bad interval '8-18'"),
        ({"hours": {"mon": ["08:00-24:30"]}}, "bad time in '08:00-24:30'"),
        ({"hours": {"mon": ["08:00-18:00"], "monday": []}}, "'monday' is given twice"),
        ({"hours": {"mon": []}}, "at least one weekday needs open hours"),
        ({"holidays_country": "XX"}, "unknown holidays country 'XX'"),
        ({"holidays_subdivision": "ZZ"}, "unknown holidays subdivision 'ZZ' for 'DE'"),
        ({"holidays_country": None, "holidays_subdivision": "BY"}, "needs holidays_country"),
        ({"day_length": "1d"}, "day_length '1d' must be a positive span in h/m/s"),
        ({"day_length": "0m"}, "must be a positive span"),
        ({"day_length": "10 hours"}, "unknown unit 'hours'"),
        ({"always_open": True, "hours": {}}, "always_open .* takes no hours"),
        ({"weekends": True}, "Extra inputs are not permitted"),
    ],
)
def test_config_errors_are_clear(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CalendarConfig.model_validate(settings)


def test_config_is_frozen() -> None:
    config = CalendarConfig()
    with pytest.raises(ValidationError):
        config.timezone = "UTC"  # type: ignore[misc]


def test_weekly_calendar_constructor_errors() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Nowhere'"):
        WeeklyCalendar("Nowhere", EIGHT_TO_SIX)
    with pytest.raises(ValueError, match="unknown weekday 7"):
        WeeklyCalendar("UTC", {7: [(time(8), time(9))]})
    with pytest.raises(ValueError, match="weekday 0: intervals overlap"):
        WeeklyCalendar("UTC", {0: [(time(8), time(12)), (time(11), time(13))]})
    with pytest.raises(ValueError, match="use END_OF_DAY for 24:00"):
        WeeklyCalendar("UTC", {0: [(time(8), time(0))]})
    with pytest.raises(ValueError, match="needs open hours"):
        WeeklyCalendar("UTC", {0: []})
    with pytest.raises(ValueError, match="unknown holidays subdivision"):
        WeeklyCalendar("UTC", EIGHT_TO_SIX, holiday_country="US", holiday_subdivision="XX")


# --------------------------------------------------------------------------------------------
# Properties (Hypothesis) over random weekly schedules in zones with DST
# --------------------------------------------------------------------------------------------

ZONES = {
    "Europe/Berlin": ("DE", None),
    "America/New_York": ("US", "NY"),
    "Australia/Sydney": ("AU", "NSW"),
}
# inputs around the DST changes of both hemispheres and a year end
WINDOW_START = datetime(2025, 9, 15, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 15, tzinfo=UTC)


@st.composite
def weeks(draw: st.DrawFn) -> dict[int, list[tuple[time, time]]]:
    """Random schedules: 0-3 intervals a day on a 15-minute grid, sometimes to 24:00."""
    week: dict[int, list[tuple[time, time]]] = {}
    for day in range(7):
        # the 02:00-03:00 grid points are drawn often: that is where clocks jump in all 3 zones
        grid = st.integers(0, 96) | st.integers(9, 11)
        points = sorted(draw(st.sets(grid, max_size=6)))
        if len(points) % 2:
            points = points[:-1]
        spans = []
        for a, b in zip(points[::2], points[1::2], strict=True):
            end = END_OF_DAY if b == 96 else time(b // 4, b % 4 * 15)
            spans.append((time(a // 4, a % 4 * 15), end))
        week[day] = spans
    if not any(week.values()):
        week[draw(st.integers(0, 6))] = [(time(9), time(17))]
    return week


class Spec(NamedTuple):
    """What a random calendar was built from, for the oracle."""

    zone: str
    week: dict[int, list[tuple[time, time]]]
    country: str | None
    subdivision: str | None
    closed: frozenset[date]


@st.composite
def calendars(draw: st.DrawFn) -> tuple[WeeklyCalendar, Spec]:
    zone = draw(st.sampled_from(sorted(ZONES)))
    week = draw(weeks())
    country, subdivision = ZONES[zone] if draw(st.booleans()) else (None, None)
    closed = frozenset(draw(st.sets(st.dates(date(2025, 9, 1), date(2026, 12, 31)), max_size=30)))
    calendar = WeeklyCalendar(zone, week, country, subdivision, closed)
    return calendar, Spec(zone, week, country, subdivision, closed)


instants = st.datetimes(
    min_value=WINDOW_START.replace(tzinfo=None), max_value=WINDOW_END.replace(tzinfo=None)
).map(lambda naive: naive.replace(tzinfo=UTC))
# local midnights of the DST changes in the window
DST_DAYS = {
    "Europe/Berlin": [date(2025, 10, 26), date(2026, 3, 29), date(2026, 10, 25)],
    "America/New_York": [date(2025, 11, 2), date(2026, 3, 8), date(2026, 11, 1)],
    "Australia/Sydney": [date(2025, 10, 5), date(2026, 4, 5), date(2026, 10, 4)],
}


def near_dst(zone: str) -> st.SearchStrategy[datetime]:
    """Instants up to two days before a DST change of ``zone``."""
    return st.builds(
        lambda day, back: datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC) - back,
        st.sampled_from(DST_DAYS[zone]),
        st.timedeltas(timedelta(0), timedelta(days=2)),
    )


instants = instants | st.sampled_from(sorted(DST_DAYS)).flatmap(near_dst)
durations = st.one_of(
    st.timedeltas(timedelta(0), timedelta(days=20)),
    st.integers(0, 200).map(lambda quarters: quarters * timedelta(minutes=15)),
)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _in_zone(at: datetime, spec: Spec, local: bool) -> datetime:
    """The same instant, expressed in the calendar's zone or left in UTC."""
    return at.astimezone(ZoneInfo(spec.zone)) if local else at


@FAST
@given(calendars(), instants, durations, st.booleans())
def test_add_gives_exactly_the_duration_and_is_earliest(
    cal: tuple[WeeklyCalendar, Spec], start: datetime, d: timedelta, local: bool
) -> None:
    calendar, spec = cal
    start = _in_zone(start, spec, local)
    end = calendar.add(start, d)
    assert end >= start
    assert calendar.between(start, end) == d
    if d:
        assert calendar.between(start, end - US) < d
        assert calendar.is_open(end - US)


@FAST
@given(calendars(), instants, instants, durations, durations)
def test_add_is_monotonic_and_additive(
    cal: tuple[WeeklyCalendar, Spec],
    s1: datetime,
    s2: datetime,
    a: timedelta,
    b: timedelta,
) -> None:
    calendar, _ = cal
    s1, s2 = sorted((s1, s2))
    a, b = sorted((a, b))
    assert calendar.add(s1, a) <= calendar.add(s1, b)
    assert calendar.add(s1, a) <= calendar.add(s2, a)
    assert calendar.add(calendar.add(s1, a), b) == calendar.add(s1, a + b)


@FAST
@given(calendars(), instants, instants, instants)
def test_between_is_additive(
    cal: tuple[WeeklyCalendar, Spec], x: datetime, y: datetime, z: datetime
) -> None:
    calendar, _ = cal
    a, b, c = sorted((x, y, z))
    assert calendar.between(a, c) == calendar.between(a, b) + calendar.between(b, c)
    assert calendar.between(c, a) == timedelta(0)
    assert calendar.is_open(b) == (calendar.between(b, b + US) == US)


def _wall_instant(zone: ZoneInfo, day: date, wall: time) -> datetime:
    """The first instant at which the wall clock reads ``day wall`` or later, found without
    the calendar's code: zoneinfo's own answer if it round-trips, else (a skipped time) step
    minute by minute from the earlier reading until the wall clock has passed it."""
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    at = min(first, naive.replace(tzinfo=zone, fold=1).astimezone(UTC))
    while at.astimezone(zone).replace(tzinfo=None) < naive:
        at += timedelta(minutes=1)
    return at


def _oracle_between(spec: Spec, start: datetime, end: datetime) -> timedelta:
    """Open time in [start, end), day by day, interval by interval, no caching or bisecting."""
    zone = ZoneInfo(spec.zone)
    total = timedelta(0)
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date():
        closed = day in spec.closed or (
            spec.country is not None
            and day in holidays.country_holidays(spec.country, subdiv=spec.subdivision)
        )
        for a, b in [] if closed else spec.week.get(day.weekday(), []):
            lo = _wall_instant(zone, day, a)
            if b == END_OF_DAY:
                hi = _wall_instant(zone, day + timedelta(days=1), time())
            else:
                hi = _wall_instant(zone, day, b)
            total += max(timedelta(0), min(hi, end) - max(lo, start))
        day += timedelta(days=1)
    return total


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendars(), st.data(), st.timedeltas(timedelta(0), timedelta(days=12)))
def test_between_matches_a_day_by_day_oracle(
    cal: tuple[WeeklyCalendar, Spec], data: st.DataObject, length: timedelta
) -> None:
    calendar, spec = cal
    start = data.draw(instants | near_dst(spec.zone), label="start")
    assert calendar.between(start, start + length) == _oracle_between(spec, start, start + length)


@st.composite
def pause_lists(draw: st.DrawFn) -> list[Pause]:
    """0-4 pauses around 2026-03-20 (near the DST changes), some overlapping, some open."""
    base = datetime(2026, 3, 20, tzinfo=UTC)
    pauses = []
    for _ in range(draw(st.integers(0, 4))):
        start = base + draw(st.timedeltas(timedelta(days=-3), timedelta(days=15)))
        if draw(st.integers(0, 9)) == 0:
            pauses.append(Pause(start=start))
        else:
            pauses.append(
                Pause(start, start + draw(st.timedeltas(timedelta(0), timedelta(days=4))))
            )
    return pauses


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calendars() | st.just((AlwaysOpen(), None)),
    st.timedeltas(timedelta(days=-1), timedelta(days=10)),
    durations,
    pause_lists(),
)
def test_due_and_elapsed_agree(
    cal: tuple[BusinessCalendar, Spec | None],
    offset: timedelta,
    d: timedelta,
    pauses: list[Pause],
) -> None:
    """HOURS-1: due() is the first instant at which elapsed() reaches the target."""
    calendar, _ = cal
    start = datetime(2026, 3, 20, tzinfo=UTC) + offset
    at = due(calendar, start, d, pauses)
    if at is None:
        assert any(p.end is None for p in pauses)
        assert elapsed(calendar, start, start + timedelta(days=400), pauses) < d
        return
    assert elapsed(calendar, start, at, pauses) == d
    if d:
        assert elapsed(calendar, start, at - US, pauses) < d
    # pauses only ever take time away, and elapsed adds up over consecutive spans
    later = at + timedelta(days=2)
    assert elapsed(calendar, start, later, pauses) <= calendar.between(start, later)
    assert elapsed(calendar, start, later, pauses) == elapsed(
        calendar, start, at, pauses
    ) + elapsed(calendar, at, later, pauses)
    assert elapsed(calendar, start, later, ()) == calendar.between(start, later)
