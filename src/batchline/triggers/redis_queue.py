"""Taking messages from a Redis queue without a window where a kill loses one.

kombu's Redis transport pops a message (BRPOP) and then records it as unacknowledged in a
second round trip: a consumer killed between the two, or while the reply is on its way, loses
the message (seen here: 999 of 1,000 instances after two SIGKILLs). This consumer moves each
message atomically (BLMOVE) from the queue to a processing list of its own, and removes it from
there when it is acknowledged. Each consumer keeps a liveness key that expires after ``lease``
seconds; a processing list whose consumer's key has expired is moved back onto the queue, by
any consumer of it, at start and then every few seconds. A consumer frozen past its lease
therefore has its message delivered again: harmless, since a message's identity names its job
instance. Producers are unchanged: kombu's envelope (JSON) on the list named after the queue,
or on kombu's list for the message's priority step, read highest priority first (what is put
back goes onto the plain queue).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from batchline.logging import get_logger

log = get_logger("batchline.messages")

_PROCESSING = ".batchline-processing."


class RedisMessage:
    """A message taken from the queue, with what ``MessageTrigger`` reads of kombu's."""

    def __init__(self, raw: bytes, ack: Callable[[], None]) -> None:
        envelope = json.loads(raw)
        self.properties: dict[str, Any] = dict(envelope.get("properties") or {})
        self.headers: dict[str, Any] = dict(envelope.get("headers") or {})
        self.content_type: str | None = envelope.get("content-type")
        self.content_encoding: str | None = envelope.get("content-encoding")
        body = envelope.get("body", "")
        if self.properties.get("body_encoding") == "base64":
            self.body: bytes = base64.b64decode(body)
        else:
            self.body = body.encode(self.content_encoding or "utf-8")
        self._ack = ack

    def ack(self) -> None:
        self._ack()


class RedisQueue:
    """One consumer of ``queue`` on the Redis server at ``url`` (kombu's lists: one per
    priority step, taken highest priority first, as kombu's own consumers do)."""

    def __init__(self, url: str, queue: str, lease: float) -> None:
        import redis
        from kombu.transport.redis import PRIORITY_STEPS, Channel

        # redis-py's annotations take str where bytes work and int where seconds are floats.
        self.client: Any = redis.Redis.from_url(url)
        self.queue = queue
        # A message published with a priority waits on a list of its own (kombu's naming);
        # step 0, the plain queue, is the highest.
        self.lists = [f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS]
        self.lease = lease
        self.processing = f"{queue}{_PROCESSING}{uuid.uuid4().hex}"
        self._alive = f"{self.processing}.alive"
        self._swept = 0.0

    def take(self, timeout: float) -> RedisMessage | None:
        """The next message, moved to this consumer's processing list; None after ``timeout``."""
        self.beat()
        raw = self._first_waiting()
        if raw is None:
            # Wait on the plain queue; one published with a priority meanwhile is found by the
            # next call (the trigger calls again at least every second).
            raw = self.client.blmove(self.queue, self.processing, timeout, "RIGHT", "LEFT")
        if raw is None:
            return None
        body = raw if isinstance(raw, bytes) else str(raw).encode()
        try:
            return RedisMessage(body, lambda: self._done(body))
        except (ValueError, TypeError, AttributeError) as err:
            # Not kombu's envelope: nothing can be started from it, nor republished as it was.
            log.error("message on %s is not a kombu message (%s): dropped", self.queue, err)
            self._done(body)
            return None

    def _first_waiting(self) -> Any:
        """A message moved from the first list holding one, highest priority first; or None."""
        for name in self.lists:
            raw = self.client.lmove(name, self.processing, "RIGHT", "LEFT")
            if raw is not None:
                return raw
        return None

    def _done(self, raw: bytes) -> None:
        self.client.lrem(self.processing, 1, raw)

    def beat(self) -> None:
        """Renew this consumer's lease (and now and then put back what dead ones held)."""
        self.client.set(self._alive, b"1", px=max(int(self.lease * 1000), 1))
        now = time.monotonic()
        if now - self._swept >= min(self.lease, 5.0):
            self._swept = now
            self.sweep()

    def sweep(self) -> int:
        """Move back onto the queue what consumers whose lease ran out were processing."""
        moved = 0
        for key in self.client.scan_iter(match=f"{self.queue}{_PROCESSING}*"):
            name = bytes(key).decode()
            if name.endswith(".alive") or name == self.processing:
                continue
            if self.client.exists(f"{name}.alive"):
                continue
            # RIGHT to RIGHT: the oldest first, and next in line (consumers take from the right).
            while self.client.lmove(name, self.queue, "RIGHT", "RIGHT") is not None:
                moved += 1
        if moved:
            log.warning("%d message(s) of dead consumers put back on %s", moved, self.queue)
        return moved

    def close(self) -> None:
        """Stop: what this consumer still holds goes back onto the queue now."""
        try:
            while self.client.lmove(self.processing, self.queue, "RIGHT", "RIGHT") is not None:
                pass
            self.client.delete(self._alive)
        finally:
            self.client.close()
