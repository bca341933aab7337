"""The errors ticketwarden raises on purpose, one class per thing a caller can do about it.

The hierarchy::

    TicketwardenError(Exception)          anything ticketwarden raises on purpose
    └── HelpdeskError                     a helpdesk request failed: desk, message, status_code,
        │                                 excerpt, request_id, method, url
        ├── AuthenticationError           401, 403: the credentials are wrong or lack a right
        ├── NotFoundError                 404, 410: the ticket (or user, field…) does not exist
        ├── ConflictError                 409, 412: changed meanwhile (Zendesk safe update)
        ├── RejectedError                 400, 422 and other 4xx: the desk refused the request,
        │                                 e.g. a closed ticket refuses updates
        ├── RateLimitedError              429 whose wait exceeds the client's ceiling (or still
        │                                 429 after the retries): retry_after in seconds
        ├── ServerError                   5xx after the retries are exhausted
        ├── ProtocolError                 malformed JSON, an unexpected shape, a pagination
        │                                 loop, a link to another host
        └── TransportError                connection, read and write errors, timeouts (after
            │                             the retries)
            └── OutcomeUnknownError       a NON-idempotent request failed after it may have
                                          reached the server (read timeout, read error, 5xx):
                                          it may or may not have been applied; look before
                                          sending it again (see ``http.create_once``)

Every :class:`HelpdeskError` is safe to log: ``excerpt`` is at most
:data:`EXCERPT_LENGTH` characters of the response body with secrets redacted, ``url`` has
secret-looking query values replaced, and ``str(error)`` is one line — desk, method, path,
status, message, excerpt — that never contains a credential given to the constructor.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import httpx

__all__ = [
    "EXCERPT_LENGTH",
    "AuthenticationError",
    "ConflictError",
    "HelpdeskError",
    "NotFoundError",
    "OutcomeUnknownError",
    "ProtocolError",
    "RateLimitedError",
    "RejectedError",
    "ServerError",
    "TicketwardenError",
    "TransportError",
    "error_for_status",
    "redact",
    "sanitize_url",
]

EXCERPT_LENGTH = 300
"""The most characters of a response body an error carries."""

REDACTED = "***"

MIN_SECRET_LENGTH = 4
"""Shorter secrets are not redacted verbatim: Freshdesk's conventional password ``X`` would
otherwise blank out every capital X in a log. Their encoded forms (the base64 basic-auth
header value, which embeds the user name) are still redacted."""

# Values that look like credentials even when the secret itself is unknown to us: an
# Authorization scheme followed by its token, and "password"/"token"-like keys in JSON, forms
# and query strings. The key must start a word so that e.g. Jira's "nextPageToken" is kept.
_AUTH_SCHEME = re.compile(r"(?i)\b(basic|bearer|token)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_SECRET_KEY = (
    r"(?:password|passwd|pwd|secret|client_secret|token|access_token|refresh_token|id_token"
    r"|api_key|apikey|api_token|authorization|signature)"
)
_SECRET_VALUE = re.compile(
    rf"""(?i)((?<![A-Za-z0-9_])["']?{_SECRET_KEY}["']?\s*[:=]\s*["']?)[^"'&\s,;}}]+"""
)
_SECRET_QUERY_NAME = re.compile(
    r"(?i)(token|secret|passw|pwd|api[_-]?key|apikey|auth|signature|^sig$|session|credential"
    r"|^code$|^key$)"
)
_WHITESPACE = re.compile(r"\s+")


def _secret_forms(secrets: Iterable[str]) -> list[str]:
    """Every form in which a secret may show up in text, longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        forms.add(secret)
        forms.add(quote(secret, safe=""))
        forms.add(quote_plus(secret))
        forms.add(json.dumps(secret)[1:-1])
        forms.add(base64.b64encode(secret.encode()).decode("ascii"))
    return sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``.

    Each secret is replaced verbatim and in its URL-encoded, JSON-escaped and base64 forms;
    pass the base64 basic-auth form (``BasicCredentials.secrets()`` does) to have the
    ``Authorization: Basic …`` value redacted too. Independently of the secrets given,
    ``Bearer``/``Basic`` tokens and the values of password- or token-like keys are redacted.
    """
    for form in _secret_forms(secrets):
        text = text.replace(form, REDACTED)
    text = _AUTH_SCHEME.sub(rf"\1\2{REDACTED}", text)
    return _SECRET_VALUE.sub(rf"\1{REDACTED}", text)


