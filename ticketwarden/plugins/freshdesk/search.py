"""Building Freshdesk filter-API queries safely.

The filter API (``GET /api/v2/search/tickets?query="…"``) takes one query, **wrapped in double
quotes**, of at most 512 characters: terms ``field:value``, ``field:>value`` (greater than or
equal) and ``field:<value`` (less than or equal), joined by ``AND``/``OR`` and parentheses.
Strings are written in single quotes and the language has **no escape character** — a single
quote ends the string wherever it stands, and a double quote ends the whole query. Dates are
``'yyyy-mm-dd'`` and mean the whole UTC day: there is no time of day.

So every value that goes into a query is either

* a number ticketwarden formats itself (:func:`search_number`): an ``int``, never a ``bool``,
  written in decimal;
* a date ticketwarden formats itself (:func:`search_day`), checked against ``yyyy-mm-dd``;
* a single-quoted string (:func:`quote_string`), refused outright when it contains a single or
  double quote, a backslash or a control character — the language cannot express such a value,
  and a silently altered value would search for something else (or, unrefused, let the value
  close the string and add terms of its own: ``x' OR status:2``).

Field names are checked too (:func:`search_field`): letters, digits and ``_``, not a keyword.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date

__all__ = [
    "QUERY_MAX_LENGTH",
    "SearchValueError",
    "all_of",
    "any_of",
    "quote_string",
    "search_day",
    "search_field",
    "search_number",
    "term",
    "ticket_candidates_query",
    "wrap_query",
]

QUERY_MAX_LENGTH = 512
"""The longest ``query`` parameter Freshdesk accepts (counted with its double quotes)."""

_UNQUOTABLE = re.compile(r"[\"'\\\x00-\x1f\x7f]")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYWORDS = frozenset({"AND", "OR", "null", "true", "false"})
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OPERATORS = frozenset({":", ":>", ":<"})


class SearchValueError(ValueError):
    """A value that cannot be written into a Freshdesk filter query without changing its
    meaning."""


def quote_string(value: str) -> str:
    """``value`` as a single-quoted filter-API string.

    >>> quote_string("Question")
    "'Question'"

    :raises SearchValueError: the value is empty or contains a quote (single or double), a
        backslash or a control character — Freshdesk's query language cannot escape them.
    """
    if not value or not value.strip():
        raise SearchValueError("an empty value cannot be searched for")
    bad = _UNQUOTABLE.search(value)
    if bad:
        raise SearchValueError(
            f"{value!r} contains {bad.group()!r}, which a Freshdesk filter query cannot hold"
        )
    return f"'{value}'"


def search_number(value: int) -> str:
    """An integer (a status or priority code, an id) as the filter API writes it.

    :raises SearchValueError: ``value`` is not an ``int`` (a ``bool`` is refused too).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise SearchValueError(f"{value!r} is not an integer")
    return str(value)


def search_day(day: date) -> str:
    """A date as the filter API compares with: ``'2026-11-23'`` (the whole UTC day).

    :raises SearchValueError: the date cannot be written as ``yyyy-mm-dd`` (a year before 1000).
    """
    text = day.isoformat()
    if not _DAY.match(text):
        raise SearchValueError(f"{day!r} cannot be written as a filter-API date")
    return f"'{text}'"


def search_field(name: str) -> str:
    """A field name (``status``, ``updated_at``, ``cf_severity``), checked to be one.

    :raises SearchValueError: ``name`` is not made of letters, digits and ``_``, or is a keyword.
    """
    if not _FIELD.match(name) or name in _KEYWORDS:
        raise SearchValueError(f"{name!r} is not a filter-API field name")
    return name


def term(name: str, op: str, value: int | str | date) -> str:
    """One ``field OP value`` term; ``value`` is formatted by its type (int, date, string)."""
    if op not in _OPERATORS:
        raise SearchValueError(f"{op!r} is not a filter-API operator")
    if isinstance(value, date):
        text = search_day(value)
    elif isinstance(value, int):
        text = search_number(value)
    else:
        text = quote_string(value)
    return f"{search_field(name)}{op}{text}"


def any_of(terms: Sequence[str]) -> str:
    """Terms joined by ``OR``, in parentheses when there are several."""
    if not terms:
        raise SearchValueError("OR of nothing")
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def all_of(terms: Sequence[str]) -> str:
    """Terms joined by ``AND``."""
    if not terms:
        raise SearchValueError("AND of nothing")
    return " AND ".join(terms)


def wrap_query(query: str) -> str:
    """The ``query`` parameter: the query in double quotes, at most 512 characters.

    :raises SearchValueError: the query holds a double quote or is too long.
    """
    if '"' in query:
        raise SearchValueError("a filter query cannot contain a double quote")
    wrapped = f'"{query}"'
    if len(wrapped) > QUERY_MAX_LENGTH:
        raise SearchValueError(
            f"the query has {len(wrapped)} characters, Freshdesk takes at most {QUERY_MAX_LENGTH}"
        )
    return wrapped


def ticket_candidates_query(
    status_codes: Iterable[int],
    *,
    from_day: date | None = None,
    to_day: date | None = None,
    priority: int | None = None,
) -> str:
    """The ``query`` parameter for tickets in one of ``status_codes`` updated within the whole
    days ``from_day`` … ``to_day`` (both inclusive, either open), optionally of one priority:
    ``"(status:3 OR status:6) AND updated_at:>'2026-11-01' AND updated_at:<'2026-11-23'"``.
    """
    codes = sorted(set(status_codes))
    if not codes:
        raise SearchValueError("no status to search for")
    parts = [any_of([term("status", ":", code) for code in codes])]
    if from_day is not None:
        parts.append(term("updated_at", ":>", from_day))
    if to_day is not None:
        parts.append(term("updated_at", ":<", to_day))
    if priority is not None:
        parts.append(term("priority", ":", priority))
    return wrap_query(all_of(parts))
