"""The query API on the engine (Spring's JobExplorer): what ran, what runs, and how it went.

A mixin of ``Engine`` so that ``engine.find_executions(...)`` reads the engine's repository;
every method only reads. Lists are keyset pages (``Page.next_after`` goes into ``after``).
"""

from __future__ import annotations

from batchline.model import JobExecution, JobInstance, SkippedItem, StepExecution
from batchline.repository.base import JobRepository
from batchline.repository.filters import Count, ExecutionQuery, JobSummary, Page, ProgressSample


class Explorer:
    repository: JobRepository

    def job_names(self) -> list[str]:
        """Every job name the repository has an instance of, sorted."""
        return self.repository.job_names()

    def job_instances(
        self, job_name: str, *, after: int | None = None, limit: int = 50
    ) -> Page[JobInstance]:
        return self.repository.job_instances(job_name, after=after, limit=limit)

    def count_job_instances(self, job_name: str, *, bound: int | None = None) -> int:
        """How many instances the job has; with ``bound``, counting stops past it."""
        return self.repository.count_job_instances(job_name, bound=bound)

    def instance_executions(self, instance_id: int) -> list[JobExecution]:
        """Every execution of one instance, newest first."""
        return self.repository.instance_executions(instance_id)

    def running_executions(self, job_name: str | None = None) -> list[JobExecution]:
        """Executions whose status is STARTING, STARTED or STOPPING."""
        return self.repository.running_executions(job_name)

    def get_step_execution(self, step_execution_id: int) -> StepExecution:
        return self.repository.get_step_execution(step_execution_id)

    def find_executions(
        self,
        flt: ExecutionQuery | None = None,
        *,
        after: int | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> Page[JobExecution]:
        """Executions by job (or name prefix), statuses, creation time, parameter values and
        exit message, newest first: older than ``after``, or the page newer than ``before``."""
        return self.repository.find_executions(flt, after=after, limit=limit, before=before)

    def count_executions(self, flt: ExecutionQuery | None = None) -> int:
        return self.repository.count_executions(flt)

    def with_skips(self, execution_ids: list[int]) -> set[int]:
        """Which of these executions skipped items ("completed with skips" in lists)."""
        return self.repository.with_skips(execution_ids)

    def count_bounded(self, flt: ExecutionQuery | None = None, *, bound: int = 1000) -> Count:
        """Exact from the per-job summary when the filter is only jobs and statuses, else
        counted up to ``bound`` ("more than" past it): cheap enough for every page."""
        return self.repository.count_bounded(flt, bound=bound)

    def skipped_page(
        self,
        execution_id: int,
        *,
        step_name: str | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> Page[SkippedItem]:
        return self.repository.skipped_page(
            execution_id, step_name=step_name, after=after, limit=limit
        )

    def progress_samples(self, execution_id: int, *, limit: int = 10_000) -> list[ProgressSample]:
        """The counters of the execution's steps over time (one sample every few seconds per
        running step, and one at each step's end), oldest first."""
        return self.repository.progress_samples(execution_id, limit=limit)

    def job_summaries(self, job_name: str | None = None) -> list[JobSummary]:
        """Every job's (or one job's) summary, from the per-job summary rows."""
        return self.repository.job_summaries(job_name)
