"""Who may do what: a token on every request, its scope checked, CSRF for the browser session.

A token comes as ``Authorization: Bearer <token>`` (scripts) or in the session cookie the login
page sets (browsers). The cookie is HttpOnly and SameSite=Strict; on top of that, a browser
request that changes anything must carry the CSRF token the pages embed (an HMAC of the session
under a key this process draws at start), since a cookie is sent by the browser on its own and a
bearer header is not. Every request looks the token up, so a revoked token stops at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request

from batchline.repository.tokens import OPERATE, READ, ApiToken, TokenStore

COOKIE = "batchline_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Caller:
    token: ApiToken
    secret: str
    from_cookie: bool


class Guard:
    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens
        self._key = secrets.token_bytes(32)

    def csrf_token(self, caller: Caller) -> str:
        return hmac.new(self._key, caller.secret.encode(), hashlib.sha256).hexdigest()

    def caller(self, request: Request) -> Caller | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            secret, from_cookie = value.strip(), False
        else:
            secret, from_cookie = request.cookies.get(COOKIE, ""), True
        if not secret:
            return None
        found = self.tokens.find(secret)
        return None if found is None else Caller(found, secret, from_cookie)

    def require(self, request: Request, scope: str, *, csrf: str | None = None) -> Caller:
        """The caller if allowed ``scope``: 401 without a live token, 403 without the scope or
        (browser session) without the CSRF token for a change."""
        caller = self.caller(request)
        if caller is None:
            raise HTTPException(
                401,
                "a live API token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not caller.token.allows(scope):
            raise HTTPException(403, f"token {caller.token.name!r} lacks the {scope!r} scope")
        if scope == OPERATE and caller.from_cookie:
            sent = csrf or request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent, self.csrf_token(caller)):
                raise HTTPException(403, "missing or wrong CSRF token")
        return caller


__all__ = ["COOKIE", "CSRF_FIELD", "OPERATE", "READ", "Caller", "Guard"]
