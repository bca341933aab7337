"""The shared helpdesk HTTP client: typed errors, retries, Retry-After, the request budget,
rate-limit headers, create-once, pagination and redaction.

Nothing here sleeps for real: every client runs on a :class:`FakeClock` whose ``sleep``
advances simulated time and records the wait, and respx stands in for the desks.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import math
import pickle
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
import respx

from ticketwarden.core.errors import (
    AuthenticationError,
    ConflictError,
    HelpdeskError,
    NotFoundError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitedError,
    RejectedError,
    ServerError,
    TransportError,
    error_for_status,
    sanitize_url,
)
from ticketwarden.core.http import (
    BasicCredentials,
    BearerToken,
    DeskClient,
    HttpSettings,
    RateBudget,
    RateLimitInfo,
    RetryPolicy,
    TokenBucket,
    create_once,
    paginate_cursor,
    paginate_links,
    paginate_pages,
    parse_rate_limit_headers,
    parse_retry_after,
    redact,
    retry_after_from_headers,
)

VENDOR = Path(__file__).resolve().parents[2] / "shared" / "vendor"

BASE = "https://acme.zendesk.com/api/v2/"
USER = "agent@acme.example/token"
SECRET = "s3cr3t-Zd-api-token-4711"
BASIC = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
CREDS = BasicCredentials(username=USER, password=pydantic.SecretStr(SECRET))

# A budget so large that pacing never waits: retry tests see only their backoff waits.
ROOMY = RateBudget(requests_per_minute=60_000, share=1.0, burst=1_000)
NO_JITTER = HttpSettings(retry=RetryPolicy(jitter=0.0), budget=ROOMY)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """Monotonic and wall time that move only when someone sleeps; every wait is recorded."""

    WALL_START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()  # on a whole minute

    def __init__(self) -> None:
        self.start = 1000.0
        self.now = self.start
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.WALL_START + (self.now - self.start)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    @property
    def elapsed(self) -> float:
        return self.now - self.start


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client_for(
    clock: FakeClock,
    settings: HttpSettings = NO_JITTER,
    credentials: BasicCredentials | BearerToken | None = CREDS,
    **kwargs: Any,
) -> DeskClient:
    return DeskClient(
        "zendesk-acme",
        BASE,
        credentials=credentials,
        settings=settings,
        clock=clock.monotonic,
        sleep=clock.sleep,
        wall_clock=clock.wall,
        random=random.Random(7),
        **kwargs,
    )


def recorder(
    clock: FakeClock, *answers: httpx.Response | type[Exception]
) -> tuple[Callable[[httpx.Request], httpx.Response], list[float]]:
    """A respx side effect giving ``answers`` in turn (an exception class is raised), and the
    fake times at which the requests arrived."""
    times: list[float] = []
    queue = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        times.append(clock.elapsed)
        nxt = queue.pop(0)
        if isinstance(nxt, httpx.Response):
            return nxt
        raise nxt("simulated", request=request)  # type: ignore[call-arg]

    return answer, times


OK = httpx.Response(200, json={"ticket": {"id": 1}})


# --- Typed errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (
            400,
            {
                "error": "TooManyValues",
                "description": "Parameter cannot specify more than 100 values",
            },
            RejectedError,
            "more than 100",
        ),
        (401, {"error": "Couldn't authenticate you"}, AuthenticationError, "authenticate"),
        (
            403,
            {"error": {"title": "Forbidden", "message": "You do not have access"}},
            AuthenticationError,
            "do not have access",
        ),
        (
            404,
            {"error": "RecordNotFound", "description": "Not found"},
            NotFoundError,
            "RecordNotFound",
        ),
        (
            409,
            {"error": "UpdateConflict", "description": "Ticket was updated meanwhile"},
            ConflictError,
            "updated meanwhile",
        ),
        (412, {"errorMessages": ["Precondition failed"]}, ConflictError, "Precondition failed"),
        (
            422,
            {
                "error": "RecordInvalid",
                "details": {"status": [{"description": "Status: closed prevents ticket update"}]},
            },
            RejectedError,
            "closed prevents ticket update",
        ),
        (
            405,
            {
                "description": "Validation failed",
                "errors": [
                    {
                        "field": "email",
                        "message": "It should be a valid email",
                        "code": "invalid_value",
                    }
                ],
            },
            RejectedError,
            "email: It should be a valid email",
        ),
    ],
)
@pytest.mark.anyio
async def test_error_status_raises_its_class_with_excerpt_and_no_secret(
    clock: FakeClock, status: int, body: dict[str, Any], cls: type[HelpdeskError], message: str
) -> None:
    """A 4xx is not retried and becomes its class: the desk's message, an excerpt of the body,
    the request id, and a one-line str() without the credentials the body echoed."""
    echoed = {**body, "echo": f"Authorization: Basic {BASIC}; token={SECRET}"}
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            route = desk.put("tickets/7.json").respond(
                status, json=echoed, headers={"x-zendesk-request-id": "req-42"}
            )
            with pytest.raises(HelpdeskError) as caught:
                await client.request("PUT", "tickets/7.json", json={"ticket": {"status": "open"}})
    error = caught.value
    assert type(error) is cls
    assert route.call_count == 1
    assert (error.status_code, error.request_id, error.method) == (status, "req-42", "PUT")
    assert message in error.message
    assert error.excerpt.startswith(json.dumps(body, separators=(",", ":"))[:20])
    assert len(error.excerpt) <= 300
    line = str(error)
    assert "\n" not in line
    for part in ("zendesk-acme", "PUT", "/api/v2/tickets/7.json", str(status), message):
        assert part in line
    for text in (line, repr(error), error.excerpt):
        assert SECRET not in text and BASIC not in text


def test_error_for_status_keeps_a_long_body_to_300_characters() -> None:
    request = httpx.Request("GET", "https://acme.freshdesk.com/api/v2/tickets?api_key=abc123")
    response = httpx.Response(500, text="x" * 5000, request=request)
    error = error_for_status("freshdesk", response)
    assert isinstance(error, ServerError)
    assert len(error.excerpt) == 300
    assert error.url == "https://acme.freshdesk.com/api/v2/tickets?api_key=***"


def test_rate_limited_error_carries_retry_after_also_across_processes() -> None:
    response = httpx.Response(429, request=httpx.Request("GET", BASE))
    error = error_for_status("zendesk", response, retry_after=93.0)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 93.0
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.retry_after, str(copy)) == (RateLimitedError, 93.0, str(error))


# --- Retries ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_server_errors_are_retried_with_growing_capped_backoff(clock: FakeClock) -> None:
    settings = HttpSettings(retry=RetryPolicy(jitter=0.0, max_backoff=1.5), budget=ROOMY)
    answer, times = recorder(
        clock, httpx.Response(503), httpx.Response(502), httpx.Response(500), OK
    )
    async with client_for(clock, settings) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets/1.json").mock(side_effect=answer)
            response = await client.request("GET", "tickets/1.json")
    assert response.json() == {"ticket": {"id": 1}}
    assert len(times) == 4
    assert clock.waits == [0.5, 1.0, 1.5]  # 0.5 * 2**n, capped at max_backoff
    assert (client.stats.requests, client.stats.retries, client.stats.errors) == (4, 3, 0)


@pytest.mark.anyio
async def test_backoff_jitter_stays_within_its_fraction(clock: FakeClock) -> None:
    settings = HttpSettings(retry=RetryPolicy(jitter=0.25), budget=ROOMY)
    answer, _ = recorder(clock, httpx.Response(500), httpx.Response(500), httpx.Response(500), OK)
    async with client_for(clock, settings) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets/1.json").mock(side_effect=answer)
            await client.request("GET", "tickets/1.json")
    for wait, base in zip(clock.waits, [0.5, 1.0, 2.0], strict=True):
        assert base * 0.75 <= wait <= base
    assert len(set(clock.waits)) == 3


@pytest.mark.anyio
async def test_server_errors_exhausting_the_attempts_raise_server_error(clock: FakeClock) -> None:
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            route = desk.get("tickets/1.json").respond(503, json={"error": "Maintenance"})
            with pytest.raises(ServerError, match="Maintenance"):
                await client.request("GET", "tickets/1.json")
    assert route.call_count == 4
    assert (client.stats.retries, client.stats.errors) == (3, 1)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
@pytest.mark.anyio
async def test_failures_before_sending_are_retried_for_every_method(
    clock: FakeClock, method: str, failure: type[Exception]
) -> None:
    """Nothing reached the server, so even a POST is sent again."""
    answer, times = recorder(clock, failure, httpx.Response(201, json={"id": 9}))
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.request(method, "tickets.json").mock(side_effect=answer)
            response = await client.request(method, "tickets.json", json={"ticket": {}})
    assert response.status_code == 201
    assert len(times) == 2


@pytest.mark.anyio
async def test_connect_errors_exhausting_the_attempts_raise_transport_error(
    clock: FakeClock,
) -> None:
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            route = desk.post("tickets.json").mock(side_effect=httpx.ConnectError("refused"))
            with pytest.raises(TransportError) as caught:
                await client.request("POST", "tickets.json", json={})
    assert type(caught.value) is TransportError  # certainly not applied: not "unknown"
    assert route.call_count == 4


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError])
@pytest.mark.anyio
async def test_read_failures_on_get_are_retried(clock: FakeClock, failure: type[Exception]) -> None:
    answer, times = recorder(clock, failure, OK)
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets/1.json").mock(side_effect=answer)
            assert (await client.get_json("tickets/1.json")) == {"ticket": {"id": 1}}
    assert len(times) == 2


@pytest.mark.parametrize(
    ("method", "idempotent", "failure"),
    [
        ("POST", None, httpx.ReadTimeout),
        ("POST", None, httpx.ReadError),
        ("POST", None, httpx.WriteTimeout),
        ("PATCH", None, httpx.ReadTimeout),
        ("PUT", False, httpx.ReadTimeout),  # a ticket update carrying a comment
        ("POST", None, httpx.Response(502)),
    ],
)
@pytest.mark.anyio
async def test_ambiguous_failure_of_a_non_idempotent_request_is_outcome_unknown_after_one_send(
    clock: FakeClock,
    method: str,
    idempotent: bool | None,
    failure: type[Exception] | httpx.Response,
) -> None:
    answer, times = recorder(clock, failure, httpx.Response(201))
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.request(method, "tickets/7/comments.json").mock(side_effect=answer)
            with pytest.raises(OutcomeUnknownError) as caught:
                await client.request(
                    method, "tickets/7/comments.json", json={"body": "hi"}, idempotent=idempotent
                )
    assert len(times) == 1  # exactly ONE request sent: no duplicate comment
    assert clock.waits == []
    assert "may or may not" in str(caught.value) or caught.value.status_code == 502


# --- 429 and Retry-After ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.anyio
async def test_429_waits_retry_after_exactly_then_retries(clock: FakeClock, method: str) -> None:
    answer, times = recorder(
        clock, httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={})
    )
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.request(method, "tickets.json").mock(side_effect=answer)
            await client.request(method, "tickets.json")
    assert times == [0.0, 7.0]  # nothing was sent before Retry-After elapsed
    assert clock.waits == [7.0]
    assert (client.stats.rate_limited, client.stats.waited_seconds) == (1, 7.0)


@pytest.mark.anyio
async def test_429_with_an_http_date_retry_after(clock: FakeClock) -> None:
    when = datetime.fromtimestamp(clock.wall() + 30, UTC)
    answer, times = recorder(
        clock,
        httpx.Response(429, headers={"Retry-After": email.utils.format_datetime(when, True)}),
        OK,
    )
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets/1.json").mock(side_effect=answer)
            await client.request("GET", "tickets/1.json")
    assert times == [0.0, 30.0]


@pytest.mark.anyio
async def test_429_beyond_the_ceiling_raises_rate_limited_without_waiting(
    clock: FakeClock,
) -> None:
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            route = desk.get("tickets/1.json").respond(429, headers={"Retry-After": "3600"})
            with pytest.raises(RateLimitedError) as caught:
                await client.request("GET", "tickets/1.json")
    assert caught.value.retry_after == 3600.0
    assert "defer" in str(caught.value)
    assert route.call_count == 1
    assert clock.waits == []


@pytest.mark.anyio
async def test_an_empty_window_longer_than_the_ceiling_raises_before_sending(
    clock: FakeClock,
) -> None:
    """The desk said its window is used up for an hour: the next request is not sent (it
    would get a 429) and the caller learns how long to defer."""
    headers = {
        "x-ratelimit-limit": "3000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "2026-11-25T10:59Z",  # so: by 11:00, an hour from now
    }
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            route = desk.get("tickets/1.json").respond(200, json={}, headers=headers)
            await client.request("GET", "tickets/1.json")
            with pytest.raises(RateLimitedError) as caught:
                await client.request("GET", "tickets/1.json")
    assert route.call_count == 1
    assert caught.value.retry_after == pytest.approx(3601.0)
    assert clock.waits == []


@pytest.mark.anyio
async def test_429_without_retry_after_backs_off(clock: FakeClock) -> None:
    answer, times = recorder(clock, httpx.Response(429), OK)
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets/1.json").mock(side_effect=answer)
            await client.request("GET", "tickets/1.json")
    assert times == [0.0, 0.5]


# --- The request budget -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_budget_spreads_requests_after_the_burst(clock: FakeClock) -> None:
    """60 requests/min at a share of 0.5 is one request every 2 s once the burst of 5 is spent."""
    budget = RateBudget(requests_per_minute=60, share=0.5, burst=5)
    answer, times = recorder(clock, *[httpx.Response(200, json={}) for _ in range(9)])
    async with client_for(clock, HttpSettings(budget=budget)) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets.json").mock(side_effect=answer)
            for _ in range(9):
                await client.request("GET", "tickets.json")
    assert times == pytest.approx([0, 0, 0, 0, 0, 2, 4, 6, 8])
    assert client.stats.waited_seconds == pytest.approx(8.0)


class WindowedDesk:
    """A desk enforcing ``limit`` requests per fixed window of the fake clock: past the limit
    it answers 429. It reports its window in one vendor's headers."""

    def __init__(
        self,
        clock: FakeClock,
        style: str,
        limit: int = 20,
        window: float = 60.0,
        used: int = 0,
        phase: float = 0.0,
    ) -> None:
        self.clock, self.style, self.limit, self.window = clock, style, limit, window
        self.phase = phase  # the windows end `phase` seconds before the client's whole minutes
        self.index, self.used = 0, used
        self.times: list[float] = []
        self.remaining_seen: list[int] = []
        self.too_many = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.elapsed
        self.times.append(now)
        index = int((now + self.phase) // self.window)
        if index != self.index:
            self.index, self.used = index, 0
        end = (index + 1) * self.window - self.phase
        self.used += 1
        remaining = max(0, self.limit - self.used)
        headers = self.headers(remaining, end - now)
        if self.used > self.limit:
            self.too_many += 1
            return httpx.Response(
                429, headers={**headers, "retry-after": str(math.ceil(end - now))}
            )
        self.remaining_seen.append(remaining)
        return httpx.Response(200, json={}, headers=headers)

    def headers(self, remaining: int, reset: float) -> dict[str, str]:
        limit, left = str(self.limit), str(remaining)
        if self.style == "zendesk":  # non-list endpoints: no reset
            return {"x-rate-limit": limit, "x-rate-limit-remaining": left}
        if self.style == "zendesk-list":  # reset in whole seconds, rounded down: the worst case
            return {
                "x-rate-limit": limit,
                "x-rate-limit-remaining": left,
                "ratelimit-limit": limit,
                "ratelimit-remaining": left,
                "ratelimit-reset": str(int(reset)),
            }
        if self.style == "jira":  # reset as an ISO timestamp at minute precision (truncated)
            at = datetime.fromtimestamp(self.clock.wall() + reset, UTC)
            return {
                "x-ratelimit-limit": limit,
                "x-ratelimit-remaining": left,
                "x-ratelimit-reset": at.strftime("%Y-%m-%dT%H:%MZ"),
            }
        assert self.style == "freshdesk"  # no reset; what the request cost
        return {
            "x-ratelimit-total": limit,
            "x-ratelimit-remaining": left,
            "x-ratelimit-used-currentrequest": "1",
        }


@pytest.mark.parametrize("phase", [0.0, 0.7])
@pytest.mark.parametrize("style", ["zendesk-list", "zendesk", "jira", "freshdesk"])
@pytest.mark.anyio
async def test_a_desk_enforcing_its_limit_never_answers_429(
    clock: FakeClock, style: str, phase: float
) -> None:
    """50 requests against 20 a minute: the client reads the desk's window from its headers,
    slows down and waits for the resets, and the desk never has to refuse one — also when the
    desk's windows do not end on the client's whole seconds (resets are rounded down)."""
    budget = RateBudget(
        requests_per_minute=6_000, share=1.0, burst=100, slow_when_remaining_below=0.25
    )
    server = WindowedDesk(clock, style, limit=20, phase=phase)
    async with client_for(clock, HttpSettings(budget=budget)) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets.json").mock(side_effect=server)
            for _ in range(50):
                await client.request("GET", "tickets.json")
    assert server.too_many == 0
    assert client.stats.rate_limited == 0
    assert 120 <= clock.elapsed < 300  # three windows are needed; not much more is wasted


@pytest.mark.anyio
async def test_slows_down_when_remaining_is_low_and_waits_for_the_reset(clock: FakeClock) -> None:
    """Another integration has used 96 of the 100 requests of this minute: the last four are
    spread over the rest of the window, and the next waits for the reset."""
    budget = RateBudget(requests_per_minute=6_000, share=1.0, burst=100)
    server = WindowedDesk(clock, "zendesk-list", limit=100, used=96)
    async with client_for(clock, HttpSettings(budget=budget)) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets.json").mock(side_effect=server)
            for _ in range(6):
                await client.request("GET", "tickets.json")
    assert server.remaining_seen[:4] == [3, 2, 1, 0]
    gaps = [b - a for a, b in zip(server.times, server.times[1:], strict=False)]
    assert all(gap >= 14 for gap in gaps[:3]), gaps  # spread, not back to back
    assert server.times[4] >= 60.0  # after "0 remaining", nothing before the reset
    assert server.too_many == 0


@pytest.mark.anyio
async def test_bucket_counts_requests_in_flight_against_the_desks_window(
    clock: FakeClock,
) -> None:
    """Three requests are in flight when the first answer reports 2 left: the two others may
    already have used them, so nothing more is sent until the reset."""
    bucket = TokenBucket(1_000.0, 100, clock.monotonic)
    for _ in range(3):
        await bucket.acquire(clock.sleep)
    bucket.observe(RateLimitInfo(limit=100, remaining=2, reset_after=30.0))
    bucket.release()
    assert bucket.delay() == pytest.approx(31.0)
    await bucket.acquire(clock.sleep)
    assert clock.waits == [pytest.approx(31.0)]


# --- Headers ------------------------------------------------------------------------------------


def test_parse_zendesk_headers() -> None:
    info = parse_rate_limit_headers(
        {
            "X-Rate-Limit": "700",
            "X-Rate-Limit-Remaining": "681",
            "ratelimit-limit": "700",
            "ratelimit-remaining": "644",
            "ratelimit-reset": "30",
        },
        now_epoch=0,
    )
    assert info == RateLimitInfo(limit=700, remaining=644, reset_after=30.0)
    assert parse_rate_limit_headers(
        {"x-rate-limit": "700", "x-rate-limit-remaining": "699"}, 0
    ) == (RateLimitInfo(700, 699, None))


@pytest.mark.skipif(not VENDOR.is_dir(), reason="the vendor material (../shared/vendor) is absent")
def test_parse_every_recorded_zendesk_response() -> None:
    """All 263 recorded Zendesk responses carry the account limit, and it is read."""
    recorded = json.loads((VENDOR / "zendesk" / "recorded.json").read_text(encoding="utf-8"))
    for interaction in recorded:
        headers = interaction["headers"]
        info = parse_rate_limit_headers(headers, now_epoch=0)
        assert info.limit == int(headers["x-rate-limit"]), interaction["uri"]
        candidates = [headers["x-rate-limit-remaining"], headers.get("ratelimit-remaining", "1e9")]
        assert info.remaining == min(int(float(c)) for c in candidates), interaction["uri"]
        if "ratelimit-reset" in headers:
            assert info.reset_after == float(headers["ratelimit-reset"])


@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        ("2026-11-25T10:05Z", 360.0),  # Jira's documented form: minute precision, so its end
        ("2026-11-25T10:00:30.000+0000", 30.0),
        ("Wed, 25 Nov 2026 10:01:00 GMT", 60.0),
        ("45", 45.0),
        (str(int(FakeClock.WALL_START) + 90), 90.0),  # a Unix timestamp
        ("2026-11-25T09:00Z", 0.0),  # in the past
        ("whenever", None),
    ],
)
def test_parse_jira_headers(reset: str, expected: float | None) -> None:
    info = parse_rate_limit_headers(
        {"X-RateLimit-Limit": "350", "X-RateLimit-Remaining": "349", "X-RateLimit-Reset": reset},
        now_epoch=FakeClock.WALL_START,
    )
    assert info == RateLimitInfo(limit=350, remaining=349, reset_after=expected)


