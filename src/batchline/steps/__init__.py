"""Step kinds: simple (a task run once) and chunk (read, process, write per transaction)."""

from batchline.steps.base import Step, StepOptions, StepRuntime, execute_step
from batchline.steps.chunk import ChunkStep
from batchline.steps.simple import SimpleStep

__all__ = ["ChunkStep", "SimpleStep", "Step", "StepOptions", "StepRuntime", "execute_step"]
