"""Messages on RabbitMQ and Redis start jobs through ``batchline listen``, the repository on
PostgreSQL: one instance per message however often the listener is killed, a message delivered
twice starts one instance, and poison messages end in the dead-letter queue with the reason.

The listener is a real ``python -m batchline listen`` process; each test has queues of its own
and deletes them at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batchline import BatchStatus, Engine, JobExecution
from batchline.testing import eventually
from batchline.triggers.messages import ERROR_HEADER, FAILURES_HEADER
from tests.backends import fresh_database, import_extra, require_broker
from tests.jobs.message_jobs import DELAY_ENV, trade_job

pytestmark = pytest.mark.slow

kombu = import_extra("kombu", "celery")

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 4


@dataclass
class Setup:
    broker: str
    repository: str
    queue: str
    log: Path
    # Redis: kombu's bookkeeping of delivered, unacknowledged messages, under keys of this
    # test's own (the defaults are shared by every queue of the database).
    unacked: str | None

    @property
    def dead(self) -> str:
        return f"{self.queue}.dead"

    def transport_options(self) -> list[str]:
        if self.unacked is None:
            return []
        # The listener takes messages with its own consumer on Redis (redis_queue.py); these
        # go to kombu's connection, which publishes, and exercise -o.
        options = ["visibility_timeout=3", f"unacked_key={self.unacked}"]
        options += [f"unacked_index_key={self.unacked}.index"]
        options += [f"unacked_mutex_key={self.unacked}.mutex"]
        return [arg for option in options for arg in ("-o", option)]


@pytest.fixture(params=["redis", "rabbitmq"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    broker = require_broker(request.param)
    with fresh_database("postgresql", tmp_path) as url:
        tag = uuid.uuid4().hex[:8]
        unacked = f"batchline-test-unacked-{tag}" if request.param == "redis" else None
        found = Setup(broker, url, f"batchline-test-{tag}", tmp_path / "listen.log", unacked)
        try:
            yield found
        finally:
            with kombu.Connection(broker) as connection:
                channel = connection.channel()
                for name in (found.queue, found.dead):
                    kombu.Queue(name)(channel).delete()


class Listener:
    """A ``batchline listen`` process (its own process group), started again after a kill."""

    def __init__(
        self,
        setup: Setup,
        *extra: str,
        job: str = "tests.jobs.message_jobs:trade_job",
        group: tuple[str, ...] = (),
    ) -> None:
        self.setup = setup
        self.argv = [sys.executable, "-m", "batchline", "-r", setup.repository, *group]
        self.argv += ["--heartbeat-interval", "0.5", "--lease", "2", "listen", job, setup.broker]
        self.argv += ["--queue", setup.queue, "-c", str(CONCURRENCY), *extra]
        self.argv += setup.transport_options()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, delay: float = 0.0) -> None:
        out = self.setup.log.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env={**os.environ, DELAY_ENV: str(delay)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int:
        """SIGTERM, and the exit code."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def log_tail(self) -> str:
        return self.setup.log.read_text(errors="replace")[-3000:]


def publish(setup: Setup, messages: list[tuple[str | None, bytes]]) -> None:
    """(message_id or None, body) onto the test's queue, persistent, as a producer would."""
    with kombu.Connection(setup.broker) as connection:
        channel = connection.channel()
        kombu.Queue(setup.queue, durable=True)(channel).declare()
        producer = kombu.Producer(channel)
        for message_id, body in messages:
            properties = {"message_id": message_id} if message_id else {}
            producer.publish(
                body,
                exchange="",
                routing_key=setup.queue,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                **properties,
            )


def waiting(setup: Setup, queue: str) -> int:
    """Messages ready in ``queue`` plus, on Redis, those delivered and not yet acknowledged."""
    with kombu.Connection(setup.broker) as connection:
        channel = connection.channel()
        _, count, _ = kombu.Queue(queue, durable=True)(channel).queue_declare(passive=False)
        if setup.unacked is not None:
            count += channel.client.hlen(setup.unacked)
        return int(count)


