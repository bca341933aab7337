"""Business-hours clocks: when response targets fall due, and how much of them has elapsed.

Rule HOURS-1 says support business hours are a weekly schedule in a time zone with the public
holidays of a region, that severity 1 runs on a 24×7 clock, and that time waiting on the
customer does not count against the response targets (RESP-1, RESP-2). This module is the
arithmetic behind that rule, and nothing else: it is pure (no wall-clock reads, no I/O).

The model
---------
* A **calendar** is a set of *open intervals* on the absolute time line. ``AlwaysOpen`` is one
  endless interval (the 24×7 clock); ``WeeklyCalendar`` opens, on each local date, the
  wall-clock intervals of that weekday (several per day allowed, an end of 24:00 allowed), except
  on public holidays (the ``holidays`` package) and on custom closed dates.
* **Open time** between two instants is the length of their overlap with the open intervals.
  ``between(start, end)`` measures it over ``[start, end)``; ``add(start, d)`` is the earliest
  instant at which ``d`` of open time has elapsed since ``start``.
* A **pause** is a span in which the clock stands still: the ticket waits on the customer
  (HOURS-1). ``elapsed`` subtracts the open time covered by pauses (overlapping pauses count
  once); ``due`` is the earliest instant at which the elapsed time reaches a target, or ``None``
  while an open-ended pause keeps the clock stopped.
* **DST is exact.** Every local boundary is turned into an absolute UTC instant before any
  arithmetic, so a 00:00-24:00 day is 23 real hours on the day clocks go forward and 25 on the
  day they go back, and an 08:00-18:00 day is always 10 hours. A boundary that falls on a
  wall-clock time that does not exist (clocks jump over it) is the instant of the jump; one
  that occurs twice (clocks go back) is its first occurrence. In both cases: the first instant
  at which the wall clock reads that time or later.
* Inputs must be timezone-aware (a naive datetime raises ``ValueError``: guessing its zone
  would shift deadlines by hours). Results are aware datetimes in UTC, except ``add(x, 0)``,
  which returns ``x`` itself.

Speed: ``WeeklyCalendar`` caches, per local year, the open intervals as sorted UTC epoch
microseconds with running totals, so ``add`` and ``between`` are two binary searches however
long the duration; years are built lazily on first use.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from itertools import pairwise
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

__all__ = [
    "END_OF_DAY",
    "AlwaysOpen",
    "BusinessCalendar",
    "CalendarConfig",
    "Pause",
    "RegionConfig",
    "Span",
    "UnionCalendar",
    "UnionCalendarConfig",
    "WeeklyCalendar",
    "due",
    "elapsed",
    "parse_span",
]

END_OF_DAY = time.max
"""An interval end of ``END_OF_DAY`` (``time.max``) means 24:00: midnight at the end of the day."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_US_PER_S = 1_000_000
_US_PER_AVG_YEAR = 31_556_952 * _US_PER_S  # 365.2425 days: only a first guess of the year
_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)


# --------------------------------------------------------------------------------------------
# Spans: "4h", "1d", "1h30m"
# --------------------------------------------------------------------------------------------

_SPAN_RE = re.compile(
    r"(?:(?P<d>[0-9]+)d)?\s*(?:(?P<h>[0-9]+)h)?\s*(?:(?P<m>[0-9]+)m)?\s*(?:(?P<s>[0-9]+)s)?"
)
_SPAN_UNIT_RE = re.compile(r"[0-9]+\s*([A-Za-z]+)")
_SPAN_HELP = "expected whole numbers with units d, h, m, s in that order, e.g. '4h', '1d', '1h30m'"