def test_parse_freshdesk_headers() -> None:
    info = parse_rate_limit_headers(
        {
            "X-RateLimit-Total": "200",
            "X-RateLimit-Remaining": "196",
            "X-RateLimit-Used-CurrentRequest": "3",
        },
        now_epoch=0,
    )
    assert info == RateLimitInfo(limit=200, remaining=196, reset_after=None, cost=3)


def test_parse_no_rate_limit_headers() -> None:
    assert parse_rate_limit_headers({"content-type": "application/json"}, 0) == RateLimitInfo()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("-3", 0.0),
        ("Wed, 25 Nov 2026 10:00:30 GMT", 30.0),
        ("Wed, 25 Nov 2026 09:59:00 GMT", 0.0),  # already past
        ("soon", None),
        ("", None),
        ("nan", None),
        ("1e999", None),
    ],
)
def test_parse_retry_after(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, FakeClock.WALL_START) == expected


def test_retry_after_ms_is_preferred_to_retry_after() -> None:
    headers = httpx.Headers({"Retry-After": "2", "Retry-After-Ms": "1500"})
    assert retry_after_from_headers(headers, 0) == 1.5
    assert (
        retry_after_from_headers(httpx.Headers({"Retry-After-Ms": "x", "Retry-After": "2"}), 0) == 2
    )


