"""ListWriter's refusal of a name that is not a string."""

from __future__ import annotations

import pytest

from batchline import ConfigurationError, ListWriter, StepExecution


def test_list_writer_given_as_a_factory_says_how_to_use_it() -> None:
    """ListWriter passed where a writer factory goes gets the StepExecution as its name: a
    clear refusal instead of context keys built from the execution's repr."""
    with pytest.raises(ConfigurationError, match="lambda step: ListWriter"):
        ListWriter(StepExecution(id=1, job_execution_id=1, step_name="s"))  # type: ignore[arg-type]
