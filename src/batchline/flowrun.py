"""Running a conditional flow (see flowgraph.py for its rules), and resuming it on restart.

Before each node runs, the flow records that node in the job execution's context
(``batchline.flow.at``; a restart's execution inherits the job context). A restart resumes at
that node, not at the start, so:

- a step whose failure a transition handled is not replayed (Spring Batch #2547): the flow had
  moved on, and a restart begins where it had moved to;
- after ``fail()`` the node stays recorded: the restart runs that step again from its last
  commit (a step that completed is not run again: its recorded exit status routes again);
- after ``stop_and_restart(target)`` the target is recorded: the restart begins there;
- a decider's decision stands: the restart resumes at the node it chose and does not ask again
  (Spring asks again, #1287, #1472), unless the flow ended at the decider itself.

A step met again on restart that completed in an earlier execution is skipped and routed on the
exit status it recorded then.

Each node's route is recorded too (``batchline.flow.path``: the execution's id and, per node,
its name, the exit status it routed on and where that led), so the dashboard draws the path an
execution took and what its deciders decided; an inherited path of an earlier execution is
replaced by this one's.
"""

from __future__ import annotations

from batchline.errors import ConfigurationError, FlowFailure
from batchline.flowgraph import Decider, FlowGraph
from batchline.logging import log
from batchline.model import JobExecution, StepExecution
from batchline.status import BatchStatus, ExitStatus
from batchline.steps.base import StepRuntime, cause_chain, execute_step

# The node a restart resumes at, and the last step that ran (what a decider resumed at gets).
AT_KEY = "batchline.flow.at"
LAST_KEY = "batchline.flow.last"
# The route this execution took: {"execution": id, "steps": [[node, code, kind, target], ...]}.
PATH_KEY = "batchline.flow.path"

Outcome = tuple[BatchStatus, ExitStatus | None]


def run_flow(graph: FlowGraph, execution: JobExecution, runtime: StepRuntime) -> Outcome:
    """Run the flow from where the instance's last execution left it; return how the job ends.

    It knows the job by its execution only: job.py calls it, never the other way round."""
    job_name = execution.job_name
    repo = runtime.repository
    ctx = execution.context
    name = str(ctx.get(AT_KEY) or graph.start)
    if name not in graph.nodes:
        raise ConfigurationError(
            f"job {job_name!r} resumes its flow at {name!r}, a step or decider it no longer has"
        )
    last: StepExecution | None = None
    if isinstance(graph.nodes[name], Decider):  # resumed at a decider: what it would have had
        last = _recorded(execution, runtime, str(ctx.get(LAST_KEY) or ""))
    while True:
        if ctx.get(AT_KEY) != name:
            ctx[AT_KEY] = name
        if ctx.dirty:
            repo.save_job_context(execution)
        node = graph.nodes[name]
        se: StepExecution | None = None
        if isinstance(node, Decider):
            try:
                decided = node.decide(execution, last)
            except Exception as exc:
                execution.failures.append(exc)
                return _failed(f"job {job_name!r} decider {name!r} raised: {cause_chain(exc)}")
            if not isinstance(decided, str | ExitStatus):
                message = (
                    f"job {job_name!r} decider {name!r} returned {decided!r}, not a status "
                    "(a str or an ExitStatus)"
                )
                execution.failures.append(FlowFailure(message))
                return _failed(message)
            code = decided.code if isinstance(decided, ExitStatus) else decided
            status = BatchStatus.COMPLETED
        else:
            reason = runtime.control.before_step(name)
            if reason is not None:
                log.info("job %s stops before step %s: %s", job_name, name, reason)
                return BatchStatus.STOPPED, None
            ran = execute_step(node, execution, runtime)
            se = ran if ran is not None else _recorded(execution, runtime, name)
            status = ran.status if ran is not None else BatchStatus.COMPLETED
            if status not in (BatchStatus.COMPLETED, BatchStatus.FAILED):
                return status, _step_ended(name, ran)  # stopped: never routed
            code = se.exit_status.code if se is not None else ExitStatus.COMPLETED_CODE
            last = se
            ctx[LAST_KEY] = name
        transitions = graph.transitions.get(name)
        if not transitions:
            if status is BatchStatus.FAILED:
                assert se is not None
                _note(execution, name, code, "fail", None)
                execution.failures.extend(se.failures)
                return status, _step_ended(name, se)
            following = graph.successors.get(name)
            if following is None:
                _note(execution, name, code, "end", None)
                return BatchStatus.COMPLETED, se.exit_status if se is not None else None
            _note(execution, name, code, "to", following)
            name = following
            continue
        where = graph.what(name)
        chosen = graph.route(name, code)
        if chosen is None:
            _note(execution, name, code, "fail", None)
            patterns = ", ".join(repr(t.pattern) for t in transitions)
            message = (
                f"job {job_name!r} {where} ended with exit status {code!r}, which none of its "
                f"transitions ({patterns}) matches"
            )
            if se is not None and status is BatchStatus.FAILED:
                execution.failures.extend(se.failures)
            execution.failures.append(FlowFailure(message))
            return _failed(message)
        log.info("job %s: %s exited %s, %s", job_name, where, code, chosen.describe())
        _note(execution, name, code, chosen.kind, chosen.target)
        if chosen.kind == "to":
            assert chosen.target is not None
            name = chosen.target
            continue
        if chosen.kind == "end":
            if se is not None and status is BatchStatus.COMPLETED:
                return BatchStatus.COMPLETED, se.exit_status
            return BatchStatus.COMPLETED, ExitStatus(
                "COMPLETED", f"flow ended after {where} exited {code!r}"
            )
        if chosen.kind == "fail":
            if se is not None:
                execution.failures.extend(se.failures)
            detail = f": {cause_chain(se.failures[0])}" if se is not None and se.failures else ""
            return _failed(
                f"job {job_name!r} failed by its flow at {where} (exit status {code!r}){detail}"
            )
        assert chosen.target is not None
        ctx[AT_KEY] = chosen.target  # saved with the job's end
        return BatchStatus.STOPPED, ExitStatus(
            "STOPPED",
            f"job {job_name!r} stopped by its flow after {where} (exit status {code!r}); "
            f"a restart begins at {chosen.target!r}",
        )


def _note(execution: JobExecution, node: str, code: str, kind: str, target: str | None) -> None:
    """Add a node's route to this execution's path (saved with the next node or the end)."""
    ctx = execution.context
    path = ctx.get(PATH_KEY)
    steps = (
        list(path["steps"])
        if isinstance(path, dict) and path.get("execution") == execution.id
        else []
    )
    steps.append([node, code, kind, target])
    ctx[PATH_KEY] = {"execution": execution.id, "steps": steps}


def _failed(message: str) -> Outcome:
    return BatchStatus.FAILED, ExitStatus("FAILED", message)


def _step_ended(name: str, se: StepExecution | None) -> ExitStatus | None:
    """The job's exit status when a step that ended it FAILED or STOPPED: the cause, not the
    step's exit description (a listener may have replaced that)."""
    if se is None:
        return None
    detail = cause_chain(se.failures[0]) if se.failures else se.exit_status.description
    return ExitStatus(se.status.value, f"step {name!r} {se.status.value}: {detail}".strip())


def _recorded(execution: JobExecution, runtime: StepRuntime, name: str) -> StepExecution | None:
    """The last execution of a step in this instance (an earlier job execution's)."""
    if not name:
        return None
    found = runtime.repository.last_step_executions(execution.instance.id, [name])
    return found.get(name)
