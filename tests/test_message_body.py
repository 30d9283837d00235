"""A message's body as job parameters: JSON objects only, typed like the command line's."""

from __future__ import annotations

import datetime as dt

import pytest

from batchline.errors import ParameterError
from batchline.triggers.message_body import MessageRefused, identity, parameters_of


class TestParametersOf:
    def test_json_types_and_typed_keys(self) -> None:
        """Plain keys keep the JSON value's type; NAME:TYPE converts like the command line."""
        params = parameters_of(
            b'{"region": "EU", "limit": 500, "rate": 0.5, "dry": false, '
            b'"day:date": "2026-11-28", "count:int": "7"}'
        )
        assert dict(params) == {
            "region": "EU",
            "limit": 500,
            "rate": 0.5,
            "dry": False,
            "day": dt.date(2026, 11, 28),
            "count": 7,
        }
        assert params.identifying == {}

    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            (b"{nope", "body is not JSON"),
            (b"\xff\xfe\x00", "body is not JSON"),
            (b'{"x": NaN}', "body is not JSON"),
            (b'{"x": 1e400}', "not a finite number"),
            (b"[1, 2]", "not an object"),
            (b'"text"', "not an object"),
            (b'{"x": null}', "is not a parameter value"),
            (b'{"x": {"y": 1}}', "is not a parameter value"),
            (b'{"day:date": "28.11.2026"}', "is not a date"),
            (b'{"day:date": true}', "given as text"),
            (b'{"n": 1, "n:int": "2"}', "given twice"),
            (b'{"bad name": 1}', "invalid parameter name"),
            (b'{"x": "a\\u0000b"}', "NUL"),
            (b'{"x:float": "nan"}', "not a finite number"),
            (b'{"x:float": "Infinity"}', "not a finite number"),
            (b'{"x:": "1"}', "no type after ':'"),
        ],
    )
    def test_refused(self, body: bytes, fragment: str) -> None:
        """Anything but an object of storable values is refused, saying what was wrong."""
        with pytest.raises((MessageRefused, ParameterError), match=fragment):
            parameters_of(body)


class TestIdentity:
    def test_message_id_or_digest(self) -> None:
        """The message_id when there is one; otherwise the same body gives the same digest."""
        assert identity("m-1", b"{}") == "m-1"
        assert identity(None, b"{}") == identity("", b"{}") != identity(None, b"{ }")
        assert identity(None, b"{}").startswith("sha256:")
