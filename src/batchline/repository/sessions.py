"""Browser sessions, kept in the job repository so every server replica knows them.

The cookie holds a random secret; the table keeps its SHA-256 and the name of the token the
login presented. A session lives until it expires, its row is deleted (logout), or its token
is revoked: each request joins the token, so a revoked token ends its sessions at once, and a
cookie copied before logout opens nothing after it.
"""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batchline.model import utcnow
from batchline.repository.database import READ_ONLY
from batchline.repository.schema import api_token, web_session
from batchline.repository.tokens import ApiToken, token_hash

PREFIX = "bls_"
LIFETIME = dt.timedelta(hours=12)


class SessionStore:
    def __init__(self, engine: Engine, lifetime: dt.timedelta = LIFETIME) -> None:
        self.engine = engine
        self.lifetime = lifetime
        self._reader = engine.execution_options(**{READ_ONLY: True})

    def open(self, token: ApiToken) -> str:
        """A new session for a live token; the secret is returned once, only its hash kept."""
        secret = PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(web_session).where(web_session.c.expire_time < now))
            conn.execute(
                web_session.insert().values(
                    session_hash=token_hash(secret),
                    token_name=token.name,
                    create_time=now,
                    expire_time=now + self.lifetime,
                )
            )
        return secret

    def find(self, secret: str) -> ApiToken | None:
        """The live token behind a live session, or None."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        query = (
            sa.select(api_token)
            .join(web_session, web_session.c.token_name == api_token.c.name)
            .where(
                web_session.c.session_hash == token_hash(secret),
                web_session.c.expire_time > utcnow(),
                api_token.c.revoke_time.is_(None),
            )
        )
        with self._reader.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return ApiToken(row["name"], row["scope"], row["create_time"], row["revoke_time"])

    def close(self, secret: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(web_session).where(web_session.c.session_hash == token_hash(secret))
            )
