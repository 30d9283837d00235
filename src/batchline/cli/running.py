"""Running a job in the foreground: progress, graceful SIGTERM/SIGINT, summary, exit code.

A signal handler only sets a flag: the main thread, which waits for the job in short slices,
sees it and records a stop request in the repository. The job's own thread sees the request at
the next chunk boundary and ends STOPPED, so nothing is interrupted mid-transaction.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import click

from batchline.cli import output
from batchline.cli.state import State
from batchline.errors import JobExecutionNotRunning
from batchline.job import Job
from batchline.model import JobExecution
from batchline.progress import ProgressReporter

if TYPE_CHECKING:
    from batchline.engine import Engine, JobHandle

log = logging.getLogger("batchline.cli")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop:
    """Turns the first SIGTERM/SIGINT into a stop request; a second one exits at once (exit 3);
    once what ran has ended (``ended``), none changes the exit code any more.

    Exiting at once leaves the execution running in the repository, as a kill would: the lease
    runs out and ``recover`` (or a restart) marks it FAILED.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._flag = threading.Event()
        self._previous: dict[int, Any] = {}
        self._ended = False

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self._ended:
            return  # the outcome is recorded: the exit code follows it, not the signal
        if self._flag.is_set():
            # Exit 3, like the stop the first signal asked for: a shell's 128+signal is no code
            # of batchline's, and a restart after the lease resumes the job all the same.
            name = signal.Signals(signum).name
            os.write(
                2,
                f"batchline: error: second {name}: exiting without waiting for the job; it is "
                "recovered when its heartbeat lease runs out, then restart resumes it\n".encode(),
            )
            os._exit(output.EXIT_STOPPED)
        self.received = signum
        self._flag.set()

    @contextmanager
    def installed(self) -> Iterator[GracefulStop]:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            self.restore()

    def ended(self) -> None:
        """What ran has ended and its status is recorded: from now on a signal changes nothing.
        The handlers stay until the process exits (restoring the defaults would let a late
        SIGTERM kill it with 143 after a COMPLETED job), ignoring at the kernel's level: the
        interpreter puts its own handlers back to the defaults while it finalizes."""
        self._ended = True
        for sig in self._previous:
            signal.signal(sig, signal.SIG_IGN)
        self._previous.clear()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return self._flag.is_set()

    def wait(self, timeout: float) -> bool:
        return self._flag.wait(timeout)


def stop_quietly(engine: Engine, execution_id: int) -> None:
    """Request a stop; an execution that already ended needs none."""
    with suppress(JobExecutionNotRunning):
        engine.stop(execution_id)


def run_in_foreground(st: State, job: Job, launch: Callable[[], JobHandle]) -> NoReturn:
    """Launch, follow to the end, print the outcome, exit with the status's code."""
    engine = st.engine()
    reporter = ProgressReporter(st.console, live=st.progress)
    reporter.attach(job)
    try:
        with GracefulStop().installed() as stopper:
            handle = launch()
            log.info("job %s: execution %d launched", job.name, handle.execution_id)
            with reporter:
                execution = _follow(engine, handle, stopper)
            stopper.ended()
    finally:
        reporter.detach(job)
    print_outcome(st, engine.get_execution(execution.id))
    raise click.exceptions.Exit(output.exit_code_for(execution.status))


def _follow(engine: Engine, handle: JobHandle, stopper: GracefulStop) -> JobExecution:
    """Wait in short slices, so a signal's stop request goes out within a fraction of a second."""
    sent = False
    while True:
        try:
            return handle.wait(timeout=0.2)
        except TimeoutError:
            pass
        if stopper.requested and not sent:
            sent = True
            log.warning(
                "%s received: stopping execution %d at the next chunk boundary "
                "(send it again to exit at once)",
                signal.Signals(stopper.received or signal.SIGTERM).name,
                handle.execution_id,
            )
            stop_quietly(engine, handle.execution_id)


def print_outcome(st: State, execution: JobExecution) -> None:
    console = output.stdout_console()
    console.print(output.execution_detail(execution))
    if execution.step_executions:
        console.print(output.steps_table(execution.step_executions))
    if execution.status.value != "COMPLETED":
        message = output.summary(execution.exit_status.description, 1)
        st.console.print(
            output.literal(
                f"execution {execution.id} ended {execution.status.value}"
                + (f": {message}" if message else "")
            ),
            highlight=False,
        )


def serve_until_signal(
    engine: Engine, running: Callable[[], list[JobHandle]], stop_launching: Callable[[], None]
) -> None:
    """Run a trigger until SIGTERM/SIGINT, then launch nothing more and stop what runs.

    The running executions get stop requests and end STOPPED at their next chunk boundary;
    a second signal exits at once (their leases then run out).
    """
    stopper = GracefulStop()
    with stopper.installed():
        while not stopper.wait(0.5):
            pass
        handles = running()
        name = signal.Signals(stopper.received or signal.SIGTERM).name
        log.warning(
            "%s received: launching nothing more, stopping %d execution(s)", name, len(handles)
        )
        stop_launching()
        for handle in running():
            stop_quietly(engine, handle.execution_id)
        for handle in running():
            try:
                handle.wait()
            except Exception as err:  # its own failure is recorded; shutting down goes on
                log.warning("execution %d ended with %s", handle.execution_id, err)
        stopper.ended()
