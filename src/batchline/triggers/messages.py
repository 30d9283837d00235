"""Start a job for each message on a RabbitMQ or Redis queue (kombu; the ``celery`` extra).

    trigger = MessageTrigger(engine, import_trades, "amqp://guest:guest@broker//", queue="trades")
    trigger.run()                          # or start() / stop() for a thread of its own

Each message starts one execution. Its body is a JSON object of job parameters
(``batchline.triggers.message_body``); its identity, the ``message_id`` property or else a
SHA-256 of the body, is the one identifying parameter it adds (``message_id`` by default), so
two messages without ids and with identical bodies are one instance. The body's parameters
travel non-identifying: a producer that sends a message again under the same id (say, with a
newer timestamp in it) names the same instance, as an idempotent consumer should.

Exactly once, by the repository: the execution is recorded (``Engine.launch``, the instance's
unique key deciding), then the message is acknowledged, then the job runs. Killed before the
acknowledgement, the broker delivers the message again and its launch finds the instance:
acknowledged, nothing started. Killed after it, the message is gone and its execution stays
STARTING or STARTED: the ordinary crash, which ``recover`` marks FAILED and ``restart`` resumes.
An instance that exists is never launched again, even if its run failed: restart that one.

A message that cannot start the job (not JSON, not an object, parameters the job refuses) is
published again to the same queue with the failure count in its ``x-batchline-failures``
header and the reason in ``x-batchline-error``, and only then acknowledged (a crash in between
duplicates it, which its identity makes harmless); at ``max_failures`` it goes to the
dead-letter queue (``<queue>.dead``) instead. A message that cannot even be read (a
content-encoding that is unknown or not a text encoding, a compression kombu cannot undo, on
Redis an entry that is not kombu's envelope) goes to the dead letters at once, as it was, with
the reason: retrying it would change nothing, and it never holds up the messages behind it.
Plain publishes, the same on both brokers: no dead-letter exchange needed. A repository
that cannot be reached is not the message's fault: the message is held, unacknowledged, and
tried again after a pause.

The consumer takes one message at a time (``prefetch``) and none while ``concurrency`` jobs run
here, reconnects when the broker goes away, and stops between messages. On Redis it takes each
message by an atomic move to a processing list of its own (``redis_queue.py``; kombu's BRPOP
loses a message to a kill at the wrong moment): a message taken by a consumer that died goes
back onto the queue once that consumer's lease (the engine's ``lease``) has run out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, wait
from typing import Any

from batchline.engine import Engine, JobHandle
from batchline.errors import ConfigurationError, JobInstanceAlreadyExists, ParameterError
from batchline.job import Job
from batchline.model import JobExecution
from batchline.parameters import JobParameter, JobParameters, ParamValue, parse_parameter
from batchline.repository.database import is_unreachable
from batchline.triggers.message_body import (
    MessageRefused,
    identity,
    parameters_of,
    undecodable,
)

log = logging.getLogger("batchline.messages")

FAILURES_HEADER = "x-batchline-failures"
ERROR_HEADER = "x-batchline-error"
# Properties a republished message keeps; user_id is left out, RabbitMQ checks it.
_KEPT = ("message_id", "correlation_id", "timestamp", "type", "app_id", "priority")


class MessageTrigger:
    """Consumes ``queue`` on the broker at ``url`` and starts ``job`` once per message."""

    def __init__(
        self,
        engine: Engine,
        job: Job | str,
        url: str,
        *,
        queue: str,
        parameter: str = "message_id",
        parameters: JobParameters | Mapping[str, ParamValue] | None = None,
        max_failures: int = 3,
        dead_letter_queue: str | None = None,
        concurrency: int = 4,
        prefetch: int = 1,
        transport_options: Mapping[str, Any] | None = None,
        retry_interval: float = 30.0,
    ) -> None:
        if max_failures < 1 or concurrency < 1 or prefetch < 1:
            raise ConfigurationError(
                "message trigger: max_failures, concurrency and prefetch must be at least 1"
            )
        try:
            from kombu import Connection
            from kombu.utils.url import maybe_sanitize_url
        except ImportError as err:
            raise ConfigurationError(
                f"message triggers need the celery extra (pip install 'batchline[celery]'): {err}"
            ) from None
        try:
            Connection(url).transport  # noqa: B018 - an unknown scheme fails here, not later
        except (KeyError, ImportError, ValueError) as err:
            where = maybe_sanitize_url(url)
            raise ConfigurationError(f"cannot listen on {where!r}: {err}") from None
        self.engine = engine
        self.job = engine.register(job) if isinstance(job, Job) else engine.registry.get(job)
        self.url = url
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue or f"{queue}.dead"
        if self.dead_letter_queue == queue:
            raise ConfigurationError(f"message trigger: {queue!r} cannot be its own dead letters")
        parse_parameter(f"{parameter}=")  # refuses a name no parameter may have
        self.parameter = parameter
        self.base = (
            parameters if isinstance(parameters, JobParameters) else JobParameters(parameters)
        )
        self.max_failures = max_failures
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.transport_options = dict(transport_options or {})
        if url.startswith(("amqp", "pyamqp")):
            # The broker confirms a republish before the original is acknowledged.
            self.transport_options.setdefault("confirm_publish", True)
        self.retry_interval = retry_interval
        self.handles: list[JobHandle] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"MessageTrigger({self.job.name!r}, queue={self.queue!r})"

    # --- running ----------------------------------------------------------------------------

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Consume until ``stop()`` (or ``until()`` is true), reconnecting when the broker is
        lost; returns between two messages, never half-way through one."""
        from kombu import Connection

        def stopped() -> bool:
            return self._stop.is_set() or (until is not None and until())

        pause = 1.0
        while not stopped():
            connection = Connection(self.url, transport_options=self.transport_options)
            broken = (*connection.connection_errors, *connection.channel_errors, OSError)
            try:
                with connection:
                    connection.ensure_connection(max_retries=1)
                    pause = 1.0
                    self._consume(connection, stopped)
            except broken as err:
                log.warning(
                    "%r: broker connection lost (%s); reconnecting in %gs", self, err, pause
                )
            except Exception:
                # A trigger keeps listening: what it holds unacknowledged is delivered again.
                log.exception("%r: consuming failed; reconnecting in %gs", self, pause)
            self._stop.wait(pause)
            pause = min(pause * 2, self.retry_interval)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="batchline-listen", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait and self._thread is not None:
            self._thread.join()

    def running(self) -> list[JobHandle]:
        with self._lock:
            self.handles = [h for h in self.handles if not h.done()]
            return list(self.handles)

    def _consume(self, connection: Any, stopped: Callable[[], bool]) -> None:
        from kombu import Consumer, Producer, Queue

        channel = connection.channel()
        queue, dead = Queue(self.queue, durable=True), Queue(self.dead_letter_queue, durable=True)
        queue(channel).declare()
        dead(channel).declare()  # a publish to a queue that does not exist is lost
        producer = Producer(channel)
        if self.url.split(":", 1)[0] in ("redis", "rediss"):
            return self._consume_redis(producer, stopped)

        def on_message(message: Any) -> None:
            self._receive(message, producer, stopped)

        def on_decode_error(message: Any, error: Exception) -> None:
            # A compression kombu cannot undo: raised from here, the message would come back
            # at the head of the queue after each reconnection, forever.
            self._receive(message, producer, stopped)

        # on_message takes the raw body: kombu decodes nothing, so it unpickles nothing.
        with Consumer(
            channel,
            [queue],
            on_message=on_message,
            on_decode_error=on_decode_error,
            prefetch_count=self.prefetch,
        ):
            log.info("%r: consuming from %s", self, connection.as_uri())
            while not stopped():
                if len(self.running()) >= self.concurrency:
                    # Take no message while the jobs it would start have to wait.
                    wait([h.future for h in self.running()], 1.0, FIRST_COMPLETED)
                    connection.heartbeat_check()
                    continue
                try:
                    connection.drain_events(timeout=1.0)
                except TimeoutError:
                    connection.heartbeat_check()

    def _consume_redis(self, producer: Any, stopped: Callable[[], bool]) -> None:
        """Redis: taken by an atomic move, not kombu's BRPOP (``redis_queue.py``), so that a
        kill never loses a message; producers and republishing stay kombu's."""
        from batchline.triggers.redis_queue import RedisQueue

        taking = RedisQueue(self.url, self.queue, self.engine.lease)
        try:
            taking.sweep()
            log.info("%r: consuming from %s", self, self.url.split("@")[-1])
            while not stopped():
                if len(self.running()) >= self.concurrency:
                    wait([h.future for h in self.running()], 1.0, FIRST_COMPLETED)
                    taking.beat()
                    continue
                message = taking.take(min(1.0, self.engine.lease / 3))
                if message is not None:
                    self._receive(message, producer, stopped)
        finally:
            taking.close()

    # --- one message ------------------------------------------------------------------------

    def _receive(self, message: Any, producer: Any, stopped: Callable[[], bool]) -> None:
        body, unreadable = _raw(message)
        if unreadable is not None:  # it will never read better: no second try
            return self._fail(message, producer, body, unreadable, unreadable=True)
        pause = 1.0
        while True:
            try:
                launched = self._record(message.properties.get("message_id"), body)
            except (MessageRefused, ParameterError) as err:
                return self._fail(message, producer, body, str(err))
            except Exception as err:
                if not is_unreachable(err):
                    log.error("%r: message failed unexpectedly", self, exc_info=True)
                    return self._fail(message, producer, body, f"{type(err).__name__}: {err}")
                log.warning("%r: job repository unavailable (%s); again in %gs", self, err, pause)
                if self._stop.wait(pause) or stopped():
                    return None  # unacknowledged: the broker delivers it again
                pause = min(pause * 2, self.retry_interval)
                continue
            try:
                message.ack()
            finally:  # recorded is recorded: it runs even if the acknowledgement is lost
                if launched is not None:
                    handle = self.engine.submit(*launched)
                    with self._lock:
                        self.handles.append(handle)
            return None

    def parameters_for(self, message_id: object, body: bytes) -> JobParameters:
        """The job parameters a message starts: the trigger's, the body's, its identity."""
        given = parameters_of(body)
        fixed = {self.parameter, *self.base.identifying}
        taken = sorted(fixed & set(given))
        if taken:
            raise MessageRefused(
                f"parameter(s) {', '.join(map(repr, taken))} may not be set by a message: "
                "the listener sets them"
            )
        ident = JobParameters({self.parameter: JobParameter(identity(message_id, body))})
        return self.base.merged(given).merged(ident)

    def _record(self, message_id: object, body: bytes) -> tuple[Job, JobExecution] | None:
        params = self.parameters_for(message_id, body)
        try:
            return self.engine.launch(self.job, params, new_instance_only=True)
        except JobInstanceAlreadyExists:
            log.info(
                "%r: message %s delivered again; its instance exists, nothing started",
                self,
                params[self.parameter],
            )
            return None

    def _fail(
        self, message: Any, producer: Any, body: bytes, reason: str, *, unreadable: bool = False
    ) -> None:
        """Publish the message again (or, at ``max_failures`` or ``unreadable``, to the dead
        letters) with the reason, then acknowledge it."""
        reason = " ".join(reason.split())[:500]
        headers = dict(message.headers) if isinstance(message.headers, dict) else {}
        if not unreadable:
            headers.pop("compression", None)  # the body was decompressed on its way here
        failures = _count(headers.get(FAILURES_HEADER)) + 1
        dead = unreadable or failures >= self.max_failures
        target = self.dead_letter_queue if dead else self.queue
        kept = _kept(message.properties)
        extra = {FAILURES_HEADER: failures, ERROR_HEADER: reason}
        content = {
            "content_type": _name(message.content_type) or "application/data",
            "content_encoding": _name(message.content_encoding) or "binary",
        }
        try:
            producer.publish(
                body,
                exchange="",
                routing_key=target,
                headers={**headers, **extra},
                delivery_mode=2,
                **content,
                **kept,
            )
        except (TypeError, ValueError, LookupError) as err:
            # What the message carried cannot be sent again as it was: its body alone, with
            # the reason (a lost connection is not caught: unacknowledged, it comes again).
            log.warning("%r: message republished without its properties (%s)", self, err)
            producer.publish(body, exchange="", routing_key=target, headers=extra, delivery_mode=2)
        message.ack()  # only now: the copy is on the broker
        if dead:
            log.error("%r: message dead-lettered to %s: %s", self, target, reason)
        else:
            log.warning(
                "%r: message failed (%d of %d): %s", self, failures, self.max_failures, reason
            )


