"""The command line's operator actions in the audit, beside the console's and the API's.

The same table as the web's (``repository/audit.py``), so one page lists every action whatever
started it; the actor says where it came from and who ran it: ``cli:<os user>@<host>``. A
refused action is recorded with its one-line reason, then raised as before; a record that
fails is logged and the action's outcome stands.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from batchline.cli.state import State

if TYPE_CHECKING:
    from batchline.engine import JobHandle

log = logging.getLogger("batchline.cli")
T = TypeVar("T")


def actor() -> str:
    """``cli:<os user>@<host>``: the audit's name for whoever runs this command line."""
    from batchline.backfill.operations import who

    return f"cli:{who()}"


def record(
    st: State,
    action: str,
    target: str,
    *,
    execution_id: int | None = None,
    refused: bool = False,
    detail: str = "",
) -> None:
    from batchline.repository.audit import DONE, REFUSED, AuditLog

    try:
        bind = st.engine().repository.engine  # type: ignore[attr-defined]
        AuditLog(bind).record(
            actor(),
            action,
            target,
            job_execution_id=execution_id,
            outcome=REFUSED if refused else DONE,
            detail=detail,
        )
    except Exception as err:  # the action happened (or was refused): its record is secondary
        log.warning("audit record of %s %s failed: %s", action, target, err)


@contextmanager
def refusals(
    st: State, action: str, target: str, execution_id: int | None = None
) -> Iterator[None]:
    """Records the action refused, with the reason, when the block raises one of batchline's
    errors (a refusal); a repository out of reach is no refusal, and could not record one."""
    from batchline.errors import BatchlineError
    from batchline.repository.database import is_unreachable

    try:
        yield
    except BatchlineError as err:
        if is_unreachable(err):
            raise
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        record(st, action, target, execution_id=execution_id, refused=True, detail=reason)
        raise


def done(
    st: State, action: str, target: str, run: Callable[[], T], execution_id: int | None = None
) -> T:
    """``run()``, recorded done, or refused with the reason it raised."""
    with refusals(st, action, target, execution_id):
        result = run()
    record(st, action, target, execution_id=execution_id)
    return result


def launch(
    st: State,
    action: str,
    target: str,
    run: Callable[[], JobHandle],
    execution_id: int | None = None,
) -> Callable[[], JobHandle]:
    """``run`` (a start or restart) recorded with the execution it made, as the web does."""

    def launched() -> JobHandle:
        with refusals(st, action, target, execution_id):
            handle = run()
        made = handle.execution_id
        # In a thread of its own: on SQLite the job just launched holds the write lock for its
        # chunks nearly all the time, and the command must go on following it (a SIGTERM's
        # stop has to get out) instead of waiting behind it. Not a daemon: the interpreter
        # waits for the record before it exits.
        threading.Thread(
            target=record,
            args=(st, action, target),
            kwargs={
                "execution_id": execution_id or made,
                "detail": f"new execution {made}" if execution_id else f"execution {made}",
            },
            name=f"audit-{action}-{made}",
        ).start()
        return handle

    return launched