# --- create_once --------------------------------------------------------------------------------


class CommentDesk:
    """A desk's comments endpoint; ``script`` says how each POST goes: ``lands-then-timeout``
    (the comment is created but the answer never arrives), ``timeout`` (lost before landing),
    or ``ok``."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.comments: list[dict[str, Any]] = []
        self.posts = 0

    def post(self, request: httpx.Request) -> httpx.Response:
        self.posts += 1
        how = self.script.pop(0)
        comment = {"id": len(self.comments) + 1, **json.loads(request.content)["comment"]}
        if how == "timeout":
            raise httpx.ReadTimeout("lost", request=request)
        self.comments.append(comment)
        if how == "lands-then-timeout":
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(201, json={"comment": comment})

    def get(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"comments": self.comments})


async def post_comment_once(client: DeskClient, body: str, marker: str) -> dict[str, Any]:
    """How a connector adds a comment: the marker travels in the comment, and is looked for."""

    async def send() -> dict[str, Any]:
        answer = await client.send_json(
            "POST", "tickets/7/comments.json", {"comment": {"body": f"{body}\n\n[tw:{marker}]"}}
        )
        comment: dict[str, Any] = answer["comment"]
        return comment

    async def find_existing() -> dict[str, Any] | None:
        listing = await client.get_json("tickets/7/comments.json")
        return next((c for c in listing["comments"] if f"[tw:{marker}]" in c["body"]), None)

    return await create_once(send, find_existing)


@pytest.mark.anyio
async def test_create_once_finds_a_comment_that_landed_and_does_not_resend(
    clock: FakeClock,
) -> None:
    server = CommentDesk("lands-then-timeout")
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.post("tickets/7/comments.json").mock(side_effect=server.post)
            desk.get("tickets/7/comments.json").mock(side_effect=server.get)
            comment = await post_comment_once(client, "Please send the logs.", "a1b2")
    assert server.posts == 1
    assert len(server.comments) == 1
    assert comment == server.comments[0]


@pytest.mark.anyio
async def test_create_once_resends_a_comment_that_did_not_land(clock: FakeClock) -> None:
    server = CommentDesk("timeout", "ok")
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.post("tickets/7/comments.json").mock(side_effect=server.post)
            desk.get("tickets/7/comments.json").mock(side_effect=server.get)
            comment = await post_comment_once(client, "Please send the logs.", "c3d4")
    assert server.posts == 2
    assert [c["id"] for c in server.comments] == [comment["id"]]


@pytest.mark.anyio
async def test_create_once_gives_up_after_its_attempts_with_outcome_unknown() -> None:
    sends = 0

    async def send() -> str:
        nonlocal sends
        sends += 1
        raise OutcomeUnknownError("jira", "read timeout")

    async def find_existing() -> str | None:
        return None

    with pytest.raises(OutcomeUnknownError):
        await create_once(send, find_existing, attempts=3)
    assert sends == 3


# --- Pagination ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_paginate_cursor_across_three_pages(clock: FakeClock) -> None:
    pages = {
        None: {"tickets": [{"id": 1}, {"id": 2}], "after_cursor": "c1", "end_of_stream": False},
        "c1": {"tickets": [{"id": 3}, {"id": 4}], "after_cursor": "c2", "end_of_stream": False},
        "c2": {"tickets": [{"id": 5}], "after_cursor": "c3", "end_of_stream": True},
    }
    seen: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("incremental/tickets/cursor.json").mock(side_effect=answer)
            ids = [
                t["id"]
                async for t in paginate_cursor(
                    client,
                    "incremental/tickets/cursor.json",
                    params={"start_time": "0"},
                    items=lambda body: body["tickets"],
                    next_cursor=lambda body: (
                        None if body["end_of_stream"] else body["after_cursor"]
                    ),
                    cursor_param="cursor",
                )
            ]
    assert ids == [1, 2, 3, 4, 5]
    assert [s.get("cursor") for s in seen] == [None, "c1", "c2"]


@pytest.mark.anyio
async def test_paginate_cursor_detects_a_loop(clock: FakeClock) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"issues": [1], "nextPageToken": "same"})

    ids: list[int] = []
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            route = desk.get("search/jql").mock(side_effect=answer)
            with pytest.raises(ProtocolError, match="loop"):
                async for issue in paginate_cursor(
                    client,
                    "search/jql",
                    items=lambda body: body["issues"],
                    next_cursor=lambda body: body.get("nextPageToken"),
                    cursor_param="nextPageToken",
                ):
                    ids.append(issue)
    assert route.call_count == 2
    assert ids == [1, 1]


@pytest.mark.anyio
async def test_paginate_cursor_reports_an_unexpected_shape(clock: FakeClock) -> None:
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("search/jql").respond(200, json={"results": []})
            with pytest.raises(ProtocolError, match="unexpected page shape") as caught:
                async for _ in paginate_cursor(
                    client,
                    "search/jql",
                    items=lambda body: body["issues"],
                    next_cursor=lambda body: None,
                    cursor_param="nextPageToken",
                ):
                    pass
    assert '"results"' in caught.value.excerpt


def link_pages(where: str) -> Callable[[httpx.Request], httpx.Response]:
    """Three pages of tags; the next link in the body (Zendesk ``links.next``, absolute) or in
    a ``Link`` header (relative)."""
    data = {"1": ["a", "b"], "2": ["c", "d"], "3": ["e"]}

    def answer(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page[after]", "1")
        following = str(int(page) + 1) if page != "3" else None
        if where == "body":
            nxt = f"{BASE}tags.json?page%5Bafter%5D={following}" if following else None
            return httpx.Response(200, json={"tags": data[page], "links": {"next": nxt}})
        headers = {"link": f'<tags.json?page[after]={following}>; rel="next"'} if following else {}
        return httpx.Response(200, json={"tags": data[page]}, headers=headers)

    return answer


@pytest.mark.parametrize("where", ["body", "header"])
@pytest.mark.anyio
async def test_paginate_links_across_three_pages(clock: FakeClock, where: str) -> None:
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            route = desk.get("tags.json").mock(side_effect=link_pages(where))
            pager = (
                paginate_links(
                    client,
                    "tags.json",
                    params={"page[size]": 2},
                    items=lambda body: body["tags"],
                    next_url=lambda body, response: body["links"]["next"],
                )
                if where == "body"
                else paginate_links(client, "tags.json", items=lambda body: body["tags"])
            )
            tags = [tag async for tag in pager]
    assert tags == ["a", "b", "c", "d", "e"]
    assert route.call_count == 3


@pytest.mark.anyio
async def test_paginate_links_detects_a_loop(clock: FakeClock) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page", "1")
        nxt = f"{BASE}tags.json?page=2" if page == "1" else f"{BASE}tags.json?page=1"
        return httpx.Response(200, json={"tags": [page], "next_page": nxt})

    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            route = desk.get("tags.json").mock(side_effect=answer)
            with pytest.raises(ProtocolError, match="loop"):
                async for _ in paginate_links(
                    client,
                    f"{BASE}tags.json?page=1",
                    items=lambda body: body["tags"],
                    next_url=lambda body, response: body["next_page"],
                ):
                    pass
    assert route.call_count == 2


@pytest.mark.parametrize(
    "evil", ["https://evil.example/api/v2/tags.json?page=2", "http://acme.zendesk.com/api/v2/x"]
)
@pytest.mark.anyio
async def test_paginate_links_refuses_a_next_link_to_another_origin(
    clock: FakeClock, evil: str
) -> None:
    """The credentials go to the desk's own origin only, never to a host a page names."""
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE, assert_all_called=False) as desk:
            desk.get("tags.json").respond(200, json={"tags": ["a"], "links": {"next": evil}})
            elsewhere = respx.route(url__startswith=evil.split("/api")[0]).respond(200, json={})
            with pytest.raises(ProtocolError, match="refusing to send credentials"):
                async for _ in paginate_links(
                    client,
                    "tags.json",
                    items=lambda body: body["tags"],
                    next_url=lambda body, response: body["links"]["next"],
                ):
                    pass
    assert not elsewhere.called


