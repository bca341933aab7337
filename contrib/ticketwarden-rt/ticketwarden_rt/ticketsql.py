"""TicketSQL, RT's search language: quoting values and writing the queries the connector sends.

Every value that goes into a query passes through :func:`quote` (strings) or :func:`rt_time`
(times) or :func:`ticket_id` (numbers); nothing is pasted in raw. RT's query parser reads a
single-quoted string up to the next unescaped ``'`` and takes a backslash as the escape
character (``'it\\'s'``), as RT's own search builder writes them — checked against RT 5.0.3:
``Subject = 'it''s'`` is a syntax error there, ``Subject = 'it\\'s'`` finds the ticket.

Times: ``LastUpdated > '2026-11-26 03:08:51 +0000'`` compares to the second and honours the
explicit offset whatever the RT user's or server's time zone. Two traps, both checked against a
real RT: an ISO time with ``T…Z`` is misread (the time is dropped), and ``=`` on a date means
*the whole day* — so the connector only ever uses ``<``, ``>`` and ``>=`` on dates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

__all__ = ["any_of", "quote", "rt_time", "ticket_id"]

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ID = re.compile(r"^[1-9][0-9]{0,17}$")


def quote(value: str) -> str:
    """``value`` as a single-quoted TicketSQL string: backslashes and quotes escaped.

    :raises ValueError: the value holds a control character (RT's parser has no escape for
        them, and no legitimate status, queue or subject needs one).
    """
    if _CONTROL.search(value):
        raise ValueError(f"control characters cannot go into TicketSQL: {value!r}")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def rt_time(at: datetime) -> str:
    """An aware time as a quoted TicketSQL date in UTC with an explicit offset, to the second
    (RT keeps whole seconds): ``'2026-11-26 03:08:51 +0000'``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("TicketSQL times must be timezone-aware")
    return quote(at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000"))


def ticket_id(value: str | int) -> str:
    """A ticket id checked to be a positive integer (ids are compared unquoted)."""
    text = str(value)
    if not _ID.match(text):
        raise ValueError(f"{value!r} is not an RT ticket id")
    return text


def any_of(field: str, values: Iterable[str]) -> str:
    """``(Field = 'a' OR Field = 'b')`` for a fixed field name and quoted values."""
    if not re.fullmatch(r"[A-Za-z]+", field):
        raise ValueError(f"{field!r} is not a plain TicketSQL field name")
    terms = [f"{field} = {quote(v)}" for v in values]
    if not terms:
        raise ValueError(f"no values for {field}")
    return "(" + " OR ".join(terms) + ")"
