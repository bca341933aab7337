"""RT's auth tokens: ``Authorization: token <token>`` (RT 5's built-in ``RT::Authen::Token``).

:class:`RTToken` is a :class:`~ticketwarden.core.http.BearerToken` — the shared client accepts
it wherever a bearer token goes, redacts it the same way — that sends RT's own scheme
(``token``) instead of ``Bearer``, which RT does not accept.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ticketwarden.core.http import BearerToken

__all__ = ["RTToken"]


class _TokenAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"token {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class RTToken(BearerToken):
    """An RT auth token (Preferences → Auth Tokens in RT's web UI)."""

    def auth(self) -> httpx.Auth:
        """The :mod:`httpx` auth sending ``Authorization: token …``."""
        return _TokenAuth(self.token.get_secret_value())