def take_all(setup: Setup, queue: str) -> list[Any]:
    with kombu.Connection(setup.broker) as connection:
        channel = connection.channel()
        kombu.Queue(queue, durable=True)(channel).declare()
        taken = []
        # Not Queue.get: it raises on a letter whose compression kombu does not know.
        while (raw := channel.basic_get(queue, no_ack=True)) is not None:
            taken.append(channel.message_to_python(raw))
        return taken


def executions(engine: Engine) -> list[JobExecution]:
    return engine.list_executions("trade", limit=100_000)


def instances(engine: Engine) -> int:
    return engine.count_job_instances("trade")


def body(n: int) -> bytes:
    return json.dumps({"n": n, "book": f"B{n % 7}"}).encode()


def test_a_thousand_messages_through_two_kills(setup: Setup) -> None:
    """1,000 messages; the listener is SIGKILLed at a third and at two thirds and started
    again: 1,000 instances, one per message id, each with a COMPLETED execution once the
    executions the kills orphaned are recovered and restarted; nothing left on the queue."""
    total = 1000
    publish(setup, [(f"trade-{n}", body(n)) for n in range(total)])
    with (
        Engine(setup.repository, lease=2, heartbeat_interval=0.5) as engine,
        Listener(setup) as listener,
    ):
        engine.register(trade_job)
        listener.start()
        for share in (1, 2):
            eventually(
                lambda share=share: instances(engine) >= share * total // 3,  # type: ignore[misc]
                timeout=120,
                interval=0.2,
                message=lambda: f"{instances(engine)} instances\n{listener.log_tail()}",
            )
            listener.kill()
            listener.start()
        eventually(
            lambda: instances(engine) == total and waiting(setup, setup.queue) == 0,
            timeout=120,
            interval=0.2,
            message=lambda: (
                f"{instances(engine)} instances, {waiting(setup, setup.queue)} waiting\n"
                f"{listener.log_tail()}"
            ),
        )
        assert listener.stop() == 0
        assert waiting(setup, setup.queue) == 0 and waiting(setup, setup.dead) == 0
        if setup.broker.startswith("redis"):  # no message left in a processing list either
            import redis

            client = redis.Redis.from_url(setup.broker)
            held = [k for k in client.scan_iter(match=f"{setup.queue}.batchline-processing.*")]
            assert all(k.endswith(b".alive") or client.llen(k) == 0 for k in held), held
            client.close()

        found = executions(engine)
        ids = [str(e.parameters["message_id"]) for e in found]
        assert sorted(set(ids)) == sorted(f"trade-{n}" for n in range(total))
        assert len(found) == len({e.instance.id for e in found}) == total  # one execution each
        assert all(
            e.parameters["n"] == int(i.split("-")[1]) for e, i in zip(found, ids, strict=True)
        )
        unfinished = [e for e in found if e.status is not BatchStatus.COMPLETED]
        # Two kills orphan at most what ran at the time; SIGTERM stops at most as many.
        assert len(unfinished) <= 3 * CONCURRENCY, unfinished
        for execution in unfinished:
            if execution.status.is_running:
                engine.recover(execution.id, force=True)  # its process was SIGKILLed
            assert engine.restart(execution.id).status is BatchStatus.COMPLETED
        completed = {e.instance.id for e in executions(engine) if e.status is BatchStatus.COMPLETED}
        assert len(completed) == total
        assert instances(engine) == total


