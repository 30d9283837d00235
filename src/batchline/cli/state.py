"""What every CLI command shares: the options of the ``batchline`` group and a lazy Engine."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.logging import RichHandler

from batchline.job import Job
from batchline.loader import register_module, resolve
from batchline.logging import attach, json_logging
from batchline.registry import JobRegistry
from batchline.terminal import printable

if TYPE_CHECKING:
    from batchline.engine import Engine


@dataclass
class State:
    repository: str
    job_modules: Sequence[str] = ()
    heartbeat_interval: float = 10.0
    lease: float = 60.0
    progress: bool = False
    connect_timeout: float | None = 10.0
    statement_timeout: float | None = 60.0
    sample_interval: float | None = 5.0
    console: Console = field(default_factory=lambda: Console(stderr=True))
    push_gateway: str | None = None
    otel: bool = False
    keep_logs: int | None = logging.INFO
    log_cap: int = 10_000
    registry: JobRegistry = field(default_factory=JobRegistry)
    _engine: Engine | None = None
    _modules_loaded: bool = False

    def load_modules(self) -> None:
        if not self._modules_loaded:
            for module in self.job_modules:
                register_module(self.registry, module)
            self._modules_loaded = True

    def job(self, reference: str) -> Job:
        self.load_modules()
        return resolve(self.registry, reference)

    def engine(self) -> Engine:
        """The Engine, created (and the repository migrated) on first use, closed on exit."""
        if self._engine is None:
            from batchline.engine import Engine  # SQLAlchemy: only for commands that need it
            from batchline.repository.sql import SqlJobRepository

            self.load_modules()
            repository = SqlJobRepository(
                self.repository,
                connect_timeout=self.connect_timeout,
                statement_timeout=self.statement_timeout,
                sample_interval=self.sample_interval,
            )
            self._engine = Engine(
                repository,
                registry=self.registry,
                heartbeat_interval=self.heartbeat_interval,
                lease=self.lease,
                observers=self.observers(),
                log_level=self.keep_logs,
                log_cap=self.log_cap,
            )
            click.get_current_context().call_on_close(self._engine.close)
        return self._engine

    def observers(self) -> list[object]:
        """The observers the options ask for; their libraries load only then."""
        found: list[object] = []
        if self.push_gateway:
            with _extra("prometheus", "--push-gateway"):
                from prometheus_client import CollectorRegistry

                from batchline.observability.prometheus import PrometheusObserver
            # A registry of its own: the push carries batchline's metrics, not the process's.
            found.append(PrometheusObserver(CollectorRegistry(), push_gateway=self.push_gateway))
        if self.otel:
            with _extra("otel", "--otel"):
                from batchline.observability.otel import OpenTelemetryObserver
            found.append(OpenTelemetryObserver())
        return found


@contextmanager
def _extra(extra: str, option: str) -> Iterator[None]:
    """A missing extra is a usage error naming what to install, not a traceback."""
    try:
        yield
    except ImportError as err:
        raise click.UsageError(
            f"{option} needs the {extra} extra (pip install 'batchline[{extra}]'): {err}"
        ) from None


def state() -> State:
    obj = click.get_current_context().find_object(State)
    if obj is None:  # a command invoked outside the group: tests, or embedding
        raise click.UsageError("batchline commands run inside the batchline group")
    return obj


class _CliFormatter(logging.Formatter):
    """Log records as printable text; an exception as one line unless -v asks for its trace."""

    def __init__(self, fmt: str, *, tracebacks: bool) -> None:
        super().__init__(fmt)
        self.tracebacks = tracebacks

    def formatException(self, ei: Any) -> str:
        if self.tracebacks:
            return super().formatException(ei)
        err = ei[1]
        first = (str(err).strip().splitlines() or [""])[0]
        return f"  ({type(err).__name__}: {first}; -v shows the traceback)"

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def configure_logging(
    verbosity: int, console: Console | None, *, json: bool = False
) -> Callable[[], None]:
    """Log to stderr: through ``console`` when a live display shares it, plain lines otherwise,
    or (``json``) one JSON object per line carrying the job, step and partition ids.

    Returns what undoes it, so that a command run in-process (CliRunner, embedding) leaves the
    ``batchline`` logger as it found it.
    """
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    handler: logging.Handler
    if json:
        undo = json_logging(level=level)
        return _and(undo, _application_logging(level, lambda: json_logging(level=level, logger="")))
    if console is not None:
        handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
        handler.setFormatter(_CliFormatter("%(message)s", tracebacks=verbosity > 0))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(
            _CliFormatter("%(asctime)s %(levelname)s %(message)s", tracebacks=verbosity > 0)
        )
    undo = attach(handler, level)
    return _and(undo, _application_logging(level, lambda: attach(handler, level, "")))


# Libraries that say at INFO what only their own debugging needs (SQLAlchemy would log every
# statement): under the CLI they speak from WARNING, unless the application set their level.
# Celery is not among them: a worker's "received" and "succeeded" lines are its operators' log.
QUIET_LIBRARIES = (
    "sqlalchemy", "alembic", "httpx", "httpcore", "urllib3", "asyncio", "kombu", "amqp",
    "apscheduler", "fsspec", "multipart", "watchfiles", "psycopg", "pymysql",
)  # fmt: skip


def _application_logging(
    level: int, attach_root: Callable[[], Callable[[], None]]
) -> Callable[[], None]:
    """The application's own loggers (a job's ``logging.getLogger(__name__)``) reach stderr at
    the CLI's level too, as in any command-line tool; unless the application configured the
    root logger itself, which is then left alone."""
    root = logging.getLogger()
    if root.handlers:
        return lambda: None
    quieted = [
        logger
        for name in QUIET_LIBRARIES
        if (logger := logging.getLogger(name)).level == logging.NOTSET
    ]
    for logger in quieted:
        logger.setLevel(max(level, logging.WARNING))
    undo_root = attach_root()
    logging.getLogger().propagate = True  # the root has nowhere to propagate; keep the flag

    def restore() -> None:
        undo_root()
        for logger in quieted:
            logger.setLevel(logging.NOTSET)

    return restore


def _and(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        second()
        first()

    return both
