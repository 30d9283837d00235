"""Stop markers: files beside an SQLite repository that say "stop" without the write lock.

A running job holds SQLite's write lock for its chunk transactions, so a stop request written
into the database may wait behind them; the job asks for the marker at every chunk boundary
instead (a stat). SQLite hands an execution id out again once its row is gone (a purge, a
recreated file), so a marker names exactly one execution: its file name carries the id, its
content the execution's creation time. A marker whose content names another execution is stale
and removed when seen; recover, abandon, an execution's end and purge remove their markers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterable

from sqlalchemy.engine import Engine


def marker_base(engine: Engine) -> str | None:
    """The markers' path prefix for an SQLite file repository; None for any other."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return f"{url.database}.stop-"


def token(execution_id: int, created: dt.datetime) -> str:
    """What a marker holds: the one execution it is for."""
    return f"{execution_id} {created.isoformat()}"


def write(base: str, execution_id: int, content: str) -> None:
    """Write the marker whole (a reader never sees it half written); an error is ignored: the
    request recorded in the database still stops the job."""
    path = f"{base}{execution_id}"
    partial = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        with open(partial, "w", encoding="utf-8") as out:
            out.write(content)
        os.replace(partial, path)


def signalled(base: str, execution_id: int, expected: Callable[[], str | None]) -> bool:
    """Whether a marker for this very execution exists. ``expected`` gives the execution's
    token (asked only when a file is there); a marker for another one is removed."""
    path = f"{base}{execution_id}"
    if not os.path.exists(path):  # every chunk boundary: a stat, nothing more
        return False
    try:
        with open(path, encoding="utf-8") as found:
            content = found.read()
    except OSError:
        return False
    if content == expected():
        return True
    clear(base, [execution_id])  # left by an execution that held this id before
    return False


def clear(base: str | None, execution_ids: Iterable[int]) -> None:
    if base is None:
        return
    for execution_id in execution_ids:
        with contextlib.suppress(OSError):
            os.unlink(f"{base}{execution_id}")