def test_poison_messages_are_dead_lettered(setup: Setup) -> None:
    """Invalid JSON, a JSON array and a parameter the job refuses each fail three times and
    land in the dead-letter queue with the reason; no instance is made of them, and the good
    messages around them all run."""
    good = [(f"good-{n}", body(n)) for n in range(20)]
    poison = [
        ("bad-json", b'{"n": 1,'),
        ("bad-array", b"[1, 2]"),
        ("bad-n", json.dumps({"n": 12345}).encode()),
    ]
    publish(setup, good[:10] + poison + good[10:])
    with Engine(setup.repository) as engine, Listener(setup) as listener:
        listener.start()
        dead = eventually(
            lambda: waiting(setup, setup.dead) == len(poison) and instances(engine) == len(good),
            timeout=60,
            interval=0.2,
            message=lambda: f"{instances(engine)} instances\n{listener.log_tail()}",
        )
        assert dead
        assert listener.stop() == 0
        letters = {m.properties["message_id"]: m for m in take_all(setup, setup.dead)}
        assert sorted(letters) == sorted(i for i, _ in poison)
        for message_id, raw in poison:
            letter = letters[message_id]
            assert letter.headers[FAILURES_HEADER] == 3
            # pyamqp hands over a UTF-8 body decoded; the bytes are the ones published.
            assert (letter.body.encode() if isinstance(letter.body, str) else letter.body) == raw
        assert "body is not JSON" in letters["bad-json"].headers[ERROR_HEADER]
        assert "not an object" in letters["bad-array"].headers[ERROR_HEADER]
        assert (
            "n must be an integer from 0 to 9999, not 12345"
            in (letters["bad-n"].headers[ERROR_HEADER])
        )
        found = executions(engine)
        assert sorted(str(e.parameters["message_id"]) for e in found) == sorted(i for i, _ in good)
        assert all(e.status is BatchStatus.COMPLETED for e in found)
        assert waiting(setup, setup.queue) == 0


def test_a_message_delivered_twice_starts_one_instance(setup: Setup) -> None:
    """The same message id twice, and an id-less body twice, give one instance each; the
    job's name comes from --jobs, the other way to name it."""
    twice = [("same-id", body(1)), ("same-id", body(1)), (None, body(2)), (None, body(2))]
    publish(setup, [*twice, ("last", body(3))])
    group = ("--jobs", "tests.jobs.message_jobs")
    with Engine(setup.repository) as engine, Listener(setup, job="trade", group=group) as listener:
        listener.start()
        eventually(
            lambda: waiting(setup, setup.queue) == 0 and "last" in ids(engine),
            timeout=60,
            interval=0.2,
            message=lambda: f"{ids(engine)}\n{listener.log_tail()}",
        )
        assert listener.stop() == 0
        found = ids(engine)
        digest = "sha256:" + hashlib.sha256(body(2)).hexdigest()
        assert sorted(found) == sorted(["same-id", digest, "last"])
        assert instances(engine) == 3


def ids(engine: Engine) -> list[str]:
    return [str(e.parameters["message_id"]) for e in executions(engine)]


def test_unstorable_parameters_are_dead_lettered(setup: Setup) -> None:
    """A NaN or infinite typed value and a body over the parameters' size limit are refused
    before anything is written, and dead-lettered with the reason; the good messages run."""
    good = [(f"good-{n}", body(n)) for n in range(3)]
    poison = [
        ("nan", json.dumps({"n": 1, "rate:float": "nan"}).encode()),
        ("inf", json.dumps({"n": 1, "rate:float": "-Infinity"}).encode()),
        ("huge", json.dumps({"n": 1, "note": "x" * 100_000}).encode()),
    ]
    publish(setup, good[:1] + poison + good[1:])
    with Engine(setup.repository) as engine, Listener(setup) as listener:
        listener.start()
        eventually(
            lambda: waiting(setup, setup.dead) == len(poison) and instances(engine) == len(good),
            timeout=60,
            interval=0.2,
            message=lambda: f"{instances(engine)} instances\n{listener.log_tail()}",
        )
        assert listener.stop() == 0
        letters = {m.properties["message_id"]: m for m in take_all(setup, setup.dead)}
        assert "not a finite number" in letters["nan"].headers[ERROR_HEADER]
        assert "not a finite number" in letters["inf"].headers[ERROR_HEADER]
        assert "at most 32,768 are allowed" in letters["huge"].headers[ERROR_HEADER]
        found = executions(engine)
        assert sorted(str(e.parameters["message_id"]) for e in found) == sorted(i for i, _ in good)


