"""The one async HTTP client every helpdesk connector talks through.

:class:`DeskClient` wraps an :class:`httpx.AsyncClient` bound to one desk (its base URL and
credentials) and adds what every connector needs and none should write again:

* **Typed errors.** A 4xx/5xx becomes the matching :mod:`ticketwarden.core.errors` class, with
  a redacted excerpt of the body; transport failures become :class:`TransportError`.
* **Retries** (tenacity), with capped, jittered exponential backoff, on 5xx, connection errors
  and timeouts — but a *non-idempotent* request (POST, PATCH, or anything passed
  ``idempotent=False``) is retried only when it certainly never reached the server (connect
  error, connect or pool timeout). A read timeout, a dropped connection or a 5xx on it raises
  :class:`OutcomeUnknownError` at once; :func:`create_once` turns that into "created exactly
  once" by looking for the object before sending again.
* **429** is retried for every method (the desk did not process the request) after the wait the
  desk asked for (``Retry-After``/``Retry-After-Ms`` in seconds or as an HTTP date, else the
  rate-limit reset). A wait above ``RetryPolicy.max_retry_after`` is *not* slept: the client
  raises :class:`RateLimitedError` carrying ``retry_after``, so a job defers the work and the
  webhook path queues it, instead of a request hanging for an hour. (anthropic-sdk-python falls
  back to short backoff above 60 s; against per-minute and per-hour helpdesk quotas that only
  buys more 429s.)
* **A request budget** (:class:`TokenBucket`): ticketwarden uses only its ``share`` of the
  plan's requests per minute, and, once the desk's rate-limit headers are known, never sends a
  request the desk would refuse: it slows down when the window runs low and waits for the reset
  when it is empty. The headers of Zendesk, Jira and Freshdesk are understood
  (:func:`parse_rate_limit_headers`).
* **No real waiting in tests**: the monotonic ``clock``, the async ``sleep``, the
  ``wall_clock`` (for HTTP dates) and the jitter's ``random`` are injected.
* **No secrets in logs or errors**: one debug line per request (method, path, status, ms),
  never headers or bodies, and every message passes :func:`redact`.

Paginators (:func:`paginate_cursor`, :func:`paginate_links`, :func:`paginate_pages`) are async
generators of items with loop detection and a page limit.

Vendor facts behind the rules (checked against the vendors' docs, 2025-2026):

* Zendesk: ``X-Rate-Limit``/``X-Rate-Limit-Remaining`` for the current minute on every
  response; list endpoints add ``ratelimit-limit``/``-remaining``/``-reset`` (seconds); a 429
  carries ``Retry-After`` in seconds ("Best practices for avoiding rate limiting").
* Jira Cloud: ``X-RateLimit-Limit``/``-Remaining``; a 429 carries ``Retry-After`` (seconds) and
  ``X-RateLimit-Reset``, an ISO 8601 timestamp at minute precision (``yyyy-MM-ddTHH:mmZ``)
  ("Rate limiting", developer.atlassian.com).
* Freshdesk: ``X-RateLimit-Total``, ``X-RateLimit-Remaining`` and
  ``X-RateLimit-Used-CurrentRequest`` (what this request cost: embedding ``include=`` costs
  more than one call); no reset header; a 429 carries ``Retry-After`` in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import json as _json
import logging
import math
import random as _random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Self, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ticketwarden import __version__
from ticketwarden.core.errors import (
    HelpdeskError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
    error_for_status,
    redact,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "IDEMPOTENT_METHODS",
    "BasicCredentials",
    "BearerToken",
    "ClientStats",
    "DeskClient",
    "HttpSettings",
    "RateBudget",
    "RateLimitInfo",
    "RetryPolicy",
    "TokenBucket",
    "create_once",
    "link_header_next",
    "paginate_cursor",
    "paginate_links",
    "paginate_pages",
    "parse_rate_limit_headers",
    "parse_retry_after",
    "redact",
    "retry_after_from_headers",
]

T = TypeVar("T")

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
"""Methods retried after an ambiguous failure unless the caller says otherwise (RFC 9110 §9.2.2).