def sanitize_url(url: str, secrets: Iterable[str] = ()) -> str:
    """``url`` without user info and with the values of secret-looking query parameters hidden.

    Parameters named like ``token``, ``api_key``, ``password``, ``signature``, ``code``… keep
    their name and get ``***`` as value; known ``secrets`` are redacted anywhere in the URL.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url, secrets)
    netloc = parts.netloc.rpartition("@")[2]
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(_SECRET_QUERY_NAME.search(name) for name, _ in pairs):
        query = urlencode(
            [(n, REDACTED if _SECRET_QUERY_NAME.search(n) else v) for n, v in pairs], safe="*[]"
        )
    else:
        query = parts.query
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), secrets)


def _excerpt(text: str, secrets: Iterable[str]) -> str:
    # Redact before cutting, so a secret can never survive as a cut-off prefix; look only at
    # the start of a large body (the excerpt is short anyway).
    one_line = _WHITESPACE.sub(" ", redact(text[: EXCERPT_LENGTH * 8], secrets)).strip()
    if len(one_line) <= EXCERPT_LENGTH:
        return one_line
    return one_line[: EXCERPT_LENGTH - 1] + "…"


class TicketwardenError(Exception):
    """Base class of every error ticketwarden raises on purpose."""


class HelpdeskError(TicketwardenError):
    """A request to a helpdesk failed.

    :param desk: the desk's configured name (``"zendesk-prod"``), not the vendor's.
    :param message: what went wrong, preferably the desk's own words.
    :param status_code: the HTTP status, ``None`` when no response arrived.
    :param excerpt: the response body; kept to :data:`EXCERPT_LENGTH` characters on one line.
    :param request_id: the desk's request id, to quote to its support.
    :param method: the HTTP method.
    :param url: the request URL; user info and secret-looking query values are removed.
    :param secrets: credentials to redact from message, excerpt and URL.
    """

    def __init__(
        self,
        desk: str,
        message: str,
        *,
        status_code: int | None = None,
        excerpt: str = "",
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        secrets = list(secrets)
        self.desk = desk
        self.message = redact(message, secrets)
        self.status_code = status_code
        self.excerpt = _excerpt(excerpt, secrets)
        self.request_id = request_id
        self.method = method
        self.url = sanitize_url(url, secrets) if url is not None else None
        super().__init__(self.message)

    @property
    def path(self) -> str | None:
        """The path of :attr:`url` (no host, no query)."""
        if self.url is None:
            return None
        return urlsplit(self.url).path or "/"

    def __str__(self) -> str:
        where = " ".join(part for part in (self.method, self.path) if part)
        line = f"{self.desk}: {where}" if where else self.desk
        if self.status_code is not None:
            line += f" -> {self.status_code}"
        line += f": {self.message}"
        if self.request_id:
            line += f" (request id {self.request_id})"
        if self.excerpt and self.excerpt != self.message:
            line += f" | body: {self.excerpt}"
        return line

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # the keyword-only constructor defeats Exception's pickling; restore the fields as-is
        return (_restore, (type(self), self.__dict__.copy()))


def _restore(cls: type[HelpdeskError], state: dict[str, Any]) -> HelpdeskError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class AuthenticationError(HelpdeskError):
    """401 or 403: the credentials are wrong, expired, or lack a permission."""


class NotFoundError(HelpdeskError):
    """404 (or 410): the object does not exist, or the credentials may not see it."""


class ConflictError(HelpdeskError):
    """409 or 412: the object changed meanwhile (Zendesk safe update); read it again."""


class RejectedError(HelpdeskError):
    """400, 422 or another 4xx: the desk refused the request as such (a closed ticket refuses
    updates, a field value is invalid). Sending it again will not help."""


class RateLimitedError(HelpdeskError):
    """429 that the client will not wait out: the desk asks for longer than the client's ceiling
    (``RetryPolicy.max_retry_after``), the request budget is exhausted for longer than that,
    or the desk kept answering 429 through every retry.

    :param retry_after: seconds to wait before trying again, ``None`` if the desk did not say.
        A job defers its work by this much; the webhook path queues instead of sleeping.
    """

    def __init__(
        self,
        desk: str,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        excerpt: str = "",
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        super().__init__(
            desk,
            message,
            status_code=status_code,
            excerpt=excerpt,
            request_id=request_id,
            method=method,
            url=url,
            secrets=secrets,
        )
        self.retry_after = retry_after


class ServerError(HelpdeskError):
    """5xx, still after the retries."""


class ProtocolError(HelpdeskError):
    """The desk answered something the client cannot use: malformed JSON, an unexpected shape,
    a pagination loop, a next link to another host."""


class TransportError(HelpdeskError):
    """No usable response: connection refused, DNS, TLS, a read or write error, a timeout —
    still after the retries."""


class OutcomeUnknownError(TransportError):
    """A non-idempotent request (a POST creating a comment…) failed after it may have reached
    the server — a read timeout, a dropped connection, a 5xx. It may or may not have been
    applied: sending it again could duplicate it. Look for it first (``http.create_once``)."""


_REQUEST_ID_HEADERS = ("x-request-id", "x-zendesk-request-id", "x-arequestid", "atl-traceid")


def _message_from_body(body: Any) -> str | None:
    """The desk's own error message, from the bodies Zendesk, Jira, Freshdesk and RT send."""
    if isinstance(body, list):
        texts = [t for t in (_message_from_body(item) for item in body[:3]) if t]
        return "; ".join(texts) or None
    if isinstance(body, str):
        return body or None
    if not isinstance(body, dict):
        return None
    parts: list[str] = []
    error = body.get("error")
    if isinstance(error, dict):  # Zendesk: {"error": {"title": …, "message": …}}
        parts.extend(str(error[k]) for k in ("title", "message") if error.get(k))
    elif error:  # Zendesk: {"error": "RecordNotFound", "description": "Not found"}
        parts.append(str(error))
    for key in ("description", "message", "title"):  # Zendesk, Freshdesk, RT
        if isinstance(body.get(key), str) and body[key]:
            parts.append(body[key])
    messages = body.get("errorMessages")  # Jira
    if isinstance(messages, list):
        parts.extend(str(m) for m in messages if m)
    errors = body.get("errors")
    if isinstance(errors, dict):  # Jira: {"errors": {"field": "message"}}
        parts.extend(f"{k}: {v}" for k, v in list(errors.items())[:5])
    elif isinstance(errors, list):  # Freshdesk: [{"field", "message", "code"}]
        for item in errors[:5]:
            if isinstance(item, dict):
                field = item.get("field")
                text = item.get("message") or item.get("code") or ""
                parts.append(f"{field}: {text}" if field else str(text))
    details = body.get("details")  # Zendesk: {"details": {"base": [{"description": …}]}}
    if isinstance(details, dict):
        for field, problems in list(details.items())[:5]:
            for problem in problems if isinstance(problems, list) else [problems]:
                text = problem.get("description") if isinstance(problem, dict) else problem
                if text:
                    parts.append(f"{field}: {text}")
    return " - ".join(dict.fromkeys(parts)) or None


