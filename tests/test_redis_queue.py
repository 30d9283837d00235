"""The message trigger's Redis consumer: messages kombu published, taken by an atomic move, and
a dead consumer's message put back on the queue once its lease has run out."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tests.backends import require_broker

pytest.importorskip("redis")
pytest.importorskip("kombu")

from batchline.triggers.redis_queue import RedisQueue


@pytest.fixture
def queue() -> Iterator[tuple[str, str]]:
    url = require_broker("redis")
    name = f"batchline-test-rq-{uuid.uuid4().hex[:8]}"
    yield url, name
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{name}*"):
        client.delete(key)
    client.close()


def publish(url: str, name: str, body: bytes, message_id: str, priority: int | None = None) -> None:
    from kombu import Connection, Producer, Queue

    with Connection(url) as conn:
        channel = conn.channel()
        Queue(name, durable=True)(channel).declare()
        Producer(channel).publish(
            body,
            routing_key=name,
            message_id=message_id,
            headers={"x-batchline-failures": 2},
            content_type="application/json",
            content_encoding="utf-8",
            priority=priority,
        )


def test_messages_published_with_a_priority_are_taken_highest_first(
    queue: tuple[str, str],
) -> None:
    """kombu keeps a list per priority step; every one is read, step 0 (the highest) first."""
    url, name = queue
    for i, priority in enumerate([9, 4, None, 0, 6]):
        publish(url, name, b"{}", f"m-{i}-{priority}", priority)
    taking = RedisQueue(url, name, lease=5)
    try:
        taken = []
        while (message := taking.take(0.2)) is not None:
            taken.append(message.properties["message_id"])
            message.ack()
        assert taken == ["m-2-None", "m-3-0", "m-1-4", "m-4-6", "m-0-9"]
        assert not [k for k in taking.client.scan_iter(match=f"{name}*") if b"alive" not in k]
    finally:
        taking.close()


def test_a_kombu_message_is_read_as_published(queue: tuple[str, str]) -> None:
    url, name = queue
    publish(url, name, b'{"n": 1, "text": "\\u00e9t\\u00e9"}', "m-1")
    taking = RedisQueue(url, name, lease=5)
    try:
        message = taking.take(1.0)
        assert message is not None
        assert message.body == b'{"n": 1, "text": "\\u00e9t\\u00e9"}'
        assert message.properties["message_id"] == "m-1"
        assert message.headers["x-batchline-failures"] == 2
        assert taking.client.llen(taking.processing) == 1  # held until acknowledged
        message.ack()
        assert taking.client.llen(taking.processing) == 0
        assert taking.client.llen(name) == 0
    finally:
        taking.close()


def test_a_dead_consumers_message_goes_back_after_its_lease(queue: tuple[str, str]) -> None:
    """A consumer takes a message and dies before acknowledging it (its process gone: no
    close, its liveness key left to expire): another consumer's sweep puts it back, only once
    the lease has run out, and takes it."""
    url, name = queue
    publish(url, name, b'{"n": 2}', "m-2")
    dead = RedisQueue(url, name, lease=1.0)
    assert dead.take(1.0) is not None  # then nothing: as if SIGKILLed
    other = RedisQueue(url, name, lease=1.0)
    try:
        assert other.sweep() == 0  # the dead one's lease still runs
        assert other.take(0.1) is None
        time.sleep(1.2)  # past the dead consumer's lease (not a timing assertion)
        assert other.sweep() == 1
        again = other.take(1.0)
        assert again is not None and again.properties["message_id"] == "m-2"
        again.ack()
        assert other.client.llen(dead.processing) == 0
    finally:
        other.close()
        dead.client.close()


def test_close_puts_back_what_it_holds(queue: tuple[str, str]) -> None:
    url, name = queue
    publish(url, name, b'{"n": 3}', "m-3")
    first = RedisQueue(url, name, lease=30)
    assert first.take(1.0) is not None
    first.close()  # stopping with a message unacknowledged (the repository was away)
    second = RedisQueue(url, name, lease=30)
    try:
        message = second.take(1.0)
        assert message is not None and message.properties["message_id"] == "m-3"
    finally:
        second.close()


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        (b"raw text", "not a kombu message (JSONDecodeError"),
        (b'{"n": 1}', "its envelope has no body"),
        (b"[1, 2]", "a JSON list, not kombu's envelope"),
        (b'{"body": "x", "headers": [1]}', "its headers are not an object"),
        (b'{"body": "!!", "properties": {"body_encoding": "base64"}}', "Error"),
        (b'{"body": "e30=", "properties": {"body_encoding": "base64"}, '
         b'"headers": {"compression": "x-nope"}}', "body cannot be decompressed"),
    ],
)  # fmt: skip
def test_an_entry_that_is_not_kombus_is_taken_with_the_reason(
    queue: tuple[str, str], entry: bytes, said: str
) -> None:
    """An entry the consumer cannot read is taken like any message (never raised, never
    dropped): as it was on the list, with the reason, for the trigger to dead-letter."""
    url, name = queue
    taking = RedisQueue(url, name, lease=5)
    try:
        taking.client.lpush(name, entry)
        message = taking.take(1.0)
        assert message is not None and message.refused is not None
        assert said in message.refused
        if "decompressed" not in said:
            assert message.body == entry
        message.ack()
        assert taking.client.llen(taking.processing) == 0
    finally:
        taking.close()
