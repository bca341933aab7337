"""The built-in policy rules: one plugin module per section of POLICY.md.

Each module is registered through the ``ticketwarden`` entry-point group exactly like a
third-party plugin. Rule functions are named for what they enforce and their docstrings start
with the rule ids they implement. This package's own namespace holds only the small helpers
the rule modules share (message rendering, phrase matching, human-readable times).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ticketwarden.core.clock import Span


class _Keep(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, **values: object) -> str:
    """Fill ``{name}`` placeholders of a policy message; unknown placeholders stay visible."""
    return template.format_map(_Keep({k: str(v) for k, v in values.items()}))


_SPACE = re.compile(r"\s+")


@functools.lru_cache(maxsize=1024)
def normalize(text: str) -> str:
    """Lower case with runs of white space folded, for phrase matching."""
    return _SPACE.sub(" ", text.lower()).strip()


@functools.lru_cache(maxsize=128)
def _normalized(phrases: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((normalize(p), p) for p in phrases)


def has_phrase(text: str, phrases: Iterable[str]) -> str | None:
    """The first of ``phrases`` that occurs in ``text`` (case and spacing ignored), if any."""
    haystack = normalize(text)
    for needle, phrase in _normalized(tuple(phrases)):
        if needle in haystack:
            return phrase
    return None


def human_span(span: Span) -> str:
    """``2d4h`` as "2 days 4 hours" for messages to customers."""
    parts = []
    if span.days:
        parts.append(f"{span.days} day{'s' if span.days != 1 else ''}")
    hours, rest = divmod(span.seconds, 3600)
    minutes = rest // 60
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts) or "0 minutes"


def human_time(at: datetime, timezone: str) -> str:
    """An instant as local date and time in the support calendar's zone."""
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def fraction(duration: timedelta, share: float) -> timedelta:
    """``share`` of a duration, to the second (warnings at 80 % of a target)."""
    return timedelta(seconds=round(duration.total_seconds() * share))