@pytest.mark.parametrize(("last_page", "requests"), [(["e"], 3), ([], 3)])
@pytest.mark.anyio
async def test_paginate_pages_across_three_pages(
    clock: FakeClock, last_page: list[str], requests: int
) -> None:
    """Stops at a short page, or at an empty one."""
    data = {1: ["a", "b"], 2: ["c", "d"], 3: last_page}
    queries: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        queries.append(dict(request.url.params))
        return httpx.Response(200, json=data[int(request.url.params["page"])])

    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets").mock(side_effect=answer)
            tickets = [
                t
                async for t in paginate_pages(
                    client,
                    "tickets",
                    params={"updated_since": "2026-11-01T00:00:00Z"},
                    items=lambda body: body,
                    per_page=2,
                )
            ]
    assert tickets == ["a", "b", "c", "d", *last_page]
    assert len(queries) == requests
    assert queries[0] == {"updated_since": "2026-11-01T00:00:00Z", "page": "1", "per_page": "2"}


@pytest.mark.anyio
async def test_paginate_pages_detects_a_desk_ignoring_the_page_parameter(
    clock: FakeClock,
) -> None:
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            route = desk.get("tickets").respond(200, json=[{"id": 1}, {"id": 2}])
            with pytest.raises(ProtocolError, match="repeats an earlier page"):
                async for _ in paginate_pages(client, "tickets", items=lambda b: b, per_page=2):
                    pass
    assert route.call_count == 2


