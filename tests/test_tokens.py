"""API tokens in the repository, on every backend: hashed, scoped, revocable."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import sqlalchemy as sa

from batchline import ConfigurationError, Engine
from batchline.cli import tokens as cli_tokens
from batchline.repository import tokens
from batchline.repository.schema import api_token
from batchline.repository.tokens import TokenStore
from batchline.testing import eventually


@pytest.fixture
def store(engine: Engine) -> TokenStore:
    return TokenStore(engine.repository.engine)  # type: ignore[attr-defined]


def test_create_find_revoke(store: TokenStore) -> None:
    secret = store.create("ci", "operate")
    found = store.find(secret)
    assert found is not None and found.name == "ci" and found.allows("read")
    assert store.any_live()
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(api_token.c.token_hash)).scalar_one()
    assert stored == tokens.token_hash(secret) and secret not in stored
    assert store.revoke("ci").revoke_time is not None
    assert store.find(secret) is None and not store.any_live()
    assert [t.name for t in store.list()] == ["ci"]


def test_read_scope_does_not_operate(store: TokenStore) -> None:
    found = store.find(store.create("viewer", "read"))
    assert found is not None and found.allows("read") and not found.allows("operate")


def test_one_line_errors(store: TokenStore) -> None:
    store.create("ci", "read")
    with pytest.raises(ConfigurationError, match="a token named 'ci' exists already"):
        store.create("ci", "read")
    with pytest.raises(ConfigurationError, match="unknown scope 'admin'"):
        store.create("other", "admin")
    with pytest.raises(ConfigurationError, match="no token named 'nope'"):
        store.revoke("nope")
    with pytest.raises(ConfigurationError, match="invalid token name"):
        store.create("a b", "read")
    assert store.find("blt_" + "x" * 43) is None and store.find("not-a-token") is None


def test_cli_scopes_are_the_stores() -> None:
    assert cli_tokens.SCOPES == tokens.SCOPES


def test_lookup_does_not_wait_for_a_running_jobs_write_lock(sqlite_engine: Engine) -> None:
    """On SQLite a job's chunk transactions hold the write lock: a request's token lookup
    reads without asking for it, so the web answers while jobs run."""
    store = TokenStore(sqlite_engine.repository.engine)  # type: ignore[attr-defined]
    secret = store.create("web", "read")
    found: list[object] = []
    writer = sqlite3.connect(sqlite_engine.repository.engine.url.database, timeout=1)  # type: ignore[attr-defined]
    writer.execute("BEGIN IMMEDIATE")
    try:
        lookup = threading.Thread(target=lambda: found.append(store.find(secret)), daemon=True)
        lookup.start()
        eventually(lambda: found, timeout=10, message="the lookup waited for the write lock")
    finally:
        writer.rollback()
        writer.close()
    assert found[0] is not None
