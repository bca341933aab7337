"""Structured JSON logs for the long-running processes (``serve``): one object per line, with
the request id of the webhook or inbox event being handled, and never a secret.

Secrets are :class:`~pydantic.SecretStr` everywhere, so they print as ``**********``; as a
second line of defence every message passes through the HTTP client's redaction: the known
secrets in any of their encodings, ``Bearer``/``Basic`` values and password-like keys.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from ticketwarden.core.errors import redact

__all__ = ["JsonFormatter", "configure", "request_id"]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ticketwarden_request_id", default=None
)
"""The id of the request or inbox event the current task is handling."""

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """``{"at", "level", "logger", "message", "request_id", ...extra}`` per record."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage(), self.secrets),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            data["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "request_id" and not key.startswith("_"):
                data[key] = (
                    value
                    if isinstance(value, int | float | bool | None)
                    else redact(str(value), self.secrets)
                )
        if record.exc_info:
            data["error"] = redact(self.formatException(record.exc_info), self.secrets)
        return json.dumps(data, ensure_ascii=False)


def configure(
    level: str = "info", stream: TextIO | None = None, secrets: Sequence[str] = ()
) -> None:
    """Send every ``ticketwarden`` and ``uvicorn`` log record to ``stream`` as JSON lines,
    with ``secrets`` (the desks' credentials and webhook secrets) redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    for name in ("ticketwarden", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the sidecar logs its own requests