@pytest.mark.anyio
async def test_paginate_stops_at_max_pages(clock: FakeClock) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[request.url.params["page"]])

    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets").mock(side_effect=answer)
            with pytest.raises(ProtocolError, match="more than 5 pages"):
                async for _ in paginate_pages(
                    client, "tickets", items=lambda b: b, per_page=1, max_pages=5
                ):
                    pass


# --- Secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "secrets"),
    [
        (CREDS, [SECRET, BASIC]),
        (
            BearerToken(token=pydantic.SecretStr("oauth-access-token-xyz")),
            ["oauth-access-token-xyz"],
        ),
        (  # Freshdesk: the API key is the user name
            BasicCredentials(
                username=pydantic.SecretStr("fd-api-key-123456"), password=pydantic.SecretStr("X")
            ),
            ["fd-api-key-123456", base64.b64encode(b"fd-api-key-123456:X").decode()],
        ),
    ],
)
@pytest.mark.anyio
async def test_credentials_never_reach_logs_or_errors(
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    credentials: BasicCredentials | BearerToken,
    secrets: list[str],
) -> None:
    """The desk echoes the Authorization header back in its error bodies; the debug log and
    every error still show no credential, in any form."""
    sent: list[str] = []

    def echo(status: int) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request.headers["authorization"])
            auth = request.headers["authorization"]
            return httpx.Response(status, text=f"rejected {auth} ({', '.join(secrets)})")

        return answer

    caplog.set_level(logging.DEBUG)
    errors: list[HelpdeskError] = []
    async with client_for(clock, credentials=credentials) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("ok.json").respond(200, json={})
            desk.get("denied.json").mock(side_effect=echo(401))
            desk.get("broken.json").mock(side_effect=echo(503))
            desk.get("garbled.json").mock(side_effect=echo(200))
            await client.get_json("ok.json")
            for path in ("denied.json", "broken.json", "garbled.json"):
                with pytest.raises(HelpdeskError) as caught:
                    await client.get_json(path)
                errors.append(caught.value)
    assert [type(e) for e in errors] == [AuthenticationError, ServerError, ProtocolError]
    assert any(secrets[-1] in header or secrets[0] in header for header in sent)  # was sent
    assert "GET /api/v2/ok.json -> 200" in caplog.text
    assert "retry" in caplog.text
    for text in [caplog.text, *(str(e) for e in errors), *(repr(e) for e in errors)]:
        for secret in secrets:
            assert secret not in text
    assert "***" in errors[0].excerpt


