"""Conditional flows: a job's steps and deciders joined by transitions on exit statuses.

A node (a step, a split or a ``Decider``) either has transitions or it has none:

- With transitions, its exit status (``ExitStatus.code``: a step listener's custom code such as
  "COMPLETED WITH SKIPS", or what a decider returned) is matched against their patterns, the most
  specific first whatever the order they were declared in: fewer ``*`` first, then fewer ``?``,
  then more literal characters, then the pattern's text (so two patterns never tie). ``*`` is
  any run of characters, ``?`` exactly one, nothing else is special. An exit status that no
  pattern matches fails the job with a message naming the node and the status.
- Without transitions, a step that FAILED fails the job; otherwise the job goes on to the node
  declared after it with ``.next``, or completes when there is none.

Whatever the transitions, a step that ended STOPPED (a stop request, a partition group's abort)
stops the job: a stop request is never routed. The flow is checked when the job is built: every
target exists, every node can be reached from the start, a decider has transitions, and no path
loops (a step runs at most once per job execution, so a loop could never end).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from batchline.errors import ConfigurationError
from batchline.status import ExitStatus

if TYPE_CHECKING:
    from batchline.model import JobExecution, StepExecution
    from batchline.steps.base import Step

Kind = Literal["to", "end", "fail", "stop"]


@dataclass(frozen=True)
class Decider:
    """A flow node that routes without doing work: ``decide(job_execution, last_step)`` returns
    the exit status to route on (a string or an ExitStatus).

    ``last_step`` is the StepExecution of the step that ran last before it (None if none did).
    Its decision is recorded with the job execution: a restart resumes at the node it chose and
    does not ask it again, unless the flow ended at the decider itself (it raised, its status
    matched no transition, ``fail()`` or ``stop_and_restart(decider)``): then it decides again.
    """

    name: str
    decide: Callable[[JobExecution, StepExecution | None], str | ExitStatus]

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 100:
            raise ConfigurationError(f"decider name {self.name!r} must be 1 to 100 characters")
        if not callable(self.decide):
            raise ConfigurationError(f"decider {self.name!r}: {self.decide!r} is not callable")


@dataclass(frozen=True)
class Transition:
    """Where a node's exit status leads: another node, or the end of the job."""

    pattern: str
    kind: Kind
    target: str | None = None  # the node, for "to" and "stop" (where a restart begins)
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        body = "".join(
            ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in self.pattern
        )
        object.__setattr__(self, "regex", re.compile(body, re.S))

    @property
    def specificity(self) -> tuple[int, int, int, str]:
        """Sort key, most specific first."""
        stars, marks = self.pattern.count("*"), self.pattern.count("?")
        literal = len(self.pattern) - stars - marks
        return (stars, marks, -literal, self.pattern)

    def matches(self, code: str) -> bool:
        return self.regex.fullmatch(code) is not None

    def describe(self) -> str:
        if self.kind == "to":
            return f"to {self.target!r}"
        if self.kind == "stop":
            return f"stop (a restart begins at {self.target!r})"
        return self.kind


@dataclass
class FlowGraph:
    """A checked flow: its nodes by name, where it starts, and how each node goes on."""

    job_name: str
    start: str
    nodes: dict[str, Step | Decider]
    transitions: dict[str, list[Transition]]  # most specific first
    successors: dict[str, str]

    def route(self, node: str, code: str) -> Transition | None:
        return next((t for t in self.transitions.get(node, ()) if t.matches(code)), None)

    def what(self, node: str) -> str:
        kind = "decider" if isinstance(self.nodes[node], Decider) else "step"
        return f"{kind} {node!r}"