A PUT is idempotent only if it carries no side effect that accumulates: a Zendesk ticket
update with a ``comment`` riding along adds the comment again on every retry — send it with
``idempotent=False``."""

DEFAULT_MAX_PAGES: Final = 10_000

# --- Credentials --------------------------------------------------------------------------------


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class BasicCredentials(BaseModel):
    """HTTP basic auth: Zendesk ``{email}/token`` + API token, Jira e-mail + API token, Freshdesk
    API key + ``X``, RT user + password.

    Pass ``username`` as a :class:`SecretStr` when the user name is itself the secret
    (Freshdesk's API key): it is then redacted too.
    """

    model_config = ConfigDict(frozen=True)

    username: str | SecretStr
    password: SecretStr

    def _user(self) -> str:
        user = self.username
        return user.get_secret_value() if isinstance(user, SecretStr) else user

    def auth(self) -> httpx.Auth:
        """The :mod:`httpx` auth to send with every request."""
        return httpx.BasicAuth(self._user(), self.password.get_secret_value())

    def secrets(self) -> list[str]:
        """What to redact: the password, the ``Authorization: Basic`` value, a secret user name."""
        user, password = self._user(), self.password.get_secret_value()
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        found = [password, token]
        if isinstance(self.username, SecretStr):
            found.append(user)
        return found


class BearerToken(BaseModel):
    """``Authorization: Bearer`` (OAuth 2.0 access token)."""

    model_config = ConfigDict(frozen=True)

    token: SecretStr

    def auth(self) -> httpx.Auth:
        """The :mod:`httpx` auth to send with every request."""
        return _BearerAuth(self.token.get_secret_value())

    def secrets(self) -> list[str]:
        """What to redact: the token."""
        return [self.token.get_secret_value()]


# --- Settings -----------------------------------------------------------------------------------


class RetryPolicy(BaseModel):
    """How often and how patiently a request is retried; every retry constant lives here."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(4, ge=1, description="total tries, the first included")
    initial_backoff: float = Field(0.5, ge=0, description="seconds before the first retry")
    max_backoff: float = Field(30.0, ge=0, description="ceiling of one backoff, in seconds")
    jitter: float = Field(0.25, ge=0, le=1, description="a backoff is cut by up to this fraction")
    max_retry_after: float = Field(
        120.0,
        ge=0,
        description="longest wait the client sleeps for a 429 or an empty budget; a longer one "
        "raises RateLimitedError(retry_after=...) for the caller to defer the work",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must not be below initial_backoff")
        return self

    def backoff(self, retry_number: int, rng: _random.Random) -> float:
        """Seconds before retry ``retry_number`` (1 for the first retry): exponential from
        ``initial_backoff``, capped at ``max_backoff``, minus up to ``jitter`` of it."""
        base = min(self.initial_backoff * 2.0 ** (retry_number - 1), self.max_backoff)
        return base * (1.0 - self.jitter * rng.random())


class RateBudget(BaseModel):
    """The part of the desk's request quota ticketwarden may use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_minute: float = Field(100.0, gt=0, description="the helpdesk plan's limit")
    share: float = Field(0.5, gt=0, le=1, description="the fraction ticketwarden may use")
    burst: int = Field(5, ge=1, description="requests sent back to back before pacing")
    slow_when_remaining_below: float = Field(
        0.1, ge=0, lt=1, description="fraction of the desk's window left at which to slow down"
    )

    @property
    def rate_per_second(self) -> float:
        return self.requests_per_minute * self.share / 60.0


class HttpSettings(BaseModel):
    """Timeouts (seconds), retries and request budget of one desk's client."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    write_timeout: float = Field(30.0, gt=0)
    pool_timeout: float = Field(5.0, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    budget: RateBudget = Field(default_factory=RateBudget)
    user_agent: str = f"ticketwarden/{__version__}"

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )


DEFAULT_SETTINGS: Final = HttpSettings()

# --- Rate-limit headers -------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimitInfo:
    """What a response says about the desk's rate-limit window.

    :param limit: requests allowed in the window.
    :param remaining: requests left in it.
    :param reset_after: seconds until it resets, ``None`` if the desk does not say.
    :param cost: how many requests the last one counted for (Freshdesk), ``None`` if unsaid.
    """

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    cost: int | None = None


RateLimitParser = Callable[[httpx.Headers, float], RateLimitInfo]
"""``(response headers, wall-clock epoch seconds) -> RateLimitInfo``."""

_NUMBER = re.compile(r"\s*(-?\d+(?:\.\d+)?)")
_EPOCH_THRESHOLD = 1e9  # a "reset" this large is a Unix timestamp, not seconds from now


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    match = _NUMBER.match(value) if value is not None else None
    return int(float(match.group(1))) if match else None


def _http_date(value: str) -> float | None:
    """Epoch seconds of an RFC 9110 HTTP date, ``None`` if it is not one."""
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # "-0000" parses naive; HTTP dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


_MINUTE_PRECISION = re.compile(r"T\d{2}:\d{2}(?:Z|[+-]\d{2}:?\d{2})?$")


def _reset_seconds(value: str | None, now_epoch: float) -> float | None:
    """Seconds until a reset given as seconds, a Unix timestamp, an ISO 8601 time or an HTTP
    date; ``None`` if unreadable.

    Jira gives the reset at minute precision (``2026-11-25T10:05Z``): the real reset may lie
    up to a minute later, so such a time counts as the end of its minute — waiting a little
    long beats a request the desk refuses.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        return max(0.0, number - now_epoch if number >= _EPOCH_THRESHOLD else number)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        epoch = _http_date(value)
    else:
        epoch = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        if _MINUTE_PRECISION.search(value):
            epoch += 60.0
    return None if epoch is None else max(0.0, epoch - now_epoch)


def parse_rate_limit_headers(
    headers: Mapping[str, str], now_epoch: float | None = None
) -> RateLimitInfo:
    """The rate-limit window a response reports, from any of the vendors' header families.

    * Zendesk: ``x-rate-limit``/``x-rate-limit-remaining``, and on list endpoints
      ``ratelimit-limit``/``ratelimit-remaining``/``ratelimit-reset`` (seconds).
    * Jira: ``x-ratelimit-limit``/``x-ratelimit-remaining``/``x-ratelimit-reset`` (an ISO 8601
      or HTTP date, or seconds).
    * Freshdesk: ``x-ratelimit-total``/``x-ratelimit-remaining``/
      ``x-ratelimit-used-currentrequest``.

    When several families are present the one with the fewest requests remaining wins (the
    tighter limit binds); a reset header of another family fills in for one that has none.

    :param now_epoch: the wall clock (Unix seconds) for absolute reset times; default now.
    """
    now = time.time() if now_epoch is None else now_epoch
    h = {k.lower(): v for k, v in headers.items()}
    families = [
        ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"),
        ("x-rate-limit", "x-rate-limit-remaining", None),
        ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"),
        ("x-ratelimit-total", "x-ratelimit-remaining", "x-ratelimit-reset"),
    ]
    candidates: list[RateLimitInfo] = []
    for limit_name, remaining_name, reset_name in families:
        if limit_name not in h and remaining_name not in h:
            continue
        if limit_name.startswith("x-ratelimit") and limit_name not in h:
            continue  # a bare x-ratelimit-remaining is read with whichever limit header exists
        reset = _reset_seconds(h.get(reset_name), now) if reset_name else None
        candidates.append(
            RateLimitInfo(_int_header(h, limit_name), _int_header(h, remaining_name), reset)
        )
    if not candidates and "x-ratelimit-remaining" in h:
        candidates.append(RateLimitInfo(None, _int_header(h, "x-ratelimit-remaining"), None))
    cost = _int_header(h, "x-ratelimit-used-currentrequest")
    if not candidates:
        return RateLimitInfo(cost=cost)
    known = [c for c in candidates if c.remaining is not None] or candidates
    best = min(known, key=lambda c: c.remaining if c.remaining is not None else math.inf)
    reset_after = best.reset_after
    if reset_after is None:
        resets = (
            _reset_seconds(h.get(name), now) for name in ("ratelimit-reset", "x-ratelimit-reset")
        )
        reset_after = next((r for r in resets if r is not None), None)
    return RateLimitInfo(best.limit, best.remaining, reset_after, cost)


def parse_retry_after(value: str, now_epoch: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds (fractions accepted) or an
    HTTP date; a negative or past value means 0; anything unreadable (or NaN, infinite) is
    ``None``."""
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        epoch = _http_date(value)
        return None if epoch is None else max(0.0, epoch - now_epoch)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_after_from_headers(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """Seconds to wait per ``Retry-After-Ms`` (milliseconds, preferred: more precise) or
    ``Retry-After``; ``None`` if neither is present and readable."""
    h = {k.lower(): v for k, v in headers.items()}
    millis = h.get("retry-after-ms")
    if millis is not None:
        seconds = parse_retry_after(millis, now_epoch)
        # an HTTP date in a milliseconds header makes no sense; only numbers count
        if seconds is not None and _NUMBER.fullmatch(millis.strip()):
            return seconds / 1000.0
    value = h.get("retry-after")
    return parse_retry_after(value, now_epoch) if value is not None else None


# --- Request budget -----------------------------------------------------------------------------

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_EPSILON = 1e-9


class TokenBucket:
    """Paces requests: a token bucket for ticketwarden's own budget, and the desk's reported
    window on top of it.

    * **Budget.** ``burst`` tokens, refilled at ``rate_per_second``; a request takes one. N
      requests go out as ``burst`` back to back, then one every ``1 / rate_per_second`` s.
    * **The desk's window** (:meth:`observe`, fed with every response's headers). The requests
      left are counted down locally with every request sent (and with the requests still in
      flight when a response reports its count), so concurrent callers cannot overrun them
      either. Below ``slow_when_remaining_below`` of the limit, the rest are spread evenly over
      the time to the reset; at zero, nothing is sent until the reset (plus ``reset_margin``:
      resets are reported in whole seconds or minutes). A desk that does not report its reset
      (Zendesk's non-list endpoints, Freshdesk) is assumed to reset within ``default_window``
      seconds — its windows are per minute.
    * **Holds** (:meth:`hold`): a 429's ``Retry-After`` stops every request until it elapses.

    The bucket never sleeps itself: :meth:`acquire` awaits the ``sleep`` it is given.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        clock: Clock = time.monotonic,
        *,
        slow_when_remaining_below: float = 0.1,
        default_window: float = 60.0,
        reset_margin: float = 1.0,
    ) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self._rate = rate_per_second
        self._burst = burst
        self._clock = clock
        self._slow_below = slow_when_remaining_below
        self._default_window = default_window
        self._reset_margin = reset_margin
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = asyncio.Lock()
        self._last_sent: float | None = None
        self._in_flight = 0
        # the desk's window, as last reported and counted down since
        self._limit: int | None = None
        self._remaining: float | None = None
        self._reset_at: float | None = None
        self._spacing = 0.0
        self._cost = 1

    @classmethod
    def from_budget(cls, budget: RateBudget, clock: Clock = time.monotonic) -> TokenBucket:
        return cls(
            budget.rate_per_second,
            budget.burst,
            clock,
            slow_when_remaining_below=budget.slow_when_remaining_below,
        )

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate)
        self._updated = now

    def _roll_window(self, now: float) -> None:
        if self._reset_at is None or now < self._reset_at:
            return
        # The window has reset: assume a full one until a response reports otherwise.
        if self._limit is None:
            self._remaining = self._reset_at = None
        else:
            self._remaining = float(self._limit)
            self._reset_at = now + self._default_window
        self._spacing = 0.0

    def _ready_at(self, now: float) -> float:
        self._refill(now)
        self._roll_window(now)
        ready = now if self._tokens >= 1 - _EPSILON else now + (1 - self._tokens) / self._rate
        if self._remaining is not None and self._reset_at is not None:
            if self._remaining < self._cost:
                ready = max(ready, self._reset_at)
            elif self._spacing > 0 and self._last_sent is not None:
                ready = max(ready, self._last_sent + self._spacing)
        return ready

    def delay(self) -> float:
        """Seconds until the next request may be sent (0: now), not counting queued callers."""
        now = self._clock()
        return max(0.0, self._ready_at(now) - now)

    async def acquire(self, sleep: Sleep) -> float:
        """Wait (through ``sleep``) until a request may be sent, and count it as sent.

        Callers are served in turn. Call :meth:`release` when its response (or failure) is in.
        :returns: the seconds waited.
        """
        started = self._clock()
        async with self._lock:
            while True:
                now = self._clock()
                ready = self._ready_at(now)
                if ready <= now + _EPSILON:
                    break
                await sleep(ready - now)
            self._tokens -= 1
            if self._remaining is not None:
                self._remaining = max(0.0, self._remaining - self._cost)
            self._last_sent = now
            self._in_flight += 1
        return self._clock() - started

    def release(self) -> None:
        """A request acquired earlier has finished (its response has been observed)."""
        self._in_flight = max(0, self._in_flight - 1)

    def observe(self, info: RateLimitInfo) -> None:
        """Take in the window a response reported (call it before :meth:`release`)."""
        if info.cost is not None and info.cost >= 1:
            self._cost = info.cost
        if info.limit is not None:
            self._limit = info.limit
        if info.remaining is None:
            return
        now = self._clock()
        # Requests still in flight were sent after this one was counted, or not yet counted:
        # assume the worst, that the desk has yet to count them.
        others = max(0, self._in_flight - 1)
        remaining = max(0.0, float(info.remaining) - others * self._cost)
        window = info.reset_after if info.reset_after is not None else self._default_window
        self._remaining = remaining
        self._reset_at = now + window + self._reset_margin
        requests_left = remaining / self._cost
        low = self._limit is not None and remaining < self._slow_below * self._limit
        # r requests left for T seconds: one every T / (r + 1), the next window's first at T
        self._spacing = (self._reset_at - now) / (requests_left + 1) if low else 0.0

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429's ``Retry-After``), then assume a fresh window."""
        now = self._clock()
        self._remaining = 0.0
        self._reset_at = now + max(0.0, seconds)
        self._spacing = 0.0


# --- The client ---------------------------------------------------------------------------------


@dataclass
class ClientStats:
    """Counters of one client, for logs and metrics."""

    requests: int = 0
    """Requests sent (every attempt)."""
    retries: int = 0
    """Attempts that were retries."""
    rate_limited: int = 0
    """429 responses received."""
    waited_seconds: float = 0.0
    """Time spent waiting for the request budget, the desk's window or a ``Retry-After``."""
    backoff_seconds: float = 0.0
    """Time spent in backoff between retries after errors."""
    errors: int = 0
    """Requests that ended in an error raised to the caller."""

    def __add__(self, other: ClientStats) -> ClientStats:
        return ClientStats(
            requests=self.requests + other.requests,
            retries=self.retries + other.retries,
            rate_limited=self.rate_limited + other.rate_limited,
            waited_seconds=self.waited_seconds + other.waited_seconds,
            backoff_seconds=self.backoff_seconds + other.backoff_seconds,
            errors=self.errors + other.errors,
        )


# A failure before the request left: nothing reached the server, retrying is always safe.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# A failure after the request may have reached the server.
_MAYBE_SENT: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class DeskClient:
    """The async HTTP client of one desk: base URL, credentials, retries, budget, typed errors.

    Use it as an async context manager, or call :meth:`aclose`. Relative URLs are resolved
    against ``base_url``; an absolute URL must be on the same scheme, host and port, so the
    credentials never go anywhere else.

    :param desk: the desk's configured name, carried by every error and log line.
    :param transport: an :class:`httpx.AsyncBaseTransport` (``httpx.MockTransport``, an ASGI
        app) instead of the network.
    :param clock: monotonic seconds; ``sleep`` waits that long. Tests pass a fake pair.
    :param wall_clock: Unix seconds, to read HTTP dates in ``Retry-After`` and reset headers.
    :param rate_limit_parser: reads a response's rate-limit headers.
    :param random: the source of backoff jitter (seed it for deterministic tests).
    """

    def __init__(
        self,
        desk: str,
        base_url: str,
        *,
        credentials: BasicCredentials | BearerToken | None = None,
        settings: HttpSettings = DEFAULT_SETTINGS,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Clock = time.time,
        rate_limit_parser: RateLimitParser = parse_rate_limit_headers,
        logger: logging.Logger | None = None,
        random: _random.Random | None = None,
    ) -> None:
        self.desk = desk
        self.settings = settings
        self.stats = ClientStats()
        self._secrets = credentials.secrets() if credentials is not None else []
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._rate_limit_parser = rate_limit_parser
        self._logger = logger or logging.getLogger(__name__)
        self._random = random or _random.Random()
        self._bucket = TokenBucket.from_budget(settings.budget, clock)
        self._http = httpx.AsyncClient(
            base_url=base_url,
            auth=credentials.auth() if credentials is not None else None,
            timeout=settings.timeout(),
            transport=transport,
            headers={"User-Agent": settings.user_agent, "Accept": "application/json"},
            follow_redirects=False,
        )

    @property
    def base_url(self) -> httpx.URL:
        return self._http.base_url

    @property
    def bucket(self) -> TokenBucket:
        """The request budget shared by every request of this client."""
        return self._bucket

    def secrets(self) -> list[str]:
        """The credentials' secrets, for callers that build messages of their own."""
        return list(self._secrets)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- URLs --

    def resolve(self, url: str | httpx.URL) -> httpx.URL:
        """The absolute URL a request to ``url`` goes to.

        :raises ProtocolError: ``url`` is absolute and on another scheme, host or port.
        """
        target = httpx.URL(url)
        if not target.is_absolute_url:
            return self._http.build_request("GET", target).url
        base = self.base_url
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise ProtocolError(
                self.desk,
                f"refusing to send credentials to {target.scheme}://{target.host}: "
                f"not the desk's origin {base.scheme}://{base.host}",
                url=str(target),
                secrets=self._secrets,
            )
        return target

    # -- requests --

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send a request with retries and pacing; return a 2xx or 3xx response.

        :param idempotent: whether sending the request twice has the effect of sending it
            once. Default: true for GET, HEAD, PUT, DELETE, OPTIONS; false for POST, PATCH.
            A non-idempotent request is retried only after failures that prove it never
            reached the server; a read timeout, dropped connection or 5xx raises
            :class:`OutcomeUnknownError` at once. Pass ``False`` for a PUT that appends (a
            Zendesk update carrying a comment).
        :raises HelpdeskError: the subclass for the failure (see :mod:`~ticketwarden.core.errors`).
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        # A relative path cannot leave the desk's origin; only absolute URLs need the check.
        target: str | httpx.URL = url
        if not isinstance(url, str) or "://" in url:
            target = self.resolve(url)

        async def attempt() -> httpx.Response:
            return await self._attempt(method, target, params, json, content, headers, idempotent)

        # Nearly every request succeeds at once: try it before building the retry machinery.
        try:
            return await attempt()
        except HelpdeskError as exc:
            if self.settings.retry.attempts <= 1 or not self._should_retry(exc):
                self.stats.errors += 1
                raise
            await self._retry_pause(exc, 1)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.retry.attempts - 1),
            wait=lambda state: self._backoff(state, offset=1),
            retry=retry_if_exception(self._should_retry),
            sleep=self._backoff_sleep,
            before_sleep=lambda state: self._before_retry(state, offset=1),
            reraise=True,
        )
        try:
            return await retrying(attempt)
        except HelpdeskError:
            self.stats.errors += 1
            raise

    async def get_json(
        self, url: str | httpx.URL, *, params: Mapping[str, Any] | None = None
    ) -> Any:
        """GET ``url`` and decode its JSON body (``None`` for an empty body).

        :raises ProtocolError: the body is not JSON.
        """
        return self.decode_json(await self.request("GET", url, params=params))

    async def send_json(
        self, method: str, url: str | httpx.URL, json: Any, *, idempotent: bool | None = None
    ) -> Any:
        """Send ``json`` as the body and decode the JSON answer (``None`` for an empty one)."""
        return self.decode_json(await self.request(method, url, json=json, idempotent=idempotent))

    def decode_json(self, response: httpx.Response) -> Any:
        """The JSON body of ``response``, ``None`` if it is empty.

        :raises ProtocolError: the body is not JSON (with an excerpt).
        """
        if not response.content.strip():
            return None
        try:
            return _json.loads(response.content)
        except ValueError as exc:
            raise ProtocolError(
                self.desk,
                f"malformed JSON in the response ({exc})",
                status_code=response.status_code,
                excerpt=response.text,
                request_id=response.headers.get("x-request-id"),
                method=response.request.method,
                url=str(response.request.url),
                secrets=self._secrets,
            ) from exc

    # -- internals --

    async def _attempt(
        self,
        method: str,
        url: str | httpx.URL,
        params: Mapping[str, Any] | None,
        json: Any,
        content: bytes | str | None,
        headers: Mapping[str, str] | None,
        idempotent: bool,
    ) -> httpx.Response:
        ceiling = self.settings.retry.max_retry_after
        request = self._http.build_request(
            method, url, params=params, json=json, content=content, headers=headers
        )
        delay = self._bucket.delay()
        if delay > ceiling:
            raise RateLimitedError(
                self.desk,
                f"the desk's rate-limit window (or ticketwarden's budget) allows the next "
                f"request in {delay:.0f} s, longer than the {ceiling:.0f} s the client waits; "
                "defer the work",
                retry_after=delay,
                method=method,
                url=str(request.url),
                secrets=self._secrets,
            )
        self.stats.waited_seconds += await self._bucket.acquire(self._sleep)
        self.stats.requests += 1
        started = self._clock()
        try:
            try:
                response = await self._http.send(request)
            except httpx.RequestError as exc:
                self._log_attempt(request, type(exc).__name__, started)
                raise self._request_failure(exc, request, idempotent) from exc
            info = self._rate_limit_parser(response.headers, self._wall_clock())
            self._bucket.observe(info)
        finally:
            self._bucket.release()
        self._log_attempt(request, str(response.status_code), started)
        status = response.status_code
        if status < 400:
            return response
        if status == 429:
            self.stats.rate_limited += 1
            retry_after = retry_after_from_headers(response.headers, self._wall_clock())
            if retry_after is None:
                retry_after = info.reset_after
            if retry_after is not None and retry_after <= ceiling:
                self._bucket.hold(retry_after)
            error = error_for_status(
                self.desk, response, secrets=self._secrets, retry_after=retry_after
            )
            if retry_after is not None and retry_after > ceiling:
                error.message = (
                    f"rate limited for {retry_after:.0f} s, longer than the {ceiling:.0f} s the "
                    f"client waits; defer the work ({error.message})"
                )
            raise error
        if status >= 500 and not idempotent:
            raise error_for_status(
                self.desk, response, secrets=self._secrets, error_class=OutcomeUnknownError
            )
        raise error_for_status(self.desk, response, secrets=self._secrets)

    def _request_failure(
        self, exc: httpx.RequestError, request: httpx.Request, idempotent: bool
    ) -> HelpdeskError:
        where: dict[str, Any] = {
            "method": request.method,
            "url": str(request.url),
            "secrets": self._secrets,
        }
        name = type(exc).__name__
        detail = f"{name}: {exc}" if str(exc) else name
        if isinstance(exc, httpx.DecodingError):
            return ProtocolError(self.desk, f"undecodable response body ({detail})", **where)
        if isinstance(exc, _NOT_SENT):
            return TransportError(self.desk, f"could not reach the desk ({detail})", **where)
        if isinstance(exc, _MAYBE_SENT) and not idempotent:
            return OutcomeUnknownError(
                self.desk,
                f"{detail} after the request may have reached the desk: it may or may not "
                "have been applied; look before sending it again",
                **where,
            )
        return TransportError(self.desk, detail, **where)

    def _should_retry(self, exc: BaseException) -> bool:
        return any(decide(exc) for decide in self._retry_decisions())

    def _retry_decisions(self) -> tuple[Callable[[BaseException], bool], ...]:
        ceiling = self.settings.retry.max_retry_after

        def rate_limited_briefly(exc: BaseException) -> bool:
            # 429: the desk processed nothing; retry whatever the method, unless the wait is
            # beyond the ceiling (the caller defers instead)
            return isinstance(exc, RateLimitedError) and (
                exc.retry_after is None or exc.retry_after <= ceiling
            )

        def server_error(exc: BaseException) -> bool:
            # a 5xx on a non-idempotent request arrives as OutcomeUnknownError, never retried
            return isinstance(exc, ServerError)

        def transport_failure(exc: BaseException) -> bool:
            return (
                isinstance(exc, TransportError)
                and not isinstance(exc, OutcomeUnknownError)
                and isinstance(exc.__cause__, _NOT_SENT + _MAYBE_SENT)
            )

        return rate_limited_briefly, server_error, transport_failure

    def _backoff_for(self, exc: BaseException | None, attempt_number: int) -> float:
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return 0.0  # the bucket holds every request until Retry-After has elapsed
        return self.settings.retry.backoff(attempt_number, self._random)

    def _backoff(self, state: RetryCallState, offset: int = 0) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        return self._backoff_for(exc, state.attempt_number + offset)

    async def _backoff_sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.backoff_seconds += seconds
            await self._sleep(seconds)

    async def _retry_pause(self, exc: BaseException, attempt_number: int) -> None:
        """Count, log and wait out one retry after attempt ``attempt_number`` failed."""
        wait = self._backoff_for(exc, attempt_number)
        self._note_retry(attempt_number, wait, exc)
        await self._backoff_sleep(wait)

    def _before_retry(self, state: RetryCallState, offset: int = 0) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        self._note_retry(state.attempt_number + offset, wait, exc)

    def _note_retry(self, attempt_number: int, wait: float, exc: BaseException | None) -> None:
        self.stats.retries += 1
        self._log(
            logging.INFO,
            f"{self.desk}: retry {attempt_number} in {wait:.2f} s after {exc}",
        )

    def _log_attempt(self, request: httpx.Request, outcome: str, started: float) -> None:
        if self._logger.isEnabledFor(logging.DEBUG):
            ms = (self._clock() - started) * 1000.0
            self._log(
                logging.DEBUG,
                f"{self.desk} {request.method} {request.url.path} -> {outcome} ({ms:.0f} ms)",
            )

    def _log(self, level: int, message: str) -> None:
        self._logger.log(level, "%s", redact(message, self._secrets))


# --- Creating exactly once ----------------------------------------------------------------------


async def create_once(
    send: Callable[[], Awaitable[T]],
    find_existing: Callable[[], Awaitable[T | None]],
    *,
    attempts: int = 3,
    settle_seconds: float = 0.0,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Create something (a comment, a note, a ticket) exactly once over an unreliable network.

    A POST that times out may have been applied: sending it again could post the comment
    twice, and not sending it again could lose it. The connector makes the outcome checkable
    by putting an **idempotency marker** into what it creates — a unique id in a hidden
    comment footer, an ``sd.`` property, a tag — and ``create_once`` does the rest:

    1. ``await send()``; its result is returned.
    2. If it raises :class:`OutcomeUnknownError` (the request may have landed), wait
       ``settle_seconds`` (let a slow server finish), then ``await find_existing()``, which
       looks for the marker. Found: return it — the first send landed, nothing is re-sent.
    3. Not found: the first send did not land; send again, up to ``attempts`` sends in all.
       If the last one is unknown too and still nothing is found, its
       :class:`OutcomeUnknownError` is raised: the caller must not assume either way.

    Errors where the outcome is known (a 422, a connect error after the client's retries,
    a 429 beyond the ceiling) propagate at once, as does any error of ``find_existing``
    (if we cannot look, re-sending could duplicate).

    ``find_existing`` must read strongly consistent data — the ticket's comments, not a
    search index that lags by minutes — or a landed create looks missing and is duplicated.

    :param send: performs the non-idempotent request and returns what it created.
    :param find_existing: returns the object carrying this create's marker, or ``None``.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for number in range(1, attempts + 1):
        try:
            return await send()
        except OutcomeUnknownError:
            if settle_seconds > 0:
                await sleep(settle_seconds)
            found = await find_existing()
            if found is not None:
                return found
            if number == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


# --- Pagination ---------------------------------------------------------------------------------

Params = Mapping[str, Any]


def _page_error(client: DeskClient, message: str, body: Any, url: str | httpx.URL) -> ProtocolError:
    try:
        excerpt = _json.dumps(body, default=str)
    except ValueError:
        excerpt = repr(body)
    return ProtocolError(
        client.desk, message, excerpt=excerpt, method="GET", url=str(url), secrets=client.secrets()
    )


def _read_page(
    client: DeskClient, what: str, url: str | httpx.URL, read: Callable[..., T], *args: Any
) -> T:
    """``read(*args)``, the caller's accessor on a page body (``args[0]``); any error it raises
    on an unexpected shape becomes a :class:`ProtocolError` with an excerpt of the body."""
    body = args[0]
    try:
        return read(*args)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise _page_error(
            client, f"unexpected page shape reading {what}: {exc!r}", body, url
        ) from exc


def _items_of(
    client: DeskClient, items: Callable[[Any], Sequence[T]], body: Any, url: str | httpx.URL
) -> Sequence[T]:
    page = _read_page(client, "the items", url, items, body)
    if not isinstance(page, Sequence) or isinstance(page, str | bytes):
        raise _page_error(client, f"the items of a page are not a list: {type(page)}", body, url)
    return page


def _too_many_pages(client: DeskClient, max_pages: int, url: str | httpx.URL) -> ProtocolError:
    return ProtocolError(
        client.desk,
        f"more than {max_pages} pages: stopping rather than paging forever",
        method="GET",
        url=str(url),
        secrets=client.secrets(),
    )


async def paginate_cursor(
    client: DeskClient,
    url: str,
    *,
    params: Params | None = None,
    items: Callable[[Any], Sequence[T]],
    next_cursor: Callable[[Any], str | None],
    cursor_param: str,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> AsyncIterator[T]:
    """Items of every page of a cursor-paged list (Zendesk incremental export, Jira
    ``/search/jql`` with ``nextPageToken``).

    The first page is fetched with ``params``; each next one with ``params`` plus
    ``{cursor_param: cursor}``. It ends when ``next_cursor(body)`` is ``None`` or empty
    (return ``None`` on ``end_of_stream`` / ``isLast``).

    :raises ProtocolError: a cursor repeats (a loop), more than ``max_pages`` pages, or
        ``items``/``next_cursor`` fail on the body.
    """
    seen: set[str] = set()
    query: dict[str, Any] = dict(params or {})
    for _ in range(max_pages):
        body = await client.get_json(url, params=query)
        for item in _items_of(client, items, body, url):
            yield item
        cursor = _read_page(client, "the next cursor", url, next_cursor, body)
        if not cursor:
            return
        if cursor in seen:
            raise _page_error(client, f"pagination loop: cursor {cursor!r} came twice", body, url)
        seen.add(cursor)
        query = {**(params or {}), cursor_param: cursor}
    raise _too_many_pages(client, max_pages, url)


def link_header_next(body: Any, response: httpx.Response) -> str | None:
    """The ``rel="next"`` URL of the ``Link`` header (RFC 8288), if any."""
    return response.links.get("next", {}).get("url") or None


async def paginate_links(
    client: DeskClient,
    url: str,
    *,
    params: Params | None = None,
    items: Callable[[Any], Sequence[T]],
    next_url: Callable[[Any, httpx.Response], str | None] = link_header_next,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> AsyncIterator[T]:
    """Items of every page of a list paged by next links (Zendesk ``links.next`` or
    ``after_url``, a ``Link`` header, RT's ``next_page``).

    The first page is fetched with ``params``; the next links carry their own query. A
    relative next link is resolved against the page it came from; an absolute one must be on
    the desk's own scheme, host and port — a link elsewhere would carry the credentials there.

    :raises ProtocolError: a link to another origin, a link to a page already fetched (a loop),
        more than ``max_pages`` pages, or ``items``/``next_url`` fail on the body.
    """
    seen: set[str] = set()
    target: str | httpx.URL = url
    query: Params | None = params
    for _ in range(max_pages):
        response = await client.request("GET", target, params=query)
        seen.add(str(response.request.url))
        body = client.decode_json(response)
        for item in _items_of(client, items, body, response.request.url):
            yield item
        link = _read_page(client, "the next link", response.request.url, next_url, body, response)
        if not link:
            return
        following = response.request.url.join(link)
        client.resolve(following)  # raises ProtocolError for another origin
        if str(following) in seen:
            raise _page_error(
                client, f"pagination loop: next link {following} was fetched before", body, target
            )
        target, query = following, None
    raise _too_many_pages(client, max_pages, url)


async def paginate_pages(
    client: DeskClient,
    url: str,
    *,
    params: Params | None = None,
    items: Callable[[Any], Sequence[T]],
    page_param: str = "page",
    per_page_param: str | None = "per_page",
    per_page: int = 100,
    start: int = 1,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> AsyncIterator[T]:
    """Items of every page of a page-numbered list (Freshdesk ``page``/``per_page``).

    Pages ``start``, ``start + 1``… are fetched until one is empty or shorter than
    ``per_page`` (also the expected page size when ``per_page_param`` is ``None`` and the
    size is not sent).

    :raises ProtocolError: a page repeats an earlier one item for item (the desk ignores the
        page parameter: a loop), more than ``max_pages`` pages, or ``items`` fails on a body.
    """
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    fingerprints: set[str] = set()
    for page in range(start, start + max_pages):
        query: dict[str, Any] = {**(params or {}), page_param: page}
        if per_page_param is not None:
            query[per_page_param] = per_page
        body = await client.get_json(url, params=query)
        page_items = _items_of(client, items, body, url)
        if not page_items:
            return
        fingerprint = hashlib.sha256(
            _json.dumps(list(page_items), sort_keys=True, default=str).encode()
        ).hexdigest()
        if fingerprint in fingerprints:
            raise _page_error(
                client,
                f"pagination loop: page {page} repeats an earlier page; "
                f"does the desk ignore {page_param!r}?",
                body,
                url,
            )
        fingerprints.add(fingerprint)
        for item in page_items:
            yield item
        if len(page_items) < per_page:
            return
    raise _too_many_pages(client, max_pages, url)
