"""Building Zendesk search queries safely.

Zendesk's search language (``status:pending updated<2026-11-23T08:00:00Z``) has operators
(``:``, ``<``, ``>``, ``-`` for negation, ``*`` wildcards), keywords (``type:``, ``status:``,
``requester:``…) and double-quoted phrases — and **no escape character**: a ``"`` inside a
phrase cannot be written. So every value that goes into a query is either

* a double-quoted phrase (:func:`quote_search_value`), refused outright when it contains a
  double quote, a backslash or a control character — refusing is the only safe answer when
  the language cannot express the value, and a silently altered value would search for
  something else; or
* a date-time ticketwarden formats itself (:func:`search_time`): UTC, whole seconds, made of
  digits, ``-``, ``:``, ``T`` and ``Z`` only, in the unquoted form Zendesk documents for date
  comparisons (``updated<2015-09-01T12:00:00Z``). It is checked against that pattern, so it
  cannot carry an operator either.

The search *export* endpoint takes the object type as the ``filter[type]`` parameter; Zendesk's
reference says a ``type:`` keyword in its query is an error, so :func:`ticket_search_query`
never writes one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = [
    "SearchValueError",
    "quote_search_value",
    "search_field_key",
    "search_time",
    "ticket_search_query",
]

_UNQUOTABLE = re.compile(r'["\\\x00-\x1f\x7f]')
_SEARCH_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_KEYWORD = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELD_KEY = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_]+$")


class SearchValueError(ValueError):
    """A value that cannot be written into a Zendesk search query without changing its meaning."""


def quote_search_value(value: str) -> str:
    """``value`` as a double-quoted Zendesk search phrase.

    >>> quote_search_value("pending")
    '"pending"'

    :raises SearchValueError: the value is empty or contains a double quote, a backslash or a
        control character — Zendesk's query syntax has no way to escape them inside a phrase.
    """
    if not value or not value.strip():
        raise SearchValueError("an empty value cannot be searched for")
    bad = _UNQUOTABLE.search(value)
    if bad:
        raise SearchValueError(
            f"{value!r} contains {bad.group()!r}, which a Zendesk search phrase cannot hold"
        )
    return f'"{value}"'


def search_time(at: datetime) -> str:
    """An aware datetime as the date-time Zendesk's search compares with: ``2026-11-23T08:00:00Z``.

    Sub-second parts are dropped (Zendesk stores whole seconds).

    :raises SearchValueError: ``at`` is naive (a time without a zone is ambiguous).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise SearchValueError(f"{at!r} has no time zone")
    text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not _SEARCH_TIME.match(text):  # e.g. a year beyond 9999 or before 1000
        raise SearchValueError(f"{at!r} cannot be written as a search date-time")
    return text


def search_field_key(key: str) -> str:
    """A user or organization field key as a search property (``tw_authorized_contact``).

    Zendesk field keys consist of letters, digits and underscores and are not only digits;
    anything else is refused rather than written into a query.

    :raises SearchValueError: ``key`` is not a field key.
    """
    if not _FIELD_KEY.match(key):
        raise SearchValueError(f"{key!r} is not a Zendesk field key (letters, digits, _)")
    return key


def ticket_search_query(
    keyword: str,
    value: str,
    *,
    updated_before: datetime | None = None,
    updated_after: datetime | None = None,
) -> str:
    """The query of a ticket search export: ``status:"pending" updated<2026-11-23T08:00:00Z``.

    :param keyword: the property searched, e.g. ``status`` or ``custom_status_id`` (a fixed
        name, checked to be one).
    :param value: its value, quoted by :func:`quote_search_value`.
    :raises SearchValueError: the keyword is not a plain property name, or a value cannot be
        written safely.
    """
    if not _KEYWORD.match(keyword):
        raise SearchValueError(f"{keyword!r} is not a search property name")
    parts = [f"{keyword}:{quote_search_value(value)}"]
    if updated_before is not None:
        parts.append(f"updated<{search_time(updated_before)}")
    if updated_after is not None:
        parts.append(f"updated>{search_time(updated_after)}")
    return " ".join(parts)
