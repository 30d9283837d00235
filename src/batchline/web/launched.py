"""The executions this server launched, so that shutting it down stops them (STOPPED,
restartable) instead of leaving them to run on or to be cut off mid-chunk."""

from __future__ import annotations

import threading

from batchline.engine import Engine, JobHandle
from batchline.errors import JobExecutionNotRunning
from batchline.logging import log


class Launched:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._handles: list[JobHandle] = []
        self._lock = threading.Lock()

    def add(self, handle: JobHandle) -> JobHandle:
        with self._lock:
            self._handles = [h for h in self._handles if not h.done()] + [handle]
        return handle

    def stop_all(self) -> list[int]:
        """Ask every execution still running here to stop; the ids asked."""
        with self._lock:
            running = [h for h in self._handles if not h.done()]
        asked = []
        for handle in running:
            try:
                self.engine.stop(handle.execution_id)
                asked.append(handle.execution_id)
            except JobExecutionNotRunning:
                pass  # it ended meanwhile
        if asked:
            log.info("server shutting down: stop requested for executions %s", asked)
        return asked

    def stop_and_wait(self, timeout: float) -> None:
        """Stop them and wait, up to ``timeout`` seconds each, until they end (at their next
        chunk boundary): the process may exit right after."""
        with self._lock:
            running = [h for h in self._handles if not h.done()]
        self.stop_all()
        for handle in running:
            try:
                handle.wait(timeout)
            except Exception:  # how it ended is in the repository; here we only wait
                log.warning("job execution %d did not end cleanly", handle.execution_id)
