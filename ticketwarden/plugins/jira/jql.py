"""Building JQL safely, and writing times the way JQL reads them.

Every value ticketwarden puts into a JQL query — a status name, a project key, a date — goes
through this module:

* **Strings** are written as double-quoted JQL strings (:func:`jql_string`): a ``"`` or ``\\``
  inside is escaped with a backslash, as Atlassian's JQL reference prescribes for special
  characters in quoted values. Reserved words (``AND``, ``OR``, ``ORDER``…) and reserved
  characters (``=``, ``!``, ``(``, ``,``…) lose all meaning inside quotes. Control characters
  and line breaks are refused: JQL has no escape for them and a silently altered value would
  search for something else.
* **Times** (:func:`jql_time`) are formatted by ticketwarden itself as ``"yyyy/MM/dd HH:mm"``
  — JQL's date-time format has **minute precision** and is read in the time zone of the API
  user's profile, so the connector converts to that zone first (a UTC time written into JQL
  for a user in Europe/Berlin would be an hour off). :func:`floor_minute` and
  :func:`ceil_minute` widen a bound to whole minutes; callers re-check exact times.
* **Field names and keys** that cannot be quoted in every position (``ORDER BY`` fields) are
  checked against a pattern instead (:func:`jql_field`).

A test shows an injection attempt (``Open" OR project = "SECRET``) coming out as one literal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo

__all__ = [
    "JqlValueError",
    "ceil_minute",
    "floor_minute",
    "jql_field",
    "jql_list",
    "jql_string",
    "jql_time",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FIELD = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]*|cf\[[0-9]+\])$")


class JqlValueError(ValueError):
    """A value that cannot be written into JQL without changing its meaning."""


def jql_string(value: str) -> str:
    """``value`` as a double-quoted JQL string, ``"`` and ``\\`` escaped.

    >>> jql_string('Waiting for "R&D"')
    '"Waiting for \\\\"R&D\\\\""'

    :raises JqlValueError: the value is empty or holds a control character or line break.
    """
    if not value or not value.strip():
        raise JqlValueError("an empty value cannot be searched for")
    bad = _CONTROL.search(value)
    if bad:
        raise JqlValueError(f"{value!r} contains {bad.group()!r}, which JQL cannot hold")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jql_list(values: Iterable[str]) -> str:
    """``("a", "b")``: quoted strings for ``in``; at least one value."""
    quoted = [jql_string(v) for v in values]
    if not quoted:
        raise JqlValueError("an empty list cannot be searched for")
    return "(" + ", ".join(quoted) + ")"


def jql_field(name: str) -> str:
    """A field name (``updated``, ``statusCategory``, ``cf[10010]``) checked to be one."""
    if not _FIELD.match(name):
        raise JqlValueError(f"{name!r} is not a JQL field name")
    return name


def floor_minute(at: datetime) -> datetime:
    """``at`` cut to its minute (a JQL lower bound that includes ``at``)."""
    return at.replace(second=0, microsecond=0)


def ceil_minute(at: datetime) -> datetime:
    """The first whole minute at or after ``at`` (a JQL upper bound ``<`` that includes
    everything before ``at``)."""
    floor = floor_minute(at)
    return floor if floor == at else floor + timedelta(minutes=1)


def jql_time(at: datetime, zone: tzinfo) -> str:
    """An aware datetime as a quoted JQL date-time in ``zone``: ``"2026/11/25 10:00"``.

    Seconds are dropped — widen the bound first with :func:`floor_minute` or
    :func:`ceil_minute` *in that zone's terms* (whole minutes are whole minutes everywhere
    for zones with whole-minute offsets, which every IANA zone in use has).

    :raises JqlValueError: ``at`` is naive.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise JqlValueError(f"{at!r} has no time zone")
    local = at.astimezone(zone)
    return '"' + local.strftime("%Y/%m/%d %H:%M") + '"'
