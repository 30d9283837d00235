"""Acting on many executions at once: each is stopped, restarted or abandoned on its own, and
each refusal keeps its own reason (one execution that cannot be stopped does not undo or
block the others; there is no all-or-nothing across executions, as there is none in Spring)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, Field

from batchline.engine import Engine
from batchline.errors import BatchlineError
from batchline.web.launched import Launched
from batchline.web.problems import one_line, status_of

ACTIONS = ("stop", "restart", "abandon")
MAX_IDS = 200
MAX_ID = 2**63 - 1  # the repository's ids are 64-bit: a larger one is no execution


class Outcome(BaseModel):
    execution_id: int
    action: str
    done: bool
    reason: str = Field(default="", description="why it was refused (empty when done)")
    status: int = Field(default=200, description="the HTTP status the single action would have had")
    new_execution_id: int | None = Field(default=None, description="a restart's new execution")


class BulkRequest(BaseModel):
    action: str = Field(pattern="^(stop|restart|abandon)$")
    execution_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        min_length=1, max_length=MAX_IDS
    )


class BulkResult(BaseModel):
    items: list[Outcome]


def act(engine: Engine, launched: Launched, action: str, ids: Iterable[int]) -> list[Outcome]:
    """Apply ``action`` to each execution in turn (each id once, in the order given)."""
    outcomes = []
    for execution_id in dict.fromkeys(ids):
        if not 1 <= execution_id <= MAX_ID:  # the form's ids are not checked by a model
            reason = f"no job execution {execution_id}"
            outcomes.append(
                Outcome(
                    execution_id=execution_id, action=action, done=False, reason=reason, status=404
                )
            )
            continue
        try:
            new_id = None
            if action == "stop":
                engine.stop(execution_id)
            elif action == "abandon":
                engine.abandon(execution_id)
            elif action == "restart":
                new_id = launched.add(engine.restart_async(execution_id)).execution_id
            else:
                raise ValueError(f"no action {action!r}; use one of {', '.join(ACTIONS)}")
        except BatchlineError as err:
            code, _ = status_of(err)
            outcomes.append(
                Outcome(
                    execution_id=execution_id,
                    action=action,
                    done=False,
                    reason=one_line(err),
                    status=code,
                )
            )
            continue
        outcomes.append(
            Outcome(execution_id=execution_id, action=action, done=True, new_execution_id=new_id)
        )
    return outcomes
