"""The manager's whole process killed with SIGKILL while partitions are half done.

The jobs (tests/jobs/partition_jobs.py) run in a subprocess, which these tests kill once the
partitions have committed; then they recover the dead execution and restart it here. With
partitions on threads, the restart must not even ask the partitioner; with partitions on worker
processes, the orphaned workers must stop by themselves first, and every process the pool made
(workers, the forkserver, the resource tracker) must end, busy or idle.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchline import BatchStatus, Engine, StepExecution
from batchline.steps.partition import PLAN_KEY
from batchline.testing import eventually
from tests.backends import BACKENDS, fresh_database
from tests.jobs.partition_jobs import (
    CHUNK,
    DELAY_ENV,
    GRACE_ENV,
    LEASE_ENV,
    PROCESS_JOB,
    copied,
    create_tables,
    expected,
    slow_job,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NAMES = [f"copy:{i:04d}" for i in range(4)]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend, holding the copy's tables."""
    with fresh_database(request.param, tmp_path) as found:
        with Engine(found):
            pass
        create_tables(found)
        yield found


class ProcessTree:
    """Every process found under a root while it lived, by pid and start time (pids are reused).

    Its descendants must be collected before the root dies: orphans move to another parent.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, str] = {}

    @staticmethod
    def _stat(pid: int) -> tuple[int, str, str] | None:
        """(parent pid, state, start time) from /proc, or None once it is gone."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2 :].split()  # the command may hold spaces
        return int(fields[1]), fields[0], fields[19]

    def collect(self) -> None:
        stats = {int(d): self._stat(int(d)) for d in os.listdir("/proc") if d.isdigit()}
        parents = {self.root}
        while parents:
            found = {pid: st[2] for pid, st in stats.items() if st and st[0] in parents}
            for pid, start in found.items():
                self.seen.setdefault(pid, start)
            parents = set(found) - parents

    def alive(self) -> dict[int, str]:
        """Those still running (a zombie has ended), with their command lines."""
        left = {}
        for pid, start in self.seen.items():
            st = self._stat(pid)
            if st and st[1] not in "ZX" and st[2] == start:
                try:
                    left[pid] = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:90]
                except OSError:
                    continue
        return left

    def wait_all_ended(self, seconds: float) -> None:
        eventually(
            lambda: not self.alive(),
            timeout=seconds,
            interval=0.05,
            message=lambda: f"processes outlived their manager: {self.alive()}",
        )

    def kill_left(self) -> None:
        for pid in self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def partitions_of(engine: Engine, job_name: str) -> tuple[int, dict[str, StepExecution]] | None:
    found = engine.list_executions(job_name, limit=1)
    if not found:
        return None
    steps = engine.step_executions(found[0].id)
    return found[0].id, {s.step_name: s for s in steps if ":" in s.step_name}


def all_committed(
    engine: Engine, job_name: str, count: int, child: subprocess.Popen[bytes], log: Path
) -> bool:
    """``count`` partitions exist and each has committed; the child must still be alive."""
    assert child.poll() is None, log.read_text()
    seen = partitions_of(engine, job_name)
    return bool(seen and len(seen[1]) == count and all(p.commit_count for p in seen[1].values()))


