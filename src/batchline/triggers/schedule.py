"""Cron schedules on APScheduler 3, safe to run in several replicas against one repository.

    scheduler = JobScheduler(engine)
    scheduler.add(import_trades, "0 2 * * *", {"region": "eu"})
    scheduler.start()                      # a background thread; scheduler.shutdown() to end

Each occurrence launches the job with its *scheduled* fire time (UTC) as the identifying
datetime parameter ``scheduled_at``. Two replicas that fire the same occurrence therefore ask
for the same JobInstance, and the repository's unique (job name, key) and one-running-execution
constraints let exactly one of them run it; the other logs that it was already launched.

Missed occurrences, the policy:

- An occurrence runs if a scheduler sees it no later than ``misfire_grace_time`` seconds
  (default 300) after its fire time; later than that it is skipped and logged as missed.
  ``None`` runs it however late.
- When a scheduler starts, the latest occurrence within the grace time before now counts as
  due (``catch_up``, on by default): a replica restarted a minute after 02:00 still runs the
  02:00 occurrence, unless another replica already launched it. Older occurrences, from while
  no scheduler ran, are not replayed.
- ``coalesce`` (default on): when several occurrences of one schedule are due at once, only
  the latest runs.
- An occurrence whose instance already exists is never launched again by a scheduler, even if
  it failed: restarting a failed occurrence is an operator's decision (``batchline restart``).
- Occurrences run on the engine's pool, so a long run does not delay the next occurrence.

Pausing: ``pause(id)`` and ``resume(id)`` record the state in the repository (an SQL one), and
every replica's scheduler asks it before firing, so a pause holds everywhere; the occurrences
due while paused are skipped, not replayed. ``trigger(id)`` launches the schedule's job now,
with the current second as its fire time, paused or not.

Cron expressions have five fields (minute hour day month day-of-week, as crontab) or six, with
a leading seconds field.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.util import astimezone
from sqlalchemy.engine import Engine as SaEngine

from batchline.engine import Engine, JobHandle
from batchline.errors import (
    ConfigurationError,
    JobExecutionAlreadyRunning,
    JobInstanceAlreadyComplete,
    JobInstanceAlreadyExists,
    NoSuchSchedule,
)
from batchline.job import Job
from batchline.parameters import JobParameter, JobParameters, ParamValue, parse_parameter
from batchline.repository.schedule_state import ScheduleStates

log = logging.getLogger("batchline.schedule")

DEFAULT_PARAMETER = "scheduled_at"


def cron_trigger(expression: str, timezone: Any = "UTC") -> Any:
    """A CronTrigger from five crontab fields, or six with seconds first."""
    fields = expression.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(expression, timezone=timezone)
        if len(fields) == 6:
            second, minute, hour, day, month, day_of_week = fields
            return CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=day_of_week,
                timezone=timezone,
            )
    except (ValueError, TypeError) as err:
        raise ConfigurationError(f"cron expression {expression!r}: {err}") from None
    raise ConfigurationError(
        f"cron expression {expression!r}: expected 5 fields (minute hour day month weekday) "
        "or 6 (second first)"
    )


@dataclass(frozen=True)
class Schedule:
    """One schedule as a scheduler runs it: which job, when (the cron text and its time zone),
    with which parameters besides the fire time, and its next fire time (None when paused or
    exhausted); ``overlap`` False when an occurrence is skipped while an earlier one runs."""

    id: str
    job_name: str
    cron: str
    timezone: str
    parameters: JobParameters
    next_fire_time: dt.datetime | None
    paused: bool = False
    overlap: bool = True


class _Occurrence:
    """An APScheduler job as ``run_job`` sees it, with the fire time among its arguments."""

    def __init__(self, job: Any, run_time: dt.datetime) -> None:
        self._job = job
        self.id = job.id
        self.func = job.func
        self.args = job.args
        self.kwargs = {**job.kwargs, "scheduled_at": run_time}
        self.misfire_grace_time = job.misfire_grace_time

    def __str__(self) -> str:
        return str(self._job)


class FireTimeExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """Passes each occurrence's scheduled fire time to the function, which APScheduler 3
    does not do; misfire handling and events stay APScheduler's own (``run_job``)."""

    def _do_submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        def run() -> list[Any]:
            events: list[Any] = []
            for run_time in run_times:
                occurrence = _Occurrence(job, run_time)
                events += run_job(occurrence, job._jobstore_alias, [run_time], self._logger.name)
            return events

        def done(future: Any) -> None:
            error = future.exception()
            if error is not None:
                self._run_job_error(job.id, error, error.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(run).add_done_callback(done)


class JobScheduler:
    """Launches jobs on cron schedules through an Engine; see the module doc for the policy."""

    def __init__(
        self,
        engine: Engine,
        *,
        misfire_grace_time: float | None = 300.0,
        coalesce: bool = True,
        catch_up: bool = True,
        timezone: Any = "UTC",
        parameter: str = DEFAULT_PARAMETER,
    ) -> None:
        # Checked here, not at the first occurrence: a bad value would fail every one of them.
        if misfire_grace_time is not None and not (
            math.isfinite(misfire_grace_time) and misfire_grace_time > 0
        ):
            raise ConfigurationError(
                f"misfire_grace_time must be a positive number of seconds (None: however "
                f"late), not {misfire_grace_time!r}"
            )
        try:
            astimezone(timezone)
        except Exception as err:  # zoneinfo's KeyError, APScheduler's TypeError/ValueError
            raise ConfigurationError(f"unknown time zone {timezone!r}: {err}") from None
        parse_parameter(f"{parameter}=")  # refuses a name no parameter may have
        self.engine = engine
        self.misfire_grace_time = misfire_grace_time
        self.catch_up = catch_up
        self.timezone = timezone
        self.parameter = parameter
        self.handles: list[JobHandle] = []
        self._lock = threading.Lock()
        self._added: dict[str, tuple[str, str, JobParameters]] = {}  # id -> job, cron, params
        self._no_overlap: set[str] = set()
        self._no_overlap_lock = threading.Lock()
        bind = getattr(engine.repository, "engine", None)
        self.states = ScheduleStates(bind) if isinstance(bind, SaEngine) else None
        self._scheduler = BackgroundScheduler(
            executors={"default": FireTimeExecutor(4)},
            job_defaults={
                "coalesce": coalesce,
                # APScheduler truncates to whole seconds, and refuses 0.
                "misfire_grace_time": None
                if misfire_grace_time is None
                else math.ceil(misfire_grace_time),
                "max_instances": 4,
            },
            timezone=timezone,
        )

    def add(
        self,
        job: Job | str,
        cron: str | Any,
        parameters: JobParameters | Mapping[str, ParamValue] | None = None,
        *,
        schedule_id: str | None = None,
        overlap: bool = True,
    ) -> str:
        """Schedule ``job`` (a Job, registered here, or a registered name); returns the id.

        ``overlap=False`` skips an occurrence (logged) while an execution of an earlier one of
        this schedule still runs, in any replica: Kubernetes' ``concurrencyPolicy: Forbid``,
        Quartz's ``@DisallowConcurrentExecution``. ``trigger`` (an operator's "run now") is not
        held back."""
        resolved = (
            self.engine.register(job) if isinstance(job, Job) else self.engine.registry.get(job)
        )
        trigger = cron_trigger(cron, self.timezone) if isinstance(cron, str) else cron
        base = parameters if isinstance(parameters, JobParameters) else JobParameters(parameters)
        if self.parameter in base:
            raise ConfigurationError(
                f"job {resolved.name!r}: parameter {self.parameter!r} is set by the scheduler"
            )
        options: dict[str, Any] = {}
        if self.catch_up and self.misfire_grace_time is not None:
            now = dt.datetime.now(dt.UTC)
            since = now - dt.timedelta(seconds=self.misfire_grace_time)
            options["next_run_time"] = trigger.get_next_fire_time(None, since)
        added = self._scheduler.add_job(
            self._fire_scheduled,
            trigger,
            kwargs={"job_name": resolved.name, "parameters": base},
            id=schedule_id,
            name=f"{resolved.name} [{cron}]",
            **options,
        )
        # The id is known once APScheduler chose it: the occurrence asks whether it is paused.
        added.modify(kwargs={**added.kwargs, "schedule_id": str(added.id)})
        self._added[str(added.id)] = (resolved.name, str(cron), base)
        if not overlap:
            self._no_overlap.add(str(added.id))
        return str(added.id)

    def _earlier_still_running(self, job_name: str, parameters: JobParameters) -> int | None:
        """The id of a running execution launched by the schedule with these parameters."""
        wanted = parameters.identifying
        for execution in self.engine.running_executions(job_name):
            found = execution.parameters.identifying
            if self.parameter in found and all(
                found.get(name) == value for name, value in wanted.items()
            ):
                return execution.id
        return None

    def _state_store(self) -> ScheduleStates:
        if self.states is None:
            raise ConfigurationError("pausing a schedule needs an SQL job repository")
        return self.states

    def _known(self, schedule_id: str) -> tuple[str, str, JobParameters]:
        if schedule_id not in self._added:
            raise NoSuchSchedule(f"no schedule {schedule_id!r} runs here")
        return self._added[schedule_id]

    def pause(self, schedule_id: str, *, by: str = "-") -> None:
        """Skip the schedule's occurrences, in every replica, until ``resume``."""
        self._known(schedule_id)
        self._state_store().set_paused(schedule_id, True, by)
        log.info("schedule %r paused by %s", schedule_id, by)

    def resume(self, schedule_id: str, *, by: str = "-") -> None:
        self._known(schedule_id)
        self._state_store().set_paused(schedule_id, False, by)
        log.info("schedule %r resumed by %s", schedule_id, by)

    def trigger(self, schedule_id: str) -> JobHandle | None:
        """Launch the schedule's job now (fire time: this second), paused or not; None when
        that occurrence was launched already."""
        job_name, _, parameters = self._known(schedule_id)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        return self.fire(job_name, now, parameters)

    def fire(
        self,
        job: Job | str,
        scheduled_at: dt.datetime,
        parameters: JobParameters | Mapping[str, ParamValue] | None = None,
    ) -> JobHandle | None:
        """Launch the occurrence due at ``scheduled_at``, unless it was launched already.

        Returns the handle of the launched execution, or None when this occurrence's instance
        exists (another replica, or an earlier run of this one, launched it).
        """
        resolved = job if isinstance(job, Job) else self.engine.registry.get(job)
        base = parameters if isinstance(parameters, JobParameters) else JobParameters(parameters)
        moment = scheduled_at if scheduled_at.tzinfo else scheduled_at.replace(tzinfo=dt.UTC)
        occurrence = JobParameters({self.parameter: JobParameter(moment.astimezone(dt.UTC))})
        params = base.merged(occurrence)
        instance = self.engine.repository.get_job_instance(resolved.name, params)
        if instance is not None:
            log.info("%s at %s: already launched (instance %d)", resolved.name, moment, instance.id)
            return None
        try:
            handle = self.engine.start_async(resolved, params, new_instance_only=True)
        except (
            JobExecutionAlreadyRunning,
            JobInstanceAlreadyComplete,
            JobInstanceAlreadyExists,
        ) as err:
            log.info("%s at %s: launched elsewhere (%s)", resolved.name, moment, err)
            return None
        log.info("%s at %s: execution %d launched", resolved.name, moment, handle.execution_id)
        with self._lock:
            self.handles = [h for h in self.handles if not h.done()] + [handle]
        return handle

    def _fire_scheduled(
        self,
        job_name: str,
        parameters: JobParameters,
        scheduled_at: dt.datetime | None = None,
        schedule_id: str | None = None,
    ) -> int | None:
        # The default only satisfies APScheduler's signature check: FireTimeExecutor passes it.
        if scheduled_at is None:
            raise ConfigurationError("JobScheduler's jobs need its FireTimeExecutor")
        states = self.states
        if schedule_id is not None and states is not None and states.is_paused(schedule_id):
            log.info("%s at %s: schedule %r is paused", job_name, scheduled_at, schedule_id)
            return None
        exclusive = schedule_id in self._no_overlap
        # Held from the check until the launch has recorded its execution: two occurrences due
        # together (a catch-up and the next second) must not both find none running.
        with self._no_overlap_lock if exclusive else contextlib.nullcontext():
            running = self._earlier_still_running(job_name, parameters) if exclusive else None
            if running is not None:
                log.warning(
                    "%s at %s: skipped, execution %d of an earlier occurrence still runs "
                    "(schedule %r does not overlap)",
                    job_name,
                    scheduled_at,
                    running,
                    schedule_id,
                )
                return None
            handle = self.fire(job_name, scheduled_at, parameters)
        return handle.execution_id if handle else None

    def running(self) -> list[JobHandle]:
        with self._lock:
            return [h for h in self.handles if not h.done()]

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop firing; with ``wait``, wait for occurrences being launched (not for the jobs)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def schedules(self) -> list[Schedule]:
        """Every schedule added, in the order added, with its next fire time."""
        found = []
        paused = self.states.paused() if self.states is not None else set()
        for schedule_id, (job_name, cron, parameters) in list(self._added.items()):
            job = self._scheduler.get_job(schedule_id)
            found.append(
                Schedule(
                    id=schedule_id,
                    job_name=job_name,
                    cron=cron,
                    timezone=str(self.timezone),
                    parameters=parameters,
                    next_fire_time=getattr(job, "next_run_time", None) if job else None,
                    paused=schedule_id in paused,
                    overlap=schedule_id not in self._no_overlap,
                )
            )
        return found

    def launched_by(self, schedule: Schedule, executions: list[Any]) -> list[Any]:
        """Of a job's executions (newest first), those this schedule launched, here or in a
        replica: the fire-time parameter set, every other identifying parameter the schedule's."""
        mine = {n: schedule.parameters.parameter(n) for n in schedule.parameters}
        found = []
        for e in executions:
            params = e.parameters
            if self.parameter not in params:
                continue
            others = {n: params.parameter(n) for n in params if n != self.parameter}
            if {n: p for n, p in others.items() if p.identifying} == {
                n: p for n, p in mine.items() if p.identifying
            }:
                found.append(e)
        return found

    def next_fire_times(self) -> dict[str, dt.datetime | None]:
        # A job added before start() has no next_run_time attribute yet in APScheduler 3.
        return {job.name: getattr(job, "next_run_time", None) for job in self._scheduler.get_jobs()}
