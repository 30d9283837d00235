"""Web API tokens, kept in the job repository: a name, a scope, and only a SHA-256 of the token.

A token is 256 random bits shown once when it is created; the table holds its hash, so reading
the table (or a backup of it) gives no one a token, and a plain SHA-256 suffices (there is no
password to guess). Revoking sets ``revoke_time``; a revoked token is refused at its next use,
as every request looks its hash up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Engine

from batchline.errors import ConfigurationError
from batchline.model import utcnow
from batchline.repository.database import READ_ONLY
from batchline.repository.schema import api_token

READ, OPERATE = "read", "operate"
SCOPES = (READ, OPERATE)
PREFIX = "blt_"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")


@dataclass(frozen=True)
class ApiToken:
    name: str
    scope: str
    create_time: dt.datetime
    revoke_time: dt.datetime | None

    def allows(self, scope: str) -> bool:
        """operate includes read."""
        return self.scope == OPERATE or scope == self.scope


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TokenStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Lookups only read: on SQLite they then begin DEFERRED and never queue behind a
        # running job's chunk transactions for the write lock.
        self._reader = engine.execution_options(**{READ_ONLY: True})

    def create(self, name: str, scope: str) -> str:
        """A new token (returned once, never stored) under a new name."""
        if not _NAME.match(name):
            raise ConfigurationError(
                f"invalid token name {name!r}: use 1 to 100 letters, digits, '_', '.', '@', '-'"
            )
        if scope not in SCOPES:
            raise ConfigurationError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
        token = PREFIX + secrets.token_urlsafe(32)
        row = {"name": name, "token_hash": token_hash(token), "scope": scope}
        try:
            with self.engine.begin() as conn:
                conn.execute(api_token.insert().values(**row, create_time=utcnow()))
        except exc.IntegrityError:
            raise ConfigurationError(f"a token named {name!r} exists already") from None
        return token

    def list(self) -> list[ApiToken]:
        with self._reader.connect() as conn:
            rows = conn.execute(sa.select(api_token).order_by(api_token.c.id)).mappings().all()
        return [_token(r) for r in rows]

    def revoke(self, name: str) -> ApiToken:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                api_token.update()
                .where(api_token.c.name == name, api_token.c.revoke_time.is_(None))
                .values(revoke_time=now)
            )
            row = conn.execute(sa.select(api_token).where(api_token.c.name == name)).mappings()
            found = row.first()
        if found is None:
            raise ConfigurationError(f"no token named {name!r}")
        return _token(found)

    def find(self, token: str) -> ApiToken | None:
        """The live token this secret is, or None (unknown, malformed or revoked)."""
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        query = sa.select(api_token).where(
            api_token.c.token_hash == token_hash(token), api_token.c.revoke_time.is_(None)
        )
        with self._reader.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _token(row)

    def any_live(self) -> bool:
        query = sa.select(api_token.c.id).where(api_token.c.revoke_time.is_(None)).limit(1)
        with self._reader.connect() as conn:
            return conn.execute(query).first() is not None


def _token(row: sa.RowMapping) -> ApiToken:
    return ApiToken(row["name"], row["scope"], row["create_time"], row["revoke_time"])
