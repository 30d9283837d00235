"""Job parameters: typed values, the canonical instance key, and JSON round trips."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchline import (
    BatchStatus,
    Engine,
    ExecutionContext,
    JobBuilder,
    JobParameter,
    JobParameters,
    ParameterError,
    StepBuilder,
)
from batchline.errors import ConfigurationError
from batchline.parameters import MAX_PARAMETERS, MAX_PARAMETERS_BYTES
from batchline.repository.filters import ExecutionQuery

names = st.from_regex(r"[a-z_][a-z0-9_.]{0,12}", fullmatch=True)
values = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.dates(),
    st.datetimes(),
)


class TestKey:
    @given(st.dictionaries(names, values, max_size=6), st.randoms())
    def test_key_ignores_order(self, params: dict[str, object], rnd: object) -> None:
        """The same identifying values in any order give the same key."""
        items = list(params.items())
        rnd.shuffle(items)  # type: ignore[attr-defined]
        assert JobParameters(dict(items)).key == JobParameters(params).key  # type: ignore[arg-type]

    def test_non_identifying_do_not_change_the_key(self) -> None:
        """Adding a non-identifying parameter keeps the instance key."""
        base = JobParameters({"date": dt.date(2026, 11, 28)})
        more = JobParameters({"date": dt.date(2026, 11, 28)}, non_identifying={"file": "a.csv"})
        assert base.key == more.key
        assert more["file"] == "a.csv"

    def test_type_is_part_of_the_key(self) -> None:
        """The int 1 and the string '1' are different instances."""
        assert JobParameters({"n": 1}).key != JobParameters({"n": "1"}).key

    def test_bool_is_not_int(self) -> None:
        """True and 1 are different instances (bool is checked before int)."""
        assert JobParameters({"n": True}).key != JobParameters({"n": 1}).key


class TestJson:
    @given(st.dictionaries(names, values, max_size=6), st.sets(names, max_size=3))
    def test_round_trip(self, params: dict[str, object], non_ident: set[str]) -> None:
        """to_json/from_json gives back equal parameters, types and identifying flags included."""
        built = JobParameters(
            {k: JobParameter(v, k not in non_ident) for k, v in params.items()}  # type: ignore[arg-type]
        )
        assert JobParameters.from_json(built.to_json()) == built


class TestParse:
    def test_typed_values(self) -> None:
        """name:type=value strings become typed values; str is the default type."""
        params = JobParameters.parse(
            ["date:date=2026-11-28", "n:int=3", "rate:float=0.5", "dry:bool=yes", "who=ann"],
            ["at:datetime=2026-11-28T03:00:00"],
        )
        assert params["date"] == dt.date(2026, 11, 28)
        assert (params["n"], params["rate"], params["dry"], params["who"]) == (3, 0.5, True, "ann")
        assert not params.parameter("at").identifying

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("date:date=2026-13-01", "parameter 'date': '2026-13-01' is not a date"),
            ("n:int=three", "parameter 'n': 'three' is not an integer"),
            ("n:decimal=1", "parameter 'n': unknown type 'decimal'"),
            ("9lives=1", "invalid parameter name '9lives'"),
            ("novalue", "expected name[:type]=value"),
            ("b:bool=maybe", "parameter 'b': 'maybe' is not true or false"),
        ],
    )
    def test_malformed(self, text: str, message: str) -> None:
        """A malformed parameter raises ParameterError naming it and what is wrong."""
        with pytest.raises(ParameterError, match=message.replace("[", r"\[")):
            JobParameters.parse([text])

    def test_given_twice(self) -> None:
        """The same name twice is an error, not a silent override."""
        with pytest.raises(ParameterError, match="given twice"):
            JobParameters.parse(["a=1"], ["a=2"])


class TestExecutionContext:
    def test_rejects_values_that_are_not_json(self) -> None:
        """A non-JSON value is refused when saved, naming its key (never pickled)."""
        context = ExecutionContext({"ok": 1})
        context["bad"] = object()
        with pytest.raises(ConfigurationError, match=r"\['bad'\]"):
            context.to_json()

    def test_dirty_only_on_change(self) -> None:
        """Setting a key to its current value does not mark the context dirty."""
        context = ExecutionContext({"a": 1})
        context["a"] = 1
        assert not context.dirty
        context["a"] = 2
        assert context.dirty


class TestFiniteNumbers:
    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
    def test_non_finite_float_refused(self, value: float) -> None:
        """NaN and +-Infinity are refused (they are not JSON), identifying or not."""
        with pytest.raises(ParameterError, match=r"'x': .* is not a finite number"):
            JobParameters({"x": value})
        with pytest.raises(ParameterError, match="not a finite number"):
            JobParameters(non_identifying={"x": value})

    @pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity", "1e999"])
    def test_non_finite_text_refused(self, text: str) -> None:
        """A command-line float that reads as NaN or Infinity is refused, naming it."""
        with pytest.raises(ParameterError, match=f"'x': '{text}' is not a finite number"):
            JobParameters.parse([f"x:float={text}"])

    def test_empty_type_refused(self) -> None:
        """'a:=1' names no type: refused, not read as the string parameter a=1."""
        with pytest.raises(ParameterError, match="'a': no type after ':'"):
            JobParameters.parse(["a:=1"])


class TestLimits:
    def test_count_limit(self) -> None:
        """More than MAX_PARAMETERS parameters are refused with the bound."""
        many = JobParameters({f"p{i}": i for i in range(MAX_PARAMETERS + 1)})
        with pytest.raises(ParameterError, match=f"at most {MAX_PARAMETERS} are allowed"):
            many.stored()
        JobParameters({f"p{i}": i for i in range(MAX_PARAMETERS)}).stored()

    def test_size_limit(self) -> None:
        """Parameters whose stored JSON passes MAX_PARAMETERS_BYTES are refused naming the
        largest; escapes count as the bytes they take."""
        with pytest.raises(ParameterError, match=r"at most 32,768 are allowed \(largest: 'big'\)"):
            JobParameters({"big": "x" * MAX_PARAMETERS_BYTES, "small": 1}).stored()
        with pytest.raises(ParameterError, match="largest: 'wide'"):
            JobParameters({"wide": "é" * (MAX_PARAMETERS_BYTES // 5)}).stored()
        assert len(JobParameters({"ok": "x" * 32_000}).stored()) <= MAX_PARAMETERS_BYTES


class TestLaunchRefusesBadParameters:
    def test_oversized_parameters_write_nothing(self, engine: Engine) -> None:
        """On every backend, a launch over the size limit is refused before anything is
        written (no instance, no execution), and a filtered query still works."""
        job = engine.register(
            JobBuilder("sized").step(StepBuilder("s").task(lambda se: None)).build()
        )
        with pytest.raises(ParameterError, match="at most 32,768"):
            engine.start(job, {"body": "x" * (70 * 1024)})
        with pytest.raises(ParameterError, match="at most 100"):
            engine.start(job, {f"p{i}": i for i in range(101)})
        assert engine.list_executions("sized") == []
        assert engine.start(job, {"body": "x" * 30_000}).status is BatchStatus.COMPLETED

    def test_non_finite_refused_and_queries_keep_working(self, engine: Engine) -> None:
        """A NaN parameter is refused on every backend, and parameter-filtered queries of
        other jobs keep answering."""
        job = engine.register(
            JobBuilder("finite").step(StepBuilder("s").task(lambda se: None)).build()
        )
        with pytest.raises(ParameterError, match="not a finite number"):
            engine.start(job, {"rate": math.nan})
        with pytest.raises(ParameterError, match="not a finite number"):
            engine.start(job, JobParameters.parse(["rate:float=inf"]))
        done = engine.start(job, {"rate": 0.5})
        found = engine.find_executions(ExecutionQuery.of(parameters={"rate": 0.5}))
        assert [e.id for e in found.items] == [done.id]
