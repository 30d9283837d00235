"""Errors say what failed: illegal transitions, unknown jobs and malformed parameters.

Tests that touch no database (the status machine, parameter parsing) run once; the ones that go
through an Engine run on every backend.
"""

from __future__ import annotations

import datetime as dt

import pytest

from batchline import (
    BatchStatus,
    Engine,
    IllegalTransition,
    JobBuilder,
    JobParameters,
    NoSuchExecution,
    NoSuchJob,
    ParameterError,
    StepBuilder,
)


def noop_job(name: str = "alpha") -> JobBuilder:
    return JobBuilder(name).step(StepBuilder("only").task(lambda se: None))


class TestCheckTransition:
    def test_illegal_transition_names_both_states_and_what_is_allowed(self) -> None:
        """COMPLETED -> STARTED raises IllegalTransition naming both states; COMPLETED is final."""
        with pytest.raises(IllegalTransition) as raised:
            BatchStatus.COMPLETED.check_transition(BatchStatus.STARTED)
        message = str(raised.value)
        assert "COMPLETED -> STARTED" in message
        assert "final state" in message

    def test_illegal_transition_lists_allowed_targets(self) -> None:
        """FAILED -> STARTED is refused, and the message says FAILED may become ABANDONED."""
        with pytest.raises(IllegalTransition, match="FAILED -> STARTED") as raised:
            BatchStatus.FAILED.check_transition(BatchStatus.STARTED, what="job execution 7")
        assert str(raised.value).startswith("job execution 7:")
        assert "FAILED may become ABANDONED" in str(raised.value)

    @pytest.mark.parametrize(
        ("source", "target"),
        [
            (BatchStatus.STARTING, BatchStatus.STARTED),
            (BatchStatus.STARTED, BatchStatus.STOPPING),
            (BatchStatus.STOPPING, BatchStatus.STOPPED),
            (BatchStatus.UNKNOWN, BatchStatus.FAILED),
            (BatchStatus.STOPPED, BatchStatus.ABANDONED),
        ],
    )
    def test_legal_transitions_pass(self, source: BatchStatus, target: BatchStatus) -> None:
        """The transitions of the normal, stop and recovery paths are allowed."""
        source.check_transition(target)


class TestSetStatus:
    def test_set_status_refuses_and_names_execution_and_states(self, engine: Engine) -> None:
        """Stored COMPLETED job and step executions refuse set_status, naming themselves."""
        done = engine.start(noop_job().build())
        stored = engine.get_execution(done.id)
        with pytest.raises(IllegalTransition) as raised:
            stored.set_status(BatchStatus.STARTED)
        assert f"job execution {done.id}" in str(raised.value)
        assert "COMPLETED -> STARTED" in str(raised.value)
        assert stored.status is BatchStatus.COMPLETED
        (step,) = stored.step_executions
        with pytest.raises(IllegalTransition) as raised:
            step.set_status(BatchStatus.STARTING)
        assert f"step execution only#{step.id}" in str(raised.value)
        assert "COMPLETED -> STARTING" in str(raised.value)
        assert step.status is BatchStatus.COMPLETED

    def test_abandoning_completed_execution_is_illegal(self, engine: Engine) -> None:
        """abandon() of a COMPLETED execution raises COMPLETED -> ABANDONED and changes nothing."""
        done = engine.start(noop_job().build())
        with pytest.raises(IllegalTransition, match="COMPLETED -> ABANDONED"):
            engine.abandon(done.id)
        assert engine.get_execution(done.id).status is BatchStatus.COMPLETED