def test_partition_contexts_and_counters_survive_a_killed_manager(url: str, tmp_path: Path) -> None:
    """After SIGKILL, each partition's committed context and counters restart it exactly."""
    env = {**os.environ, DELAY_ENV: "0.02"}  # 2 s a partition: time to kill it half-way
    argv = [sys.executable, "-m", "tests.jobs.partition_jobs", url]
    log = tmp_path / "child.log"
    with log.open("w") as out, Engine(url) as engine:
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            eventually(
                lambda: all_committed(engine, "partition_slow_copy", 4, child, log),
                timeout=60,
                interval=0.02,
                message="not every partition committed",
            )
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        assert child.returncode == -signal.SIGKILL

        execution_id, before = partitions_of(engine, "partition_slow_copy") or (0, {})
        assert sorted(before) == NAMES
        for index, name in enumerate(NAMES):
            part = before[name]
            assert part.status is BatchStatus.STARTED  # killed: nobody recorded an end
            assert 0 < part.commit_count < 5, f"{name} was not half done: pick a longer delay"
            assert part.read_count == part.write_count == CHUNK * part.commit_count
            assert part.context["partition.min"] == 100 * index + 1
            last_key = part.context["part_source.last_key"]
            assert last_key == 100 * index + part.read_count
        # The committed rows are exactly the committed counters: data and progress together.
        assert len(copied(url)) == sum(p.write_count for p in before.values())
        plan = next(
            s.context[PLAN_KEY]
            for s in engine.step_executions(execution_id)
            if s.step_name == "copy"
        )

        engine.recover(execution_id, force=True)

        def must_not_partition(se: StepExecution) -> object:
            raise AssertionError("the restart asked the partitioner for a new plan")

        engine.register(slow_job(must_not_partition))
        second = engine.restart(execution_id)
        assert second.status is BatchStatus.COMPLETED, second.exit_status
        after = {s.step_name: s for s in engine.step_executions(second.id)}
    assert after["copy"].context[PLAN_KEY] == plan
    for name in NAMES:
        assert after[name].read_count == 100 - before[name].read_count, name
    assert after["copy"].read_count == 400 - sum(p.read_count for p in before.values())
    assert copied(url) == expected()


def test_workers_of_a_killed_manager_stop_at_their_next_chunk_and_exit(
    url: str, tmp_path: Path
) -> None:
    """Busy workers of a SIGKILLed manager stop at a chunk boundary, then every process it made
    (workers, forkserver, resource tracker) ends; the job restarts and completes."""
    env = {**os.environ, DELAY_ENV: "0.02"}
    argv = [sys.executable, "-m", "tests.jobs.partition_jobs", url, "--process"]
    log = tmp_path / "child.log"
    with log.open("w") as out, Engine(url) as engine:
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        tree = ProcessTree(child.pid)
        try:  # a pool of two workers: two partitions run at a time
            eventually(
                lambda: tree.collect() or all_committed(engine, "partition_copy", 2, child, log),
                timeout=60,
                interval=0.02,
                message="the two running partitions did not both commit",
            )
            tree.collect()
        finally:
            child.send_signal(signal.SIGKILL)  # the manager alone, not its process group
            child.wait(30)
        try:
            assert len(tree.seen) >= 4, tree.seen  # two workers, a forkserver, a tracker
            tree.wait_all_ended(30)
        finally:
            tree.kill_left()

        def settled() -> dict[str, StepExecution] | None:
            found = partitions_of(engine, "partition_copy")
            parts = found[1] if found else {}
            return parts if not any(p.status.is_running for p in parts.values()) else None

        orphaned = eventually(settled, message="the orphaned workers kept running")
        # The two running partitions stop half-way, at a chunk boundary; a partition already
        # queued to a worker starts there and stops before its first chunk.
        assert len(orphaned) >= 2
        for part in orphaned.values():
            assert part.status is BatchStatus.STOPPED, part.exit_status
            assert part.read_count < 100
        execution_id = engine.list_executions("partition_copy", limit=1)[0].id
        engine.recover(execution_id, force=True)
        engine.register(PROCESS_JOB)
        second = engine.restart(execution_id)
    assert second.status is BatchStatus.COMPLETED, second.exit_status
    assert copied(url) == expected()


