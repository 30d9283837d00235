"""Who may do what: a token on every request, its scope checked, CSRF for the browser session.

A token comes as ``Authorization: Bearer <token>`` (scripts); a browser logs in once with a
token and then holds a server-side session (``batchline.repository.sessions``): its cookie is a
random secret whose hash lives in the repository, so every replica knows it, logout ends it
everywhere and a copied cookie opens nothing after that. The cookie is HttpOnly,
SameSite=Strict, and Secure when the request came over HTTPS (directly, or through a proxy
``serve --proxy-headers`` trusts). A browser request that changes anything must also carry the
CSRF token the pages embed, derived from the session secret (the same on every replica), since
a cookie is sent by the browser on its own and a bearer header is not. The login form has its
own double-submit token, so a cross-site page cannot log the browser in with another token.
Every request looks the token up, so a revoked token stops at once, its sessions with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request

from batchline.repository.sessions import SessionStore
from batchline.repository.tokens import OPERATE, READ, ApiToken, TokenStore

COOKIE = "batchline_session"
LOGIN_COOKIE = "batchline_login"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
LOGIN_FIELD = "login_token"
_CSRF_KEY = b"batchline csrf token of a session"


@dataclass(frozen=True)
class Caller:
    token: ApiToken
    secret: str
    from_cookie: bool


def is_https(request: Request) -> bool:
    """HTTPS as the client sees it (uvicorn applies a trusted proxy's X-Forwarded-Proto)."""
    return request.url.scheme == "https"


def new_login_nonce() -> str:
    return secrets.token_urlsafe(32)


class Guard:
    def __init__(self, tokens: TokenStore, sessions: SessionStore | None = None) -> None:
        self.tokens = tokens
        self.sessions = sessions if sessions is not None else SessionStore(tokens.engine)

    def csrf_token(self, caller: Caller) -> str:
        return hmac.new(_CSRF_KEY, caller.secret.encode(), hashlib.sha256).hexdigest()

    def caller(self, request: Request) -> Caller | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            secret = value.strip()
            found = self.tokens.find(secret)
            return None if found is None else Caller(found, secret, False)
        secret = request.cookies.get(COOKIE, "")
        if not secret:
            return None
        found = self.sessions.find(secret)
        return None if found is None else Caller(found, secret, True)

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
        request.state.caller = caller  # for the audit: who asked, even if refused below
        if not caller.token.allows(scope):
            raise HTTPException(403, f"token {caller.token.name!r} lacks the {scope!r} scope")
        if scope == OPERATE and caller.from_cookie:
            sent = csrf or request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent, self.csrf_token(caller)):
                raise HTTPException(403, "missing or wrong CSRF token")
        return caller


__all__ = ["COOKIE", "CSRF_FIELD", "OPERATE", "READ", "Caller", "Guard", "is_https"]