class TestUnknownJob:
    def test_start_unknown_job_names_it_and_lists_known(self, engine: Engine) -> None:
        """Starting an unknown job raises NoSuchJob naming it and the known jobs; no record."""
        with pytest.raises(NoSuchJob, match=r"'gamma'.*known: none"):
            engine.start("gamma")
        engine.register(noop_job("beta").build())
        engine.register(noop_job("alpha").build())
        with pytest.raises(NoSuchJob) as raised:
            engine.start("gamma", {"date": dt.date(2026, 1, 1)})
        message = str(raised.value)
        assert "'gamma'" in message
        assert "alpha, beta" in message
        assert engine.list_executions() == []

    def test_restart_unknown_execution_names_it(self, engine: Engine) -> None:
        """Restarting an execution id or a job name the repository lacks names what is missing."""
        with pytest.raises(NoSuchExecution, match="12345"):
            engine.restart(12345)
        with pytest.raises(NoSuchExecution, match="'gamma'"):
            engine.restart(job_name="gamma")


class TestParse:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("date:date=2026-13-01", ["'date'", "'2026-13-01'", "YYYY-MM-DD"]),
            ("when:datetime=noon", ["'when'", "'noon'", "datetime"]),
            ("count:int=ten", ["'count'", "'ten'", "integer"]),
            ("ratio:float=1,5", ["'ratio'", "'1,5'", "number"]),
            ("flag:bool=maybe", ["'flag'", "'maybe'", "true or false"]),
            ("count:long=5", ["'count'", "unknown type 'long'", "str, int, float"]),
            ("1st=x", ["'1st'", "invalid parameter name"]),
            ("my date=2026-01-01", ["'my date'", "invalid parameter name"]),
            ("=x", ["''", "invalid parameter name"]),
            ("date", ["'date'", "name[:type]=value"]),
        ],
    )
    def test_malformed_parameter_is_named(self, text: str, expected: list[str]) -> None:
        """A malformed name[:type]=value raises ParameterError naming the parameter and fault."""
        with pytest.raises(ParameterError) as raised:
            JobParameters.parse([text])
        for fragment in expected:
            assert fragment in str(raised.value)

    def test_parameter_given_twice_is_named(self) -> None:
        """The same name twice (identifying and not) raises ParameterError naming it."""
        with pytest.raises(ParameterError, match="'date' given twice"):
            JobParameters.parse(["date:date=2026-01-01"], ["date=tomorrow"])

    def test_well_formed_parameters_parse_to_typed_values(self) -> None:
        """Typed values parse to Python values; non-identifying ones do not change the key."""
        params = JobParameters.parse(["date:date=2026-11-28", "n:int=3"], ["note=x"])
        assert dict(params) == {"date": dt.date(2026, 11, 28), "n": 3, "note": "x"}
        assert params.key == JobParameters.parse(["n:int=3", "date:date=2026-11-28"]).key

    def test_unsupported_value_type_is_named(self) -> None:
        """A value of an unsupported Python type raises ParameterError naming the parameter."""
        with pytest.raises(ParameterError, match=r"parameter 'ids'.*unsupported.*list"):
            JobParameters({"ids": [1, 2]})  # type: ignore[dict-item]


class TestRequiredParameters:
    def test_missing_required_parameter_is_named_and_nothing_recorded(self, engine: Engine) -> None:
        """A missing required parameter raises ParameterError naming job and parameter."""
        job = engine.register(noop_job("needs_date").require("date", "region").build())
        with pytest.raises(ParameterError) as raised:
            engine.start(job, {"region": "eu"})
        message = str(raised.value)
        assert "'needs_date'" in message
        assert "date" in message
        assert "region" not in message
        assert engine.list_executions() == []
        assert engine.start(job, {"region": "eu", "date": dt.date(2026, 1, 1)}).status is (
            BatchStatus.COMPLETED
        )

    def test_validator_value_error_becomes_parameter_error(self, engine: Engine) -> None:
        """A validator's ValueError becomes ParameterError naming the job; nothing is recorded."""

        def positive(params: JobParameters) -> None:
            n = params["n"]
            if not isinstance(n, int) or n <= 0:
                raise ValueError(f"parameter 'n' must be positive, got {n}")

        job = engine.register(noop_job("checked").validator(positive).build())
        with pytest.raises(ParameterError, match=r"job 'checked': parameter 'n' must be positive"):
            engine.start(job, {"n": -1})
        assert engine.list_executions() == []