def _status_class(status: int) -> type[HelpdeskError]:
    if status in (401, 403):
        return AuthenticationError
    if status in (404, 410):
        return NotFoundError
    if status in (409, 412):
        return ConflictError
    if status == 429:
        return RateLimitedError
    if status >= 500:
        return ServerError
    return RejectedError


def error_for_status(
    desk: str,
    response: httpx.Response,
    *,
    secrets: Iterable[str] = (),
    retry_after: float | None = None,
    error_class: type[HelpdeskError] | None = None,
) -> HelpdeskError:
    """The typed error for a 4xx or 5xx ``response`` (it is returned, not raised).

    :param secrets: credentials to redact from the message, excerpt and URL.
    :param retry_after: for a 429, the seconds the desk asked to wait (parsed by the caller,
        who knows the clock).
    :param error_class: overrides the class chosen from the status, e.g.
        :class:`OutcomeUnknownError` for a 5xx answering a POST.
    :raises ValueError: the response is not an error.
    """
    status = response.status_code
    if status < 400:
        raise ValueError(f"HTTP {status} is not an error status")
    try:
        text = response.text
    except httpx.ResponseNotRead:  # a streamed body nobody read: report without it
        text = ""
    try:
        body: Any = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    message = _message_from_body(body) or response.reason_phrase or f"HTTP {status}"
    try:
        request: httpx.Request | None = response.request
    except RuntimeError:  # a Response built by hand (in a test) has no request
        request = None
    request_id = next(
        (response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers), None
    )
    cls = error_class or _status_class(status)
    common: dict[str, Any] = {
        "status_code": status,
        "excerpt": text,
        "request_id": request_id,
        "method": request.method if request is not None else None,
        "url": str(request.url) if request is not None else None,
        "secrets": list(secrets),
    }
    if issubclass(cls, RateLimitedError):
        return cls(desk, message, retry_after=retry_after, **common)
    return cls(desk, message, **common)