def _raw(message: Any) -> tuple[bytes, str | None]:
    """The body's bytes as published (pyamqp hands over a body in a declared encoding
    decoded), and why it cannot be read, if it cannot."""
    refused = getattr(message, "refused", None)  # the Redis consumer's own reading
    if refused is not None:
        return message.body, str(refused)
    body = message.body
    if not isinstance(body, bytes):
        try:
            body = bytes(body.encode(message.content_encoding or "utf-8"))
        except (LookupError, ValueError) as err:
            return str(body).encode("utf-8", "surrogatepass"), f"body cannot be encoded: {err}"
    errors = getattr(message, "errors", None)  # kombu: a compression it could not undo
    if errors:
        return body, f"body cannot be decompressed: {errors[0][1]!r}"
    return body, undecodable(message.content_encoding)


def _name(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _kept(properties: object) -> dict[str, Any]:
    """The properties a republished message keeps, of the types a broker takes."""
    if not isinstance(properties, dict):
        return {}
    kept: dict[str, Any] = {}
    for key in _KEPT:
        value = properties.get(key)
        if key == "priority":
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
                kept[key] = value
        elif key == "timestamp":
            if isinstance(value, int | float) and not isinstance(value, bool):
                kept[key] = value
        elif isinstance(value, str) and value:
            kept[key] = value
    return kept


def _count(value: object) -> int:
    try:
        return max(int(str(value)), 0) if value is not None else 0
    except ValueError:
        return 0
