"""The job registry: jobs by name, one registry per engine."""

from __future__ import annotations

from collections.abc import Iterator
from threading import Lock

from batchline.errors import ConfigurationError, NoSuchJob
from batchline.job import Job


class JobRegistry:
    """The jobs an engine knows, by name.

    ``register`` refuses a second job of the same name unless ``replace=True``; ``get`` raises
    ``NoSuchJob`` naming the jobs it knows."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = Lock()

    def register(self, job: Job, *, replace: bool = False) -> Job:
        with self._lock:
            if job.name in self._jobs and not replace and self._jobs[job.name] is not job:
                raise ConfigurationError(f"a job named {job.name!r} is already registered")
            self._jobs[job.name] = job
        return job

    def get(self, name: str) -> Job:
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(sorted(self._jobs)) or "none"
            raise NoSuchJob(f"no job named {name!r} is registered (known: {known})") from None

    def unregister(self, name: str) -> None:
        with self._lock:
            self._jobs.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._jobs)

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)