def test_redact_replaces_every_form_of_a_secret() -> None:
    text = (
        f'Authorization: Basic {BASIC} pass={SECRET} json="{SECRET}" '
        f"url=?token=abc%2Fdef&x=1 b64={base64.b64encode(SECRET.encode()).decode()}"
    )
    cleaned = redact(text, CREDS.secrets())
    assert SECRET not in cleaned and BASIC not in cleaned and "abc%2Fdef" not in cleaned
    assert "x=1" in cleaned
    assert redact("Xerox X-Ray", ["X"]) == "Xerox X-Ray"  # too short to redact verbatim


def test_sanitize_url_hides_secret_query_values_and_user_info() -> None:
    url = "https://bob:pw@acme.example/api?access_token=t0k3n&page=2&api_key=k&updated_since=x"
    assert sanitize_url(url) == (
        "https://acme.example/api?access_token=***&page=2&api_key=***&updated_since=x"
    )


# --- Bodies, URLs and settings ------------------------------------------------------------------


@pytest.mark.anyio
async def test_malformed_json_raises_protocol_error_with_excerpt(clock: FakeClock) -> None:
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            desk.get("tickets/1.json").respond(200, text="<html>Down for maintenance</html>")
            with pytest.raises(ProtocolError, match="malformed JSON") as caught:
                await client.get_json("tickets/1.json")
    assert caught.value.status_code == 200
    assert "Down for maintenance" in caught.value.excerpt


