"""Job parameters: typed values, the canonical instance key, and JSON round trips."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchline import ExecutionContext, JobParameter, JobParameters, ParameterError
from batchline.errors import ConfigurationError

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