def test_idle_and_stuck_workers_of_a_killed_manager_exit(url: str, tmp_path: Path) -> None:
    """With the manager SIGKILLed, an idle worker exits at once and one stuck mid-chunk exits
    after the grace period (its chunk rolls back); the forkserver and tracker follow."""
    gate = tmp_path / "gate"  # never there before the kill: copy:0003 waits before row 330
    env = {**os.environ, GRACE_ENV: "1"}
    argv = [sys.executable, "-m", "tests.jobs.partition_jobs", url, "--process"]
    argv += ["hold_at=330", f"gate={gate}"]
    log = tmp_path / "child.log"
    done = NAMES[:3]  # copy:0003 holds rows 301-400
    with log.open("w") as out, Engine(url) as engine:
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        tree = ProcessTree(child.pid)
        try:

            def at_the_gate() -> bool:  # three partitions done: one worker idle, one held
                tree.collect()
                assert child.poll() is None, log.read_text()
                parts = (partitions_of(engine, "partition_copy") or (0, {}))[1]
                finished = [parts[n].status for n in done if n in parts]
                held = parts.get("copy:0003")
                return finished == [BatchStatus.COMPLETED] * 3 and bool(held and held.commit_count)

            eventually(at_the_gate, timeout=60, interval=0.02, message="no partition at the gate")
            tree.collect()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        try:
            assert len(tree.seen) >= 4, tree.seen
            tree.wait_all_ended(30)
        finally:
            tree.kill_left()

        execution_id, parts = partitions_of(engine, "partition_copy") or (0, {})
        held = parts["copy:0003"]
        assert held.status is BatchStatus.STARTED  # ended mid-chunk: nobody recorded an end
        assert held.commit_count == 1 and held.read_count == CHUNK
        gate.touch()
        engine.recover(execution_id, force=True)
        engine.register(PROCESS_JOB)
        second = engine.restart(execution_id)
        after = {s.step_name: s for s in engine.step_executions(second.id)}
    assert second.status is BatchStatus.COMPLETED, second.exit_status
    assert sorted(n for n in after if ":" in n) == ["copy:0003"]
    assert after["copy:0003"].read_count == 100 - CHUNK
    assert copied(url) == expected()


def _committing(engine: Engine, child: subprocess.Popen[bytes], log: Path) -> bool:
    """A partition has committed and none has completed: the last one is not handed out."""
    assert child.poll() is None, log.read_text()
    seen = partitions_of(engine, "partition_copy")
    parts = seen[1].values() if seen else []
    return any(p.commit_count for p in parts) and not any(
        p.status is BatchStatus.COMPLETED for p in parts
    )


def test_a_thawed_manager_hands_its_workers_nothing_they_would_run(
    url: str, tmp_path: Path
) -> None:
    """The process-pool manager frozen (SIGSTOP) past its lease while two partitions run, its
    execution recovered by another process, then thawed (SIGCONT): the partitions it had not
    handed out yet reach its workers, which create nothing under the FAILED execution; the
    manager ends without completing and the restart completes the copy exactly."""
    lease = 2.0
    env = {**os.environ, DELAY_ENV: "0.02", LEASE_ENV: str(lease)}
    argv = [sys.executable, "-m", "tests.jobs.partition_jobs", url, "--process"]
    log = tmp_path / "child.log"
    with log.open("w") as out, Engine(url, heartbeat_interval=0.4, lease=lease) as engine:
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        tree = ProcessTree(child.pid)
        try:
            eventually(
                lambda: tree.collect() or _committing(engine, child, log),
                timeout=60,
                interval=0.02,
                message="no partition committed",
            )
            child.send_signal(signal.SIGSTOP)  # the manager alone: its workers go on
            execution_id = engine.list_executions("partition_copy", limit=1)[0].id
            time.sleep(lease + 1.0)
            [taken] = engine.recover(execution_id)  # as the restart's own recovery does
            assert taken.status is BatchStatus.FAILED
            at_takeover = {s.step_name for s in engine.step_executions(execution_id)}
            child.send_signal(signal.SIGCONT)
            assert child.wait(60) != 0, log.read_text()
            tree.wait_all_ended(30)
        finally:
            child.send_signal(signal.SIGCONT)
            child.kill()
            tree.kill_left()
        after = engine.step_executions(execution_id)
        assert {s.step_name for s in after} == at_takeover, log.read_text()[-3000:]
        assert not any(s.status.is_running for s in after)
        engine.register(PROCESS_JOB)
        second = engine.restart(execution_id)
    assert second.status is BatchStatus.COMPLETED, second.exit_status
    assert copied(url) == expected()