@pytest.mark.anyio
async def test_send_json_round_trip_and_empty_answer(clock: FakeClock) -> None:
    async with client_for(clock) as client:
        with respx.mock(base_url=BASE) as desk:
            route = desk.put("tickets/1.json").respond(200, json={"ticket": {"status": "open"}})
            desk.delete("tickets/1/tags.json").respond(204)
            answer = await client.send_json("PUT", "tickets/1.json", {"ticket": {"status": "open"}})
            assert await client.send_json("DELETE", "tickets/1/tags.json", None) is None
    assert answer == {"ticket": {"status": "open"}}
    assert json.loads(route.calls.last.request.content) == {"ticket": {"status": "open"}}
    assert route.calls.last.request.headers["user-agent"].startswith("ticketwarden/")


@pytest.mark.anyio
async def test_an_absolute_url_to_another_host_is_refused_before_sending(
    clock: FakeClock,
) -> None:
    async with client_for(clock) as client:
        with respx.mock(assert_all_called=False) as mock:
            route = mock.get("https://evil.example/x").respond(200)
            with pytest.raises(ProtocolError, match="refusing"):
                await client.request("GET", "https://evil.example/x")
    assert not route.called


@pytest.mark.parametrize(
    "bad",
    [
        {"budget": {"share": 0}},
        {"budget": {"burst": 0}},
        {"retry": {"attempts": 0}},
        {"retry": {"initial_backoff": 10, "max_backoff": 1}},
        {"read_timeout": -1},
        {"retry": {"atempts": 3}},
    ],
)
def test_bad_settings_fail_at_start_up(bad: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        HttpSettings.model_validate(bad)
