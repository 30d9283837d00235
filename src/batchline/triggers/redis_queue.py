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
from batchline.triggers.message_body import preview

log = get_logger("batchline.messages")

_PROCESSING = ".batchline-processing."


class RedisMessage:
    """A message taken from the queue, with what ``MessageTrigger`` reads of kombu's.

    An entry that is not kombu's envelope (raw text, plain JSON, a body that does not decode)
    still makes a message: its ``body`` is the entry as it was on the list and ``refused``
    says why it cannot be read, for the trigger to dead-letter it (nothing is dropped).
    """

    def __init__(self, raw: bytes, ack: Callable[[], None]) -> None:
        self.properties: dict[str, Any] = {}
        self.headers: dict[str, Any] = {}
        self.content_type: str | None = None
        self.content_encoding: str | None = None
        self.body: bytes = raw
        self.refused: str | None = None
        self._ack = ack
        try:
            self._read(raw)
        except (ValueError, TypeError, AttributeError, LookupError) as err:
            self.properties, self.headers, self.body = {}, {}, raw
            self.content_type = self.content_encoding = None
            self.refused = f"not a kombu message ({type(err).__name__}: {err}): {preview(raw)}"

    def _read(self, raw: bytes) -> None:
        envelope = json.loads(raw)
        if not isinstance(envelope, dict):
            raise ValueError(f"a JSON {type(envelope).__name__}, not kombu's envelope")
        body = envelope.get("body")
        if not isinstance(body, str):
            raise ValueError("its envelope has no body")
        self.properties = _mapping(envelope, "properties")
        self.headers = _mapping(envelope, "headers")
        self.content_type = _text(envelope, "content-type")
        self.content_encoding = _text(envelope, "content-encoding")
        if self.properties.get("body_encoding") == "base64":
            self.body = base64.b64decode(body, validate=True)
        else:
            # The envelope is JSON text: a body in it is Unicode whatever encoding the
            # envelope names (an unknown one the trigger refuses, with its name).
            self.body = body.encode("utf-8", "surrogatepass")
        compression = self.headers.get("compression")
        if compression:  # as kombu's own consumers do
            from kombu.compression import decompress

            try:
                self.body = decompress(self.body, compression)
            except Exception as err:  # whatever the codec raises: unreadable
                self.refused = f"body cannot be decompressed: {err!r}"

    def ack(self) -> None:
        self._ack()


def _mapping(envelope: dict[str, Any], key: str) -> dict[str, Any]:
    value = envelope.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"its {key} are not an object")
    return value


def _text(envelope: dict[str, Any], key: str) -> str | None:
    value = envelope.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"its {key} is not text")
    return value


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
        return RedisMessage(body, lambda: self._done(body))

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
