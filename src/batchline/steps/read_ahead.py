"""Reading chunk N+1 while chunk N is written and committed (the chunk step's read-ahead).

While a writer waits on its database (psycopg and PyMySQL release the GIL during network I/O,
and the server works on another core), a thread reads the next chunk's items. What it may do is
narrow, so that the step behaves as without it:

- it only calls ``reader.read()``, at most the chunk's size of items, and stops at the first
  exception, which it hands back unhandled: skip and retry decisions, positions and listener
  calls for that error are made on the step's thread afterwards, in the order they would have
  been made without the read-ahead;
- the reader's saved state of chunk N is taken (``update`` into a copy of the context) on the
  step's thread when chunk N has been gathered, before the read-ahead starts, and it is that
  state which commits with chunk N: a restart resumes exactly after chunk N's records;
- a stop, a failure or the end of the step cancels the read-ahead and waits for it, so the
  reader is closed by the step's thread only.

Only readers that say so (``read_ahead_safe = True``: they touch nothing but their own input)
are read ahead automatically, and only for writers that say they wait on a database
(``overlaps_reads = True``); ``read_ahead=True`` or ``False`` on the step decides otherwise.
Left to itself the step asks again after each chunk: a writer that kept the GIL busy (typed rows
through psycopg's ``write_row``) sets ``overlaps_reads`` False, and the next chunk is read on the
step's thread, since two busy threads would only take turns.
"""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from batchline.model import ExecutionContext

# Items read between two looks at the cancel flag, and two offers of the GIL to the step's
# thread: when its database call returns it waits for the GIL, and CPython's switch interval
# (5 ms) would otherwise make it wait that long each time.
_SLICE = 128


@dataclass(slots=True)
class Prefetched:
    """What the read-ahead read: the items, then at most one of an error or the end."""

    items: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    ended: bool = False


def wanted(setting: bool | None, reader: Any, writer: Any, others: list[Any]) -> bool:
    """Whether a step reads ahead: its own setting, else what its reader and writer declare."""
    if any(other is reader for other in others):
        return False  # a reader that is also the processor, writer or a stream: never
    if setting is not None:
        return setting
    return bool(getattr(reader, "read_ahead_safe", False)) and bool(
        getattr(writer, "overlaps_reads", False)
    )


class StreamState:
    """A stream's ``update`` taken at one moment and replayed into a later context."""

    __slots__ = ("changed", "removed")

    def __init__(self, stream: Any, context: ExecutionContext) -> None:
        before = dict(context)
        probe = ExecutionContext(before)
        stream.update(probe)
        self.changed = {k: v for k, v in probe.items() if k not in before or before[k] != v}
        self.removed = [k for k in before if k not in probe]

    def apply(self, context: ExecutionContext) -> None:
        for key, value in self.changed.items():
            context[key] = value
        for key in self.removed:
            if key in context:
                del context[key]


class ReadAhead:
    """One background thread reading the next chunk of one step execution."""

    def __init__(self, reader: Any, size: int, name: str) -> None:
        self._read = reader.read
        self._read_into = getattr(reader, "read_into", None)
        self._size = size
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"batchline-read-ahead-{name}")
        self._future: Future[Prefetched] | None = None
        self._cancelled = False

    def start(self) -> None:
        self._cancelled = False
        # The reader's thread logs with the step's tags (context variables).
        self._future = self._pool.submit(contextvars.copy_context().run, self._read_chunk)

    def take(self) -> Prefetched | None:
        """The chunk read ahead (waiting for it), or None when none was started."""
        future, self._future = self._future, None
        return None if future is None else future.result()

    def stop(self) -> None:
        """Cancel what is in flight, wait for it, end the thread."""
        self._cancelled = True
        future, self._future = self._future, None
        if future is not None:
            future.exception()  # waits; what it read is dropped, never committed
        self._pool.shutdown(wait=True)

    def _read_chunk(self) -> Prefetched:
        got = Prefetched()
        items = got.items
        append = items.append
        read, read_into = self._read, self._read_into
        left = self._size
        pause = time.sleep
        try:
            while left > 0 and not self._cancelled:
                pause(0)
                if read_into is not None:
                    if read_into(items, min(left, _SLICE)):
                        got.ended = True
                        return got
                    left = self._size - len(items)
                    continue
                for _ in range(min(left, _SLICE)):
                    item = read()
                    if item is None:
                        got.ended = True
                        return got
                    append(item)
                left = self._size - len(items)
        except BaseException as exc:  # handed to the step's thread, which decides
            got.error = exc
        return got