class FlowSpec:
    """What a JobBuilder collects: nodes, ``.next`` successors and transitions, checked by
    ``build`` into a FlowGraph (or into a plain list of steps when nothing branches)."""

    def __init__(self, job_name: str) -> None:
        self.job_name = job_name
        self.nodes: dict[str, Step | Decider] = {}
        self.start: str | None = None
        self.current: str | None = None
        self.successors: dict[str, str] = {}
        self.transitions: dict[str, list[Transition]] = {}
        self.branched = False  # from_() used: the steps are no longer one line

    def add(self, node: Step | Decider) -> str:
        known = self.nodes.get(node.name)
        if known is not None and known is not node:
            raise ConfigurationError(
                f"job {self.job_name!r} has more than one step or decider named {node.name!r}"
            )
        self.nodes[node.name] = node
        if self.start is None:
            self.start = node.name
        return node.name

    def next(self, node: Step | Decider) -> None:
        name = self.add(node)
        previous = self.current
        if previous is not None and previous != name:
            if previous in self.successors:
                raise ConfigurationError(
                    f"job {self.job_name!r}: {self._what(previous)} already goes on to "
                    f"{self.successors[previous]!r}; use .on(pattern).to(step) to branch"
                )
            self.successors[previous] = name
        self.current = name

    def from_(self, node: Step | Decider | str) -> None:
        if isinstance(node, str):
            if node not in self.nodes:
                raise ConfigurationError(
                    f"job {self.job_name!r}: from_({node!r}) names no step or decider declared "
                    "before it"
                )
            self.current = node
        else:
            self.current = self.add(node)
        self.branched = True

    def transition(self, pattern: str, kind: Kind, target: str | None) -> None:
        if self.current is None:
            raise ConfigurationError(
                f"job {self.job_name!r}: on({pattern!r}) needs a step before it (.start(step))"
            )
        if not isinstance(pattern, str) or not pattern:
            raise ConfigurationError(
                f"job {self.job_name!r}: {self._what(self.current)} has an empty pattern"
            )
        existing = self.transitions.setdefault(self.current, [])
        if any(t.pattern == pattern for t in existing):
            raise ConfigurationError(
                f"job {self.job_name!r}: {self._what(self.current)} has two transitions on "
                f"{pattern!r}"
            )
        existing.append(Transition(pattern, kind, target))

    def steps(self) -> list[Step]:
        return [n for n in self.nodes.values() if not isinstance(n, Decider)]

    def is_linear(self) -> bool:
        """Nothing branches: the steps run in the order declared, as a plain job's do."""
        return not (
            self.transitions
            or self.branched
            or any(isinstance(n, Decider) for n in self.nodes.values())
        )

    def build(self) -> FlowGraph:
        if self.start is None:
            raise ConfigurationError(f"job {self.job_name!r} has no steps")
        for source, transitions in self.transitions.items():
            if source in self.successors:
                raise ConfigurationError(
                    f"job {self.job_name!r}: {self._what(source)} has transitions, so where it "
                    f"goes next must be one too: .on('*').to({self.successors[source]!r}) "
                    f"instead of .next({self.successors[source]!r})"
                )
            for t in transitions:
                if t.target is not None and t.target not in self.nodes:
                    raise ConfigurationError(
                        f"job {self.job_name!r}: {self._what(source)} goes {t.describe()} on "
                        f"{t.pattern!r}, and the job has no step or decider named {t.target!r}"
                    )
            transitions.sort(key=lambda t: t.specificity)
        for name, node in self.nodes.items():
            if isinstance(node, Decider) and not self.transitions.get(name):
                raise ConfigurationError(
                    f"job {self.job_name!r}: decider {name!r} has no transitions "
                    "(add .on(pattern)... after it)"
                )
        self._check_paths()
        return FlowGraph(
            self.job_name, self.start, dict(self.nodes), self.transitions, self.successors
        )

    def _exits(self, name: str) -> list[str]:
        """The nodes a node may go on to (a stop's restart target included: it runs next)."""
        out = [t.target for t in self.transitions.get(name, ()) if t.target is not None]
        if name in self.successors:
            out.append(self.successors[name])
        return out

    def _check_paths(self) -> None:
        assert self.start is not None
        # Depth-first from the start: a node met again on the current path is a loop.
        reached: set[str] = set()
        path: list[str] = []

        def visit(name: str) -> None:
            if name in path:
                loop = " -> ".join([*path[path.index(name) :], name])
                raise ConfigurationError(
                    f"job {self.job_name!r}: its flow loops ({loop}); a step runs at most once "
                    "per job execution, so that flow would have no end"
                )
            if name in reached:
                return
            reached.add(name)
            path.append(name)
            for target in self._exits(name):
                visit(target)
            path.pop()

        visit(self.start)
        unreachable = [n for n in self.nodes if n not in reached]
        if unreachable:
            raise ConfigurationError(
                f"job {self.job_name!r}: {', '.join(map(repr, unreachable))} cannot be reached "
                f"from its first step {self.start!r}"
            )

    def _what(self, name: str) -> str:
        kind = "decider" if isinstance(self.nodes.get(name), Decider) else "step"
        return f"{kind} {name!r}"