def publish_undecodable(setup: Setup) -> dict[str, str]:
    """Every kind of message the listener cannot read, onto the test's queue; returns a part
    of the reason each dead letter must carry, by a key found in its body."""
    expected: dict[str, str] = {}
    with kombu.Connection(setup.broker) as connection:
        channel = connection.channel()
        kombu.Queue(setup.queue, durable=True)(channel).declare()
        producer = kombu.Producer(channel)
        kinds = [
            ("unknown-encoding", {"content_encoding": "x-bogus"}, "'x-bogus' is unknown"),
            ("zlib-encoding", {"content_encoding": "zlib"}, "not a text encoding"),
            ("bad-compression", {"headers": {"compression": "x-nope"}}, "decompressed"),
        ]
        for key, how, reason in kinds:
            options: dict[str, Any] = {"content_encoding": "utf-8", **how}
            body = json.dumps({"n": 7, "kind": key}).encode()
            producer.publish(
                body,
                exchange="",
                routing_key=setup.queue,
                content_type="application/json",
                message_id=key,
                delivery_mode=2,
                **options,
            )
            expected[key] = reason
        if setup.unacked is not None:  # Redis: entries no kombu producer writes
            envelope = {"properties": {"message_id": "x"}, "headers": {}}
            raw = {
                "raw-text": b"raw-text, not JSON",
                "plain-json": json.dumps({"n": 7, "kind": "plain-json"}).encode(),
                "json-array": json.dumps(["json-array"]).encode(),
                "raw-encoding": json.dumps(
                    {
                        **envelope,
                        "body": '{"n": 7, "kind": "raw-encoding"}',
                        "content-encoding": "x-bogus",
                    }
                ).encode(),
                "bad-base64": json.dumps(
                    {"body": "!!bad-base64!!", "properties": {"body_encoding": "base64"}}
                ).encode(),
            }
            for key, entry in raw.items():
                channel.client.lpush(setup.queue, entry)
                expected[key] = "'x-bogus' is unknown" if key == "raw-encoding" else "kombu"
    return expected


def test_undecodable_messages_are_dead_lettered_and_the_listener_goes_on(setup: Setup) -> None:
    """Messages in an unknown or non-text content-encoding, with a compression kombu does not
    know, and on Redis raw text, plain JSON and broken envelopes, each go to the dead-letter
    queue at once, as they were, with the reason; no instance is made of them and the good
    messages behind them all run."""
    expected = publish_undecodable(setup)
    good = [(f"good-{n}", body(n)) for n in range(5)]
    publish(setup, good)
    with Engine(setup.repository) as engine, Listener(setup) as listener:
        listener.start()
        eventually(
            lambda: waiting(setup, setup.dead) == len(expected) and instances(engine) == len(good),
            timeout=60,
            interval=0.2,
            message=lambda: (
                f"{instances(engine)} instances, {waiting(setup, setup.dead)} dead\n"
                f"{listener.log_tail()}"
            ),
        )
        assert listener.stop() == 0
        letters = take_all(setup, setup.dead)
        found: dict[str, str] = {}
        for letter in letters:
            raw = letter.body.encode() if isinstance(letter.body, str) else letter.body
            key = next(k for k in expected if k.encode() in raw)
            found[key] = letter.headers[ERROR_HEADER]
            assert letter.headers[FAILURES_HEADER] == 1
        assert sorted(found) == sorted(expected)
        for key, reason in expected.items():
            assert reason in found[key], (key, found[key])
        assert sorted(ids(engine)) == sorted(i for i, _ in good)
        assert waiting(setup, setup.queue) == 0