@dataclass(frozen=True, slots=True)
class Span:
    """A policy duration such as ``4h`` or ``1d``, kept in the units it was written in.

    ``days`` stay separate from ``seconds`` because what a day is depends on the clock: 24 hours
    on the 24×7 clock, one business day (say 10 open hours) on a business calendar. Use
    :meth:`to_timedelta` with the clock's ``day_length``. As a pydantic field it accepts the
    string form and serializes back to it.
    """

    days: int = 0
    seconds: int = 0

    def __post_init__(self) -> None:
        for field, value in (("days", self.days), ("seconds", self.seconds)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Span.{field} must be a non-negative int, got {value!r}")

    def to_timedelta(self, day: timedelta) -> timedelta:
        """The span as open time, where one ``d`` is ``day`` (a clock's ``day_length``)."""
        return day * self.days + timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        hours, rest = divmod(self.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        parts = ((self.days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"))
        return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validate from the string form (or a Span); serialize to the canonical string."""
        from_text = core_schema.chain_schema(
            [core_schema.str_schema(), core_schema.no_info_plain_validator_function(parse_span)]
        )
        return core_schema.json_or_python_schema(
            json_schema=from_text,
            python_schema=core_schema.union_schema(
                [core_schema.is_instance_schema(cls), from_text]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def parse_span(text: str) -> Span:
    """Parse ``7d``, ``4h``, ``90m``, ``1h30m``, ``2d4h``, ``45s``, ``0m`` into a :class:`Span`.

    Units are ``d``, ``h``, ``m``, ``s``, each at most once and in that order, optionally
    separated by spaces. Hours, minutes and seconds are folded into ``seconds`` (``90m`` is
    ``1h30m``); days are kept apart because their length depends on the clock.

    :raises ValueError: for empty, negative or malformed text or an unknown unit; the message
        names the offending text.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"empty duration {text!r}: {_SPAN_HELP}")
    if stripped.startswith("-"):
        raise ValueError(f"negative duration {text!r}: durations must be >= 0")
    match = _SPAN_RE.fullmatch(stripped)
    if match is None:
        for unit in _SPAN_UNIT_RE.findall(stripped):
            if unit not in ("d", "h", "m", "s"):
                raise ValueError(f"unknown unit {unit!r} in duration {text!r}: {_SPAN_HELP}")
        raise ValueError(f"invalid duration {text!r}: {_SPAN_HELP}")
    values = {unit: int(value) for unit, value in match.groupdict(default="0").items()}
    return Span(days=values["d"], seconds=values["h"] * 3600 + values["m"] * 60 + values["s"])


# --------------------------------------------------------------------------------------------
# Pauses and the calendar protocol
# --------------------------------------------------------------------------------------------


def _to_us(at: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact; rejects naive ones)."""
    try:
        return (at - _EPOCH) // _US
    except TypeError:
        raise ValueError(
            f"naive datetime {at!r}: clock arithmetic needs timezone-aware datetimes"
        ) from None


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _utc(at: datetime) -> datetime:
    """``at`` in UTC. Aware datetimes that share a tzinfo compare and subtract by wall clock,
    which is wrong across DST changes, so everything is compared in UTC."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: clock arithmetic needs timezone-aware datetimes")
    return at.astimezone(UTC)


def _duration_us(duration: timedelta) -> int:
    if duration < _ZERO:
        raise ValueError(f"negative duration {duration!r}: durations must be >= 0")
    return duration // _US


@dataclass(frozen=True, slots=True)
class Pause:
    """A span in which the response clock stands still: the ticket waits on the customer
    (HOURS-1). ``end=None`` means the ticket is still waiting (an open pause)."""

    start: datetime
    end: datetime | None = None

    def __post_init__(self) -> None:
        start = _utc(self.start)
        if self.end is not None and _utc(self.end) < start:
            raise ValueError(f"pause ends ({self.end}) before it starts ({self.start})")


class BusinessCalendar(Protocol):
    """What the rules need from a clock: which instants are open and how open time adds up.

    All datetimes must be timezone-aware (``ValueError`` otherwise).
    """

    @property
    def name(self) -> str:
        """A short name for reports, e.g. ``24x7``."""
        ...

    @property
    def day_length(self) -> timedelta:
        """What one ``d`` of a :class:`Span` means on this clock (open time per day)."""
        ...

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies in an open interval (intervals are half-open: [open, close))."""
        ...

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant at which ``duration`` of open time has elapsed after ``start``.

        Counting starts at the next opening if ``start`` is closed; a positive duration that
        ends exactly at a closing time gives that closing time, not the next opening.
        ``add(x, 0)`` returns ``x`` itself, open or closed: zero open time has elapsed at ``x``
        already (this keeps ``add(add(s, a), b) == add(s, a + b)`` exact).
        """
        ...

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Open time in ``[start, end)``; zero if ``end <= start``."""
        ...


class AlwaysOpen:
    """The 24×7 clock (severity 1 under HOURS-1): every instant is open."""

    @property
    def name(self) -> str:
        """Always ``24x7``."""
        return "24x7"

    @property
    def day_length(self) -> timedelta:
        """24 hours."""
        return _ONE_DAY

    def is_open(self, at: datetime) -> bool:
        """Always true (for an aware ``at``)."""
        _utc(at)
        return True

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """``start + duration`` in absolute time (UTC); ``start`` itself for zero."""
        if _duration_us(duration) == 0:
            _utc(start)
            return start
        return _utc(start) + duration

    def between(self, start: datetime, end: datetime) -> timedelta:
        """``end - start`` in absolute time, or zero if ``end <= start``."""
        return max(_utc(end) - _utc(start), _ZERO)

    def __repr__(self) -> str:
        return "AlwaysOpen()"


# --------------------------------------------------------------------------------------------
# Weekly business hours
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Year:
    """One local year of a WeeklyCalendar, in UTC epoch microseconds.

    ``bounds`` is ``[open0, close0, open1, close1, ...]`` (sorted, merged, non-empty intervals);
    ``cum[k]`` is the open time before interval ``k`` (so ``cum[-1]`` is the year's total);
    ``lo``/``hi`` are the instants of local midnight starting this year and the next.
    """

    year: int
    lo: int
    hi: int
    bounds: list[int]
    cum: list[int]

    def before(self, x: int) -> int:
        """Open time in this year before instant ``x`` (``lo <= x <= hi``)."""
        bounds = self.bounds
        i = bisect_right(bounds, x)
        if i & 1:
            return self.cum[i >> 1] + x - bounds[i - 1]
        return self.cum[i >> 1]


def _wall_offset(t: time) -> timedelta:
    """A wall-clock time as the offset from local midnight (24:00 is handled by the caller)."""
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


class _CachedCalendar:
    """Open intervals cached per year as sorted UTC epoch microseconds with running totals.

    Subclasses say how one year block is built (:meth:`_build_year`) and where a year starts
    (:meth:`_year_start`); this base finds the block of an instant and answers ``is_open``,
    ``add`` and ``between`` with two binary searches, whatever the duration.
    """

    _MIN_YEAR = 2
    _MAX_YEAR = 9998

    def __init__(self) -> None:
        self._years: dict[int, _Year] = {}
        self._last: _Year | None = None

    def _build_year(self, year: int) -> _Year:  # pragma: no cover - abstract
        raise NotImplementedError

    def _year(self, year: int) -> _Year:
        block = self._years.get(year)
        if block is None:
            if not self._MIN_YEAR <= year <= self._MAX_YEAR:
                raise ValueError(f"year {year} is outside the range this calendar can compute")
            block = self._build_year(year)
            self._years[year] = block
        return block

    def _block(self, x: int) -> _Year:
        """The year block whose ``[lo, hi)`` holds instant ``x``."""
        last = self._last
        if last is not None and last.lo <= x < last.hi:
            return last
        year = 1970 + x // _US_PER_AVG_YEAR
        block = self._year(year)
        while x < block.lo:
            year -= 1
            block = self._year(year)
        while x >= block.hi:
            year += 1
            block = self._year(year)
        self._last = block
        return block

    # -- the protocol -------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies in an open interval (open at the opening, closed at closing)."""
        x = _to_us(at)
        return bool(bisect_right(self._block(x).bounds, x) & 1)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant at which ``duration`` of open time has elapsed after ``start``
        (see :meth:`BusinessCalendar.add`); the result is in UTC, ``add(x, 0)`` returns ``x``."""
        x = _to_us(start)
        remaining = _duration_us(duration)
        if remaining == 0:
            return start
        block = self._block(x)
        target = block.before(x) + remaining
        total = block.cum[-1]
        if target > total:
            year = block.year
            while target > total:
                target -= total
                year += 1
                block = self._year(year)
                total = block.cum[-1]
        k = bisect_left(block.cum, target) - 1
        return _from_us(block.bounds[2 * k] + target - block.cum[k])

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Open time in ``[start, end)``, exact to the microsecond; zero if ``end <= start``."""
        a = _to_us(start)
        b = _to_us(end)
        if b <= a:
            return _ZERO
        first = self._block(a)
        if b <= first.hi:
            return timedelta(microseconds=first.before(b) - first.before(a))
        last = self._block(b)
        total = first.cum[-1] - first.before(a) + last.before(b)
        year = first.year + 1
        block = self._year(year)
        while block is not last:
            total += block.cum[-1]
            year += 1
            block = self._year(year)
        return timedelta(microseconds=total)

    def intervals(self, start: datetime, end: datetime) -> list[tuple[int, int]]:
        """The open intervals overlapping ``[start, end)``, clipped to it, as UTC epoch
        microseconds (for composing calendars, see :class:`UnionCalendar`)."""
        return self._intervals_us(_to_us(start), _to_us(end))

    def _intervals_us(self, a: int, b: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        if b <= a:
            return out
        block = self._block(a)
        while True:
            bounds = block.bounds
            i = bisect_right(bounds, a) & ~1
            while i < len(bounds) and bounds[i] < b:
                lo, hi = max(bounds[i], a), min(bounds[i + 1], b)
                if lo < hi:
                    out.append((lo, hi))
                i += 2
            if block.hi >= b:
                return out
            block = self._year(block.year + 1)


def _intervals_year(year: int, lo: int, hi: int, bounds: list[int]) -> _Year:
    """A year block from merged ``bounds``, with the running totals."""
    cum = [0]
    for i in range(0, len(bounds), 2):
        cum.append(cum[-1] + bounds[i + 1] - bounds[i])
    return _Year(year=year, lo=lo, hi=hi, bounds=bounds, cum=cum)


class WeeklyCalendar(_CachedCalendar):
    """Business hours as a weekly schedule in a time zone, minus holidays (HOURS-1).

    :param timezone: an IANA zone name such as ``Europe/Berlin``; hours are local wall-clock
        times there.
    :param week: weekday (0 = Monday … 6 = Sunday) to open intervals ``(start, end)``, sorted or
        not, not overlapping; an end of :data:`END_OF_DAY` means 24:00. Missing days are closed.
    :param holiday_country: ISO country code for ``holidays.country_holidays`` (closed all day).
    :param holiday_subdivision: its subdivision (state, province), if any.
    :param closed_dates: further local dates closed all day.
    :param day_length: what one ``d`` means (``1d`` = one business day); default: the longest
        weekday's open time.
    :param name: a short name for reports.
    """

    def __init__(
        self,
        timezone: str,
        week: Mapping[int, Sequence[tuple[time, time]]],
        holiday_country: str | None = None,
        holiday_subdivision: str | None = None,
        closed_dates: Iterable[date] = (),
        day_length: timedelta | None = None,
        name: str = "business-hours",
    ) -> None:
        self._tz = _zone(timezone)
        self._timezone = timezone
        self._week = _normalize_week(week)
        longest = max(
            (sum((e - s for s, e in spans), _ZERO) for spans in self._week), default=_ZERO
        )
        if longest <= _ZERO:
            raise ValueError("a weekly calendar needs open hours on at least one weekday")
        if day_length is not None and day_length <= _ZERO:
            raise ValueError(f"day_length must be positive, got {day_length}")
        self._day_length = longest if day_length is None else day_length
        if holiday_subdivision is not None and holiday_country is None:
            raise ValueError("holiday_subdivision needs holiday_country")
        if holiday_country is not None:
            _check_holiday_region(holiday_country, holiday_subdivision)
        self._holiday_country = holiday_country
        self._holiday_subdivision = holiday_subdivision
        self._closed_dates = frozenset(closed_dates)
        self._name = name
        super().__init__()

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @property
    def day_length(self) -> timedelta:
        """Open time that one ``d`` stands for."""
        return self._day_length

    @property
    def timezone(self) -> str:
        """The IANA zone the hours are given in."""
        return self._timezone

    def __repr__(self) -> str:
        return f"WeeklyCalendar(name={self._name!r}, timezone={self._timezone!r})"

    # -- the cache ----------------------------------------------------------------------------

    def _boundary(self, day: date, wall: timedelta) -> int:
        """The first instant at which the local wall clock reads ``day`` + ``wall`` or later."""
        naive = datetime.combine(day, time()) + wall
        first = naive.replace(tzinfo=self._tz)  # fold=0: the first of two occurrences
        us = _to_us(first)
        if _from_us(us).astimezone(self._tz).replace(tzinfo=None) == naive:
            return us
        # The wall time falls in a gap (clocks jump over it): find the instant of the jump,
        # between the two readings of the time with the offsets before and after it.
        other = _to_us(naive.replace(tzinfo=self._tz, fold=1))
        lo, hi = min(us, other), max(us, other)  # wall(lo) < naive <= wall(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _from_us(mid).astimezone(self._tz).replace(tzinfo=None) >= naive:
                hi = mid
            else:
                lo = mid
        return hi

    def _closed(self, year: int) -> set[date]:
        closed = {d for d in self._closed_dates if d.year == year}
        if self._holiday_country is not None:
            closed.update(
                holidays.country_holidays(
                    self._holiday_country, subdiv=self._holiday_subdivision, years=year
                ).keys()
            )
        return closed

    def _build_year(self, year: int) -> _Year:
        closed = self._closed(year)
        bounds: list[int] = []
        day = date(year, 1, 1)
        while day.year == year:
            if day not in closed:
                for start, end in self._week[day.weekday()]:
                    a = self._boundary(day, start)
                    b = self._boundary(day, end)
                    if b <= a:  # the whole interval fell into a DST gap
                        continue
                    if bounds and bounds[-1] >= a:
                        bounds[-1] = max(bounds[-1], b)
                    else:
                        bounds += (a, b)
            day += _ONE_DAY
        lo = self._boundary(date(year, 1, 1), _ZERO)
        hi = self._boundary(date(year + 1, 1, 1), _ZERO)
        return _intervals_year(year, lo, hi, bounds)


class UnionCalendar(_CachedCalendar):
    """A follow-the-sun calendar: open whenever any of its regional calendars is open (HOURS-1).

    Each region is a :class:`WeeklyCalendar` with its own zone, hours, holidays and closed
    dates — say 08:00-18:00 Europe/Berlin on German holidays and 08:00-18:00 America/New_York
    on US holidays. Business time counts once however many regions are open at an instant, and
    a holiday closes only the region that has it. Every region's boundaries are absolute
    instants before they are merged, so the union is exact across the weeks in which the
    regions change clocks on different dates. Blocks are cached per UTC year.

    :param regions: the regional calendars (at least one).
    :param day_length: what one ``d`` means; default: the longest ``day_length`` of the regions.
    :param name: a short name for reports.
    """

    _MIN_YEAR = 3
    _MAX_YEAR = 9997

    def __init__(
        self,
        regions: Sequence[WeeklyCalendar],
        day_length: timedelta | None = None,
        name: str = "follow-the-sun",
    ) -> None:
        if not regions:
            raise ValueError("a follow-the-sun calendar needs at least one region")
        if day_length is not None and day_length <= _ZERO:
            raise ValueError(f"day_length must be positive, got {day_length}")
        self._regions = tuple(regions)
        self._day_length = (
            max(r.day_length for r in self._regions) if day_length is None else day_length
        )
        self._name = name
        super().__init__()

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @property
    def day_length(self) -> timedelta:
        """Open time that one ``d`` stands for."""
        return self._day_length

    @property
    def timezone(self) -> str:
        """The first region's zone (where reports show local times)."""
        return self._regions[0].timezone

    @property
    def regions(self) -> tuple[WeeklyCalendar, ...]:
        """The regional calendars, in the order given."""
        return self._regions

    def __repr__(self) -> str:
        zones = ", ".join(r.timezone for r in self._regions)
        return f"UnionCalendar(name={self._name!r}, regions=[{zones}])"

    def _build_year(self, year: int) -> _Year:
        lo = _to_us(datetime(year, 1, 1, tzinfo=UTC))
        hi = _to_us(datetime(year + 1, 1, 1, tzinfo=UTC))
        spans = sorted(span for region in self._regions for span in region._intervals_us(lo, hi))
        bounds: list[int] = []
        for a, b in spans:
            if bounds and bounds[-1] >= a:  # overlapping or touching: one open stretch
                bounds[-1] = max(bounds[-1], b)
            else:
                bounds += (a, b)
        return _intervals_year(year, lo, hi, bounds)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: expected an IANA name such as 'Europe/Berlin'"
        ) from None


def _check_holiday_region(country: str, subdivision: str | None) -> None:
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(
            f"unknown holidays country {country!r}: expected an ISO 3166 code the holidays "
            "package supports, such as 'DE' or 'US'"
        )
    if subdivision is not None:
        try:
            holidays.country_holidays(country, subdiv=subdivision, years=[])
        except NotImplementedError:
            known = ", ".join(supported[country]) or "(none)"
            raise ValueError(
                f"unknown holidays subdivision {subdivision!r} for {country!r}: known are {known}"
            ) from None


def _normalize_week(
    week: Mapping[int, Sequence[tuple[time, time]]],
) -> list[list[tuple[timedelta, timedelta]]]:
    """Per weekday, the open intervals as wall-clock offsets from local midnight, sorted and
    with touching intervals merged; raises ValueError naming the bad day or interval."""
    days: list[list[tuple[timedelta, timedelta]]] = [[] for _ in range(7)]
    for weekday, spans in week.items():
        if not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ValueError(f"unknown weekday {weekday!r}: expected 0 (Monday) to 6 (Sunday)")
        parsed: list[tuple[timedelta, timedelta]] = []
        for start, end in spans:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError(
                    f"weekday {weekday}: hours are local wall-clock times, give them without tzinfo"
                )
            s = _wall_offset(start)
            e = _ONE_DAY if end == END_OF_DAY else _wall_offset(end)
            if s >= e:
                raise ValueError(
                    f"weekday {weekday}: interval {start}-{end} starts at or after "
                    "its end (use END_OF_DAY for 24:00)"
                )
            parsed.append((s, e))
        parsed.sort()
        merged: list[tuple[timedelta, timedelta]] = []
        for s, e in parsed:
            if merged and s < merged[-1][1]:
                raise ValueError(f"weekday {weekday}: intervals overlap at {s}")
            if merged and s == merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        days[weekday] = merged
    return days


# --------------------------------------------------------------------------------------------
# Pauses: elapsed and due (HOURS-1)
# --------------------------------------------------------------------------------------------


def _merged_pauses(
    pauses: Sequence[Pause], start: datetime, end: datetime | None
) -> list[tuple[datetime, datetime | None]]:
    """Pauses clipped to ``[start, end)`` (``end=None``: unbounded), in UTC, sorted, merged;
    an open pause ends at ``end`` (or stays open, ``None``, when ``end`` is None)."""
    spans: list[tuple[datetime, datetime | None]] = []
    for pause in pauses:
        ps = max(_utc(pause.start), start)
        pe = end if pause.end is None else _utc(pause.end)
        if end is not None and pe is not None:
            pe = min(pe, end)
        if pe is not None and pe <= ps:
            continue
        spans.append((ps, pe))
    spans.sort(key=lambda span: span[0])
    merged: list[tuple[datetime, datetime | None]] = []
    for ps, pe in spans:
        if merged:
            last_start, last_end = merged[-1]
            if last_end is None:
                break
            if ps <= last_end:
                merged[-1] = (last_start, None if pe is None else max(pe, last_end))
                continue
        merged.append((ps, pe))
    return merged


def elapsed(
    calendar: BusinessCalendar, start: datetime, end: datetime, pauses: Sequence[Pause] = ()
) -> timedelta:
    """Open time from ``start`` to ``end`` that counts against a response target (HOURS-1).

    That is ``calendar.between(start, end)`` minus the open time covered by ``pauses`` (time
    waiting on the customer). Pauses may overlap (counted once), may begin before ``start``;
    an open pause (``end=None``) runs to ``end``.
    """
    s, e = _utc(start), _utc(end)
    if e <= s:
        return _ZERO
    total = calendar.between(s, e)
    for ps, pe in _merged_pauses(pauses, s, e):
        total -= calendar.between(ps, e if pe is None else pe)
    return total


def due(
    calendar: BusinessCalendar,
    start: datetime,
    duration: timedelta,
    pauses: Sequence[Pause] = (),
) -> datetime | None:
    """When a target of ``duration`` open time from ``start`` falls due (RESP-1, RESP-2).

    The earliest instant ``t`` with ``elapsed(calendar, start, t, pauses) >= duration``, in UTC;
    ``start`` (as UTC) for a zero duration. Pauses stop the clock (HOURS-1): ``None`` if an open
    pause (``end=None``) begins before the target is reached, since it is never reached while
    the ticket keeps waiting on the customer.
    """
    s = _utc(start)
    if _duration_us(duration) == 0:
        return s
    cursor, remaining = s, duration
    for ps, pe in _merged_pauses(pauses, s, None):
        if ps > cursor:
            candidate = calendar.add(cursor, remaining)
            if candidate <= ps:
                return candidate
            remaining -= calendar.between(cursor, ps)
        if pe is None:
            return None
        cursor = max(cursor, pe)
    return calendar.add(cursor, remaining)


# --------------------------------------------------------------------------------------------
# Policy-file configuration
# --------------------------------------------------------------------------------------------

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_INDEX = {name: i for i, name in enumerate(_WEEKDAYS)} | {
    name[:3]: i for i, name in enumerate(_WEEKDAYS)
}
_HOURS_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})")


def _parse_interval(day: str, text: str) -> tuple[time, time]:
    match = _HOURS_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{day}: bad interval {text!r}, expected 'HH:MM-HH:MM' like '08:00-18:00'")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(f"{day}: bad time in {text!r} (00:00 to 23:59; an end may be 24:00)")
    start, end = time(sh, sm), END_OF_DAY if eh == 24 else time(eh, em)
    if end != END_OF_DAY and start >= end:
        raise ValueError(f"{day}: interval {text!r} starts at or after its end")
    return start, end


def _default_hours() -> dict[str, list[str]]:
    return {day: ["08:00-18:00"] for day in _WEEKDAYS[:5]}


def _normalize_hours(value: dict[str, list[str]]) -> dict[str, list[str]]:
    """Weekday keys as full lowercase names in week order, every interval checked and sorted;
    raises ValueError naming the bad day or interval."""
    normalized: dict[str, list[str]] = {}
    for key, intervals in value.items():
        index = _WEEKDAY_INDEX.get(key.strip().lower())
        if index is None:
            raise ValueError(
                f"unknown weekday {key!r}: expected one of {', '.join(_WEEKDAYS)} (or mon … sun)"
            )
        day = _WEEKDAYS[index]
        if day in normalized:
            raise ValueError(f"weekday {day!r} is given twice (as {key!r} and another key)")
        parsed = sorted(_parse_interval(day, text) for text in intervals)
        for (_, end), (start, _) in pairwise(parsed):
            if end == END_OF_DAY or start < end:
                raise ValueError(f"{day}: intervals {intervals} overlap")
        normalized[day] = [_format_interval(s, e) for s, e in parsed]
    return {day: normalized[day] for day in _WEEKDAYS if day in normalized}


def _check_holidays(country: str | None, subdivision: str | None) -> None:
    if country is not None:
        _check_holiday_region(country, subdivision)
    elif subdivision is not None:
        raise ValueError("holidays_subdivision needs holidays_country")


def _check_day_length(span: Span | None) -> None:
    if span is not None and (span.days or span.seconds == 0):
        raise ValueError(
            f"day_length {str(span)!r} must be a positive span in h/m/s "
            "(a day cannot be measured in days)"
        )


def _weekly(
    timezone: str,
    hours: Mapping[str, list[str]],
    country: str | None,
    subdivision: str | None,
    closed_dates: Iterable[date],
    day_length: Span | None,
    name: str,
) -> WeeklyCalendar:
    week = {
        _WEEKDAY_INDEX[day]: [_parse_interval(day, text) for text in intervals]
        for day, intervals in hours.items()
    }
    return WeeklyCalendar(
        timezone=timezone,
        week=week,
        holiday_country=country,
        holiday_subdivision=subdivision,
        closed_dates=closed_dates,
        day_length=None if day_length is None else day_length.to_timedelta(_ZERO),
        name=name,
    )


class CalendarConfig(BaseModel):
    """How a policy file describes a clock for HOURS-1: weekly hours, zone, holidays.

    ``hours`` maps weekday names (``monday`` or ``mon`` …) to intervals like ``08:00-18:00``
    (an end may be ``24:00``); days not listed are closed. ``always_open`` makes the 24×7
    clock instead, and then takes none of the other settings. :meth:`build` makes the
    calendar once per config object and reuses it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = Field("Europe/Berlin", description="IANA time zone of the hours")
    hours: dict[str, list[str]] = Field(
        default_factory=_default_hours,
        description=(
            "weekday → open intervals in local time (`08:00-18:00`); days not listed are closed; "
            "replaces the preset's table as a whole"
        ),
    )
    holidays_country: str | None = Field(
        "DE",
        description=(
            "country whose public holidays are closed (the `holidays` package); unset: none"
        ),
    )
    holidays_subdivision: str | None = Field(None, description="state or region of those holidays")
    closed_dates: list[date] = Field(default_factory=list, description="further closed days")
    day_length: Span | None = Field(
        None,
        description=(
            "what `1d` means on this calendar (default: its longest weekday; on a follow-the-sun "
            "calendar the longest day of any region)"
        ),
    )
    always_open: bool = Field(False, description="a 24×7 calendar; takes none of the other keys")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        """Normalize weekday keys to full lowercase names and check every interval."""
        return _normalize_hours(value)

    @field_validator("holidays_country")
    @classmethod
    def _upper_country(cls, value: str | None) -> str | None:
        return None if value is None else value.strip().upper()

    @model_validator(mode="after")
    def _consistent(self) -> CalendarConfig:
        if self.always_open:
            extra = {
                "hours",
                "holidays_country",
                "holidays_subdivision",
                "closed_dates",
                "day_length",
            } & self.model_fields_set
            if extra:
                raise ValueError(
                    f"always_open (24x7) takes no {', '.join(sorted(extra))}: remove them"
                )
            return self
        _check_holidays(self.holidays_country, self.holidays_subdivision)
        _check_day_length(self.day_length)
        if not any(self.hours.values()):
            raise ValueError("hours: at least one weekday needs open hours (or set always_open)")
        return self

    def build(self) -> BusinessCalendar:
        """The calendar this config describes, built on first call and reused after."""
        return self._calendar

    @cached_property
    def _calendar(self) -> BusinessCalendar:
        if self.always_open:
            return AlwaysOpen()
        return _weekly(
            self.timezone,
            self.hours,
            self.holidays_country,
            self.holidays_subdivision,
            self.closed_dates,
            self.day_length,
            f"business hours ({self.timezone})",
        )


class RegionConfig(BaseModel):
    """One region of a follow-the-sun calendar (HOURS-1): its zone, weekly hours, holidays.

    Like :class:`CalendarConfig`, except that ``timezone`` must be given and there are no
    public holidays unless ``holidays_country`` names a region (a default of ``DE`` would be a
    trap for an office in New York).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = Field(description="IANA time zone of the region's hours")
    hours: dict[str, list[str]] = Field(
        default_factory=_default_hours,
        description="weekday → open intervals in local time; days not listed are closed",
    )
    holidays_country: str | None = Field(
        None, description="country whose public holidays close the region; unset: none"
    )
    holidays_subdivision: str | None = Field(None, description="state or region of those holidays")
    closed_dates: list[date] = Field(
        default_factory=list, description="further closed days of the region"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        """Normalize weekday keys to full lowercase names and check every interval."""
        return _normalize_hours(value)

    @field_validator("holidays_country")
    @classmethod
    def _upper_country(cls, value: str | None) -> str | None:
        return None if value is None else value.strip().upper()

    @model_validator(mode="after")
    def _consistent(self) -> RegionConfig:
        _check_holidays(self.holidays_country, self.holidays_subdivision)
        if not any(self.hours.values()):
            raise ValueError("hours: at least one weekday needs open hours")
        return self

    def build(self) -> WeeklyCalendar:
        """The region's weekly calendar (a new one per call; the union keeps it)."""
        return _weekly(
            self.timezone,
            self.hours,
            self.holidays_country,
            self.holidays_subdivision,
            self.closed_dates,
            None,
            f"business hours ({self.timezone})",
        )


class UnionCalendarConfig(BaseModel):
    """A follow-the-sun calendar in a policy file: open whenever any of ``regions`` is open.

    ``day_length`` says what ``1d`` means on it (default: the longest of the regions' days).
    Local times in messages are shown in the first region's zone.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    regions: tuple[RegionConfig, ...] = Field(
        description=(
            "a follow-the-sun calendar's regional calendars: business time counts while any is open"
        )
    )
    day_length: Span | None = Field(
        None,
        description=(
            "what `1d` means on this calendar (default: its longest weekday; on a follow-the-sun "
            "calendar the longest day of any region)"
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> UnionCalendarConfig:
        if not self.regions:
            raise ValueError("regions: a follow-the-sun calendar needs at least one region")
        _check_day_length(self.day_length)
        return self

    @property
    def timezone(self) -> str:
        """The first region's zone (where reports show local times)."""
        return self.regions[0].timezone

    def build(self) -> BusinessCalendar:
        """The union calendar, built on first call and reused after."""
        return self._calendar

    @cached_property
    def _calendar(self) -> UnionCalendar:
        zones = " + ".join(r.timezone for r in self.regions)
        return UnionCalendar(
            [r.build() for r in self.regions],
            day_length=None if self.day_length is None else self.day_length.to_timedelta(_ZERO),
            name=f"follow-the-sun ({zones})",
        )


def _format_interval(start: time, end: time) -> str:
    end_text = "24:00" if end == END_OF_DAY else end.strftime("%H:%M")
    return f"{start.strftime('%H:%M')}-{end_text}"
