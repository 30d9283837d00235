"""Start a job for each file that arrives in a folder, on any fsspec filesystem.

    watcher = FolderWatcher(engine, import_trades, "s3://inbox/trades/", pattern="*.csv")
    watcher.start()                        # polls every `interval` seconds in a thread

Each new file launches one execution with the file's URL as the identifying parameter
(``file`` by default). The URL names the JobInstance, so the repository's unique (job name, key)
and one-running-execution constraints let only one launch win, however many watchers (in
however many processes) poll the folder: a file starts exactly one execution. A file whose
instance exists is never launched again, even if its run failed: restart that one with
``batchline restart``. A file delivered again under the same name is therefore not processed
again; deliver it under a new name (or into a dated folder) to process it anew.

Polling, not notifications: fsspec filesystems (S3, GCS, SFTP, local...) can all list, few can
notify. With ``require_stable`` (the default) a file launches once two polls in a row see it
with the same size, so a file still being written is not picked up half-way; when producers
move complete files into the folder atomically, turn it off.
"""

from __future__ import annotations

import logging
import math
import posixpath
import threading
from collections.abc import Mapping
from typing import Any

import fsspec

from batchline.engine import Engine, JobHandle
from batchline.errors import (
    ConfigurationError,
    JobExecutionAlreadyRunning,
    JobInstanceAlreadyComplete,
    JobInstanceAlreadyExists,
)
from batchline.job import Job
from batchline.parameters import JobParameter, JobParameters, ParamValue, parse_parameter

log = logging.getLogger("batchline.files")


class FolderWatcher:
    """Polls ``url`` for files matching ``pattern`` and starts ``job`` once per file."""

    def __init__(
        self,
        engine: Engine,
        job: Job | str,
        url: str,
        *,
        pattern: str = "*",
        parameter: str = "file",
        parameters: JobParameters | Mapping[str, ParamValue] | None = None,
        interval: float = 5.0,
        require_stable: bool = True,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not (math.isfinite(interval) and interval > 0):
            raise ConfigurationError(f"poll interval must be a positive number, not {interval!r}")
        parse_parameter(f"{parameter}=")  # refuses a name no parameter may have, at start
        self.engine = engine
        self.job = engine.register(job) if isinstance(job, Job) else engine.registry.get(job)
        self.fs, self.root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        self.pattern = pattern
        self.parameter = parameter
        self.base = (
            parameters if isinstance(parameters, JobParameters) else JobParameters(parameters)
        )
        self.interval = interval
        self.require_stable = require_stable
        self.handles: list[JobHandle] = []
        self._done: set[str] = set()
        self._sizes: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"FolderWatcher({self.job.name!r}, {self.fs.unstrip_protocol(self.root)!r})"

    def file_url(self, path: str) -> str:
        """The parameter value for a listed path: a full URL, the same from every watcher."""
        return str(self.fs.unstrip_protocol(path))

    def poll(self) -> list[JobHandle]:
        """One look at the folder; returns the executions this call launched."""
        listing = self.fs.glob(posixpath.join(self.root.rstrip("/"), self.pattern), detail=True)
        launched: list[JobHandle] = []
        for path, info in sorted(listing.items()):
            if info.get("type") == "directory" or path in self._done:
                continue
            size = info.get("size")
            if self.require_stable and self._sizes.get(path, -1) != size:
                self._sizes[path] = size  # launch when the next poll sees the same size
                continue
            handle = self._launch(path)
            self._done.add(path)
            self._sizes.pop(path, None)
            if handle is not None:
                launched.append(handle)
        self.handles = [h for h in self.handles if not h.done()] + launched
        return launched

    def _launch(self, path: str) -> JobHandle | None:
        url = self.file_url(path)
        params = self.base.merged(JobParameters({self.parameter: JobParameter(url)}))
        instance = self.engine.repository.get_job_instance(self.job.name, params)
        if instance is not None:
            log.info("%s: %s already launched (instance %d)", self.job.name, url, instance.id)
            return None
        try:
            handle = self.engine.start_async(self.job, params, new_instance_only=True)
        except (
            JobExecutionAlreadyRunning,
            JobInstanceAlreadyComplete,
            JobInstanceAlreadyExists,
        ) as err:
            log.info("%s: %s launched elsewhere (%s)", self.job.name, url, err)
            return None
        log.info("%s: %s arrived; execution %d launched", self.job.name, url, handle.execution_id)
        return handle

    def run(self) -> None:
        """Poll until ``stop()``; a failed poll (say, the store is away) is retried next time."""
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:
                log.warning(
                    "polling %r failed; retrying in %gs", self, self.interval, exc_info=True
                )
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="batchline-watch", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait and self._thread is not None:
            self._thread.join()

    def running(self) -> list[JobHandle]:
        return [h for h in self.handles if not h.done()]
