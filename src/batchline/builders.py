"""Fluent JobBuilder and StepBuilder.

step = StepBuilder("load").chunk(1000).reader(rows).processor(clean).writer(save).build()
job = JobBuilder("import_trades").step(step).require("date").build()

A conditional flow (rules in batchline.flowgraph)::

    job = (
        JobBuilder("nightly")
        .start(load)
        .on("FAILED").to(report)          # the most specific pattern wins, in any order
        .on("*").to(summarise)
        .from_(report).on("*").fail()     # a restart resumes at report
        .from_(summarise).next(publish)   # summarise, then publish, then the job completes
        .build()
    )
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self

from batchline.completion import CompletionPolicy, CountOrTimeCompletion
from batchline.errors import ConfigurationError
from batchline.faults import Backoff, Classifier, ExcTypes, FaultTolerance, SkipPolicy
from batchline.flow import Flow, Split
from batchline.flowgraph import Decider, FlowSpec
from batchline.items.base import ItemStream, ReaderSpec, as_processor, as_writer
from batchline.job import Job
from batchline.model import StepExecution
from batchline.parameters import JobParameters
from batchline.steps.base import Step, StepOptions
from batchline.steps.chunk import ChunkStep
from batchline.steps.columnar import ColumnarStep
from batchline.steps.gc_freeze import FREEZE_AFTER
from batchline.steps.job_step import JobStep, ParametersSpec
from batchline.steps.partition import OnFailure, PartitionerSpec, PartitionHandler, PartitionStep
from batchline.steps.partition_threads import ThreadPartitionHandler
from batchline.steps.simple import SimpleStep
from batchline.transaction import TransactionManager


class StepBuilder:
    """Builds a simple step (``.task``) or a chunk step (``.chunk`` with reader and writer)."""

    def __init__(self, name: str) -> None:
        if not name or len(name) > 100:
            raise ConfigurationError(f"step name {name!r} must be 1 to 100 characters")
        self._name = name
        self._task: Callable[[StepExecution], Any] | None = None
        self._chunk_size: int | None = None
        self._reader: ReaderSpec | None = None
        self._processor: Any = None
        self._writer: Any = None
        self._tm: TransactionManager | None = None
        self._completion: CompletionPolicy | None = None
        self._faults = FaultTolerance()
        self._timeout: float | None = None
        self._partitioned: Callable[[StepOptions], Step] | None = None
        self._options = StepOptions()
        self._streams: list[ItemStream] = []
        self._child: tuple[Job, ParametersSpec, bool] | None = None
        self._read_ahead: bool | None = None
        self._gc_freeze: int | None = FREEZE_AFTER
        self._columnar = False

    def task(self, task: Callable[[StepExecution], Any] | Any) -> Self:
        """A simple step: a callable, or an object with ``execute(step_execution)``."""
        handler = getattr(task, "execute", None)
        self._task = handler if callable(handler) else task
        if not callable(self._task):
            raise ConfigurationError(f"step {self._name!r}: task {task!r} is not callable")
        return self

    handler = task

    def job(
        self, job: Job, *, parameters: ParametersSpec = None, allow_completed_child: bool = False
    ) -> Self:
        """A job step: run ``job`` (its own instance) as this step's work, with the parent's
        parameters or those ``parameters(step_execution)`` returns, computed once and kept in
        the step's context; a restart resumes the same child. A child instance that completed
        before fails the step (JobInstanceAlreadyComplete, as Spring's JobStep) unless
        ``allow_completed_child``, which completes the step without running anything."""
        self._child = (job, parameters, allow_completed_child)
        return self

    def chunk(self, size: int, *, seconds: float | None = None) -> Self:
        """Commit every ``size`` items, or after ``seconds`` if that comes first."""
        if not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"step {self._name!r}: chunk size must be an int >= 1")
        self._chunk_size = size
        self._completion = None if seconds is None else CountOrTimeCompletion(size, seconds)
        return self

    def columnar(self, rows: int) -> Self:
        """A columnar chunk step: each chunk is up to ``rows`` rows as one pyarrow RecordBatch,
        from a batch reader (``batchline.items.arrow``) to a writer that takes batches; the
        counters count rows (see steps/columnar.py)."""
        if not isinstance(rows, int) or rows < 1:
            raise ConfigurationError(f"step {self._name!r}: columnar rows must be an int >= 1")
        self._chunk_size = rows
        self._completion = None
        self._columnar = True
        return self

    def read_ahead(self, enabled: bool = True) -> Self:
        """Read the next chunk in a thread while this one is written and committed (or never,
        with False). By default a step does when its reader and writer say it pays: file
        readers with the database writers. Restart positions stay exact."""
        self._read_ahead = enabled
        return self

    def gc_freeze(self, enabled: bool = True, *, after: int = FREEZE_AFTER) -> Self:
        """Once the step has read ``after`` items, keep the cyclic garbage collector off the
        objects that lived before (``gc.freeze()`` at a chunk boundary, undone at the step's
        end; on by default). A chunk's thousands of items otherwise make CPython walk the whole
        process every few chunks. False leaves the GC alone; so does a step that finds objects
        frozen already."""
        if not isinstance(after, int) or after < 0:
            raise ConfigurationError(f"step {self._name!r}: gc_freeze after must be an int >= 0")
        self._gc_freeze = after if enabled else None
        return self

    def completion_policy(self, policy: CompletionPolicy) -> Self:
        """A custom rule for when a chunk is complete (see batchline.completion)."""
        self._completion = policy
        return self

    def retry(
        self,
        on: ExcTypes | type[BaseException],
        *,
        limit: int = 3,
        exclude: ExcTypes | type[BaseException] = (),
        backoff: Backoff | None = None,
    ) -> Self:
        """Retry the processor per item and the writer per chunk on these exception classes.

        ``limit`` counts retries after the first attempt: ``limit=3`` tries an item (or a
        chunk's write) up to 4 times. Spring Batch's ``retryLimit(3)`` counts attempts (3 in
        all): a port from Spring passes ``limit=retryLimit - 1``.
        """
        if limit < 1:
            raise ConfigurationError(f"step {self._name!r}: retry limit must be >= 1")
        self._faults.retryable = Classifier(on, exclude)
        self._faults.retry_limit = limit
        self._faults.backoff = backoff or Backoff.none()
        return self

    def skip(
        self,
        on: ExcTypes | type[BaseException] = (),
        *,
        limit: int | None = 10,
        exclude: ExcTypes | type[BaseException] = (),
        per_exception: dict[type[BaseException], int] | None = None,
        policy: SkipPolicy | None = None,
    ) -> Self:
        """Skip items failing with these classes, at most ``limit`` in all (None: unlimited).

        A ``policy`` narrows the decision further; the limits always apply.
        """
        if limit is not None and limit < 0:
            raise ConfigurationError(f"step {self._name!r}: skip limit must be >= 0 or None")
        if not on and policy is None:
            raise ConfigurationError(
                f"step {self._name!r}: skip needs exception classes or a policy"
            )
        self._faults.skippable = Classifier(on, exclude)
        self._faults.skip_limit = limit
        self._faults.per_exception_limits = dict(per_exception or {})
        self._faults.skip_policy = policy
        return self

    def no_rollback(self, *on: type[BaseException]) -> Self:
        """Writer errors of these classes do not roll the chunk back: the chunk commits."""
        self._faults.no_rollback = Classifier(on)
        return self

    def reprocess_on_scan(self, reprocess: bool = True) -> Self:
        """Run the processor again while scanning a failed chunk (default: reuse its outputs)."""
        self._faults.reprocess_on_scan = reprocess
        return self

    def timeout(self, seconds: float) -> Self:
        """Fail the step at the first chunk boundary after ``seconds``."""
        if seconds <= 0:
            raise ConfigurationError(f"step {self._name!r}: timeout must be > 0 seconds")
        self._timeout = seconds
        return self

    def reader(self, reader: ReaderSpec) -> Self:
        """An ItemReader, a re-iterable, or a factory ``f(step_execution)`` returning either."""
        self._reader = reader
        return self

    def processor(self, processor: Any) -> Self:
        """An ItemProcessor or a callable; returning None filters the item out."""
        self._processor = as_processor(processor)
        return self

    def writer(self, writer: Any, *, factory: bool | None = None) -> Self:
        """An ItemWriter, a callable taking (items) or (items, chunk), or a factory making a
        fresh writer per execution (and per thread partition): ``lambda step: ...`` (one
        parameter named step, step_execution or se), or any callable with ``factory=True``."""
        self._writer = as_writer(writer, factory=factory)
        return self

    def stream(self, stream: ItemStream) -> Self:
        """Open, update (before each commit) and close this object with the step, like its
        reader and writer; ``complete()`` too, if it has one, when the step completes."""
        if not isinstance(stream, ItemStream):
            raise ConfigurationError(
                f"step {self._name!r}: {stream!r} has not open, update and close"
            )
        self._streams.append(stream)
        return self

    def transaction_manager(self, manager: TransactionManager) -> Self:
        self._tm = manager
        return self

    def listener(self, listener: Any) -> Self:
        self._options.listeners.append(listener)
        return self

    def allow_start_if_complete(self, allow: bool = True) -> Self:
        self._options.allow_start_if_complete = allow
        return self

    def start_limit(self, limit: int) -> Self:
        if limit < 1:
            raise ConfigurationError(f"step {self._name!r}: start_limit must be >= 1")
        self._options.start_limit = limit
        return self

    def partition(
        self,
        worker: Step | StepBuilder,
        partitioner: PartitionerSpec,
        *,
        grid_size: int = 4,
        handler: PartitionHandler | None = None,
        aggregator: Any = None,
        on_failure: OnFailure = "stop",
    ) -> Self:
        """A partitioned step: ``worker`` runs once per partition that ``partitioner`` plans,
        on threads unless ``handler`` says otherwise (see batchline.steps.partition)."""
        built = worker.build() if isinstance(worker, StepBuilder) else worker

        def make(options: StepOptions) -> Step:
            return PartitionStep(
                self._name,
                built,
                partitioner,
                grid_size=grid_size,
                handler=handler if handler is not None else ThreadPartitionHandler(),
                aggregator=aggregator,
                on_failure=on_failure,
                options=options,
            )

        self._partitioned = make
        return self

    def build(self) -> Step:
        if self._partitioned is not None:
            if self._task is not None or self._reader is not None or self._writer is not None:
                raise ConfigurationError(
                    f"step {self._name!r} is partitioned: its task, reader and writer belong "
                    "to the worker step"
                )
            return self._partitioned(self._options)
        if self._child is not None:
            if self._task is not None or self._reader is not None or self._writer is not None:
                raise ConfigurationError(
                    f"step {self._name!r} runs job {self._child[0].name!r}: it takes no task, "
                    "reader or writer"
                )
            child, parameters, allow_completed = self._child
            return JobStep(
                self._name, child, parameters, self._options, allow_completed_child=allow_completed
            )
        if self._task is not None:
            if self._streams:
                raise ConfigurationError(
                    f"step {self._name!r}: .stream(...) goes with chunk steps, not tasks"
                )
            if self._reader is not None or self._writer is not None:
                raise ConfigurationError(
                    f"step {self._name!r} has both a task and a reader/writer; choose one"
                )
            return SimpleStep(self._name, self._task, self._options)
        missing = [
            what
            for what, value in (("reader", self._reader), ("writer", self._writer))
            if value is None
        ]
        if missing:
            raise ConfigurationError(
                f"step {self._name!r} needs a task, or a reader and a writer (missing "
                f"{' and '.join(missing)})"
            )
        if self._columnar and self._completion is not None:
            raise ConfigurationError(
                f"step {self._name!r} is columnar: its chunks are counted in rows, "
                "a completion policy does not apply"
            )
        step_class = ColumnarStep if self._columnar else ChunkStep
        return step_class(
            self._name,
            reader=self._reader,
            processor=self._processor,
            writer=self._writer,
            chunk_size=self._chunk_size or 100,
            completion=self._completion,
            transaction_manager=self._tm,
            faults=self._faults,
            timeout=self._timeout,
            options=self._options,
            streams=self._streams,
            read_ahead=self._read_ahead,
            gc_freeze=self._gc_freeze,
        )


class JobBuilder:
    """Fluent builder of a ``Job``.

    Add steps in order with ``step``, or route them by exit status with
    ``on(pattern).to(...)``, ``.end()``, ``.fail()`` and ``.stop_and_restart(...)``; run flows
    side by side with ``split``; then ``build()``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._steps: list[Step] = []
        self._listeners: list[Any] = []
        self._restartable = True
        self._required: list[str] = []
        self._validator: Callable[[JobParameters], None] | None = None
        self._timeout: float | None = None
        self._flow = FlowSpec(name)
        # A StepBuilder named twice is one step (the builder is kept: its id stays its own).
        self._built: dict[int, tuple[StepBuilder, Step]] = {}

    def timeout(self, seconds: float) -> Self:
        """Fail the job at the first chunk boundary (or step boundary) after ``seconds``."""
        if seconds <= 0:
            raise ConfigurationError(f"job {self._name!r}: timeout must be > 0 seconds")
        self._timeout = seconds
        return self

    def _node(self, node: Step | StepBuilder | Decider) -> Step | Decider:
        if isinstance(node, StepBuilder):
            return self._built.setdefault(id(node), (node, node.build()))[1]
        return node

    def step(self, step: Step | StepBuilder | Decider) -> Self:
        """The next step (or decider): after the one before it, or first (``start``, ``next``)."""
        node = self._node(step)
        if not isinstance(node, Decider):
            self._steps.append(node)
        self._flow.next(node)
        return self

    start = step
    next = step

    def from_(self, node: Step | StepBuilder | Decider | str) -> Self:
        """Go on declaring from this step or decider (an object, or the name of one declared)."""
        self._flow.from_(node if isinstance(node, str) else self._node(node))
        return self

    def on(self, pattern: str) -> Transitions:
        """A transition from the current step on exit statuses matching ``pattern`` (``*`` any
        characters, ``?`` one); finish it with ``.to``, ``.end``, ``.fail`` or
        ``.stop_and_restart``."""
        return Transitions(self, pattern)

    def split(self, *flows: Flow | Sequence[Step | StepBuilder], name: str | None = None) -> Self:
        """Run flows side by side (each a Flow or a list of steps); the job waits for all."""
        built = [
            f
            if isinstance(f, Flow)
            else [s.build() if isinstance(s, StepBuilder) else s for s in f]
            for f in flows
        ]
        split = Split(name or f"split-{len(self._steps) + 1}", built)
        self._steps.append(split)
        self._flow.next(split)
        return self

    def listener(self, listener: Any) -> Self:
        self._listeners.append(listener)
        return self

    def restartable(self, restartable: bool = True) -> Self:
        self._restartable = restartable
        return self

    def require(self, *names: str) -> Self:
        """Parameters the job cannot start without."""
        self._required.extend(names)
        return self

    def validator(self, validator: Callable[[JobParameters], None]) -> Self:
        """Called with the parameters before launch; raise ValueError to refuse them."""
        self._validator = validator
        return self

    def build(self) -> Job:
        linear = self._flow.is_linear()
        return Job(
            self._name,
            list(self._steps) if linear else self._flow.steps(),
            list(self._listeners),
            self._restartable,
            tuple(self._required),
            self._validator,
            self._timeout,
            flow=None if linear else self._flow.build(),
        )


class Transitions:
    """``JobBuilder.on(pattern)``: where the current step goes on that pattern. Each method
    returns the JobBuilder, still at the same step, so its next ``.on`` adds another."""

    def __init__(self, job: JobBuilder, pattern: str) -> None:
        self._job = job
        self._pattern = pattern

    def to(self, node: Step | StepBuilder | Decider | str) -> JobBuilder:
        """Go on to a step or decider (an object, or the name of one declared anywhere).

        Returns the job builder still on the *source* step: a following ``.on(...)`` adds
        another transition from the same step, as ``.on("A").to(x).on("B").to(y)`` does. In
        Spring Batch a chained ``.on`` after ``.to(x)`` belongs to ``x``; here write
        ``.from_(x).on(...)`` for that.
        """
        target = node if isinstance(node, str) else self._job._flow.add(self._job._node(node))
        self._job._flow.transition(self._pattern, "to", target)
        return self._job

    def end(self) -> JobBuilder:
        """The job ends COMPLETED: the instance is complete and cannot be restarted."""
        self._job._flow.transition(self._pattern, "end", None)
        return self._job

    def fail(self) -> JobBuilder:
        """The job ends FAILED; a restart resumes at this step."""
        self._job._flow.transition(self._pattern, "fail", None)
        return self._job

    def stop_and_restart(self, node: Step | StepBuilder | Decider | str) -> JobBuilder:
        """The job ends STOPPED; a restart begins at ``node``."""
        self.to(node)  # declares the node if new
        spec = self._job._flow
        assert spec.current is not None
        last = spec.transitions[spec.current].pop()
        spec.transition(self._pattern, "stop", last.target)
        return self._job
