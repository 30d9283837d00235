"""Typed job parameters and the canonical key that names a JobInstance.

Identifying parameters decide the instance: the same identifying values (whatever their order or
the non-identifying ones) give the same key. Values are str, int, float, bool, date or datetime and
round-trip through JSON with their type, never through pickle. A float must be finite (NaN and
Infinity are not JSON), and the parameters of one launch are bounded (``MAX_PARAMETERS``,
``MAX_PARAMETERS_BYTES`` of stored JSON), the same on every backend.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from batchline.errors import ParameterError

ParamValue = str | int | float | bool | dt.date | dt.datetime

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_TYPES = ("str", "int", "float", "bool", "date", "datetime")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}

# One launch's parameters, checked before anything is written. The bytes are those of the JSON
# the repository stores (ASCII: escapes counted), well under MariaDB's 64 KiB TEXT column.
MAX_PARAMETERS = 100
MAX_PARAMETERS_BYTES = 32 * 1024


def _type_of(value: object) -> str:
    # bool before int and datetime before date: each is a subclass of the other.
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, str):
        return "str"
    raise ParameterError(
        f"unsupported parameter type {type(value).__name__}; use one of {', '.join(_TYPES)}"
    )


def _convert(name: str, type_name: str, text: str) -> ParamValue:
    try:
        if type_name == "str":
            return text
        if type_name == "int":
            return int(text)
        if type_name == "float":
            number = float(text)
            if not math.isfinite(number):  # NaN and Infinity are not JSON
                raise ValueError
            return number
        if type_name == "bool":
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if type_name == "date":
            return dt.date.fromisoformat(text)
        if type_name == "datetime":
            return dt.datetime.fromisoformat(text)
    except ValueError:
        expected = {
            "int": "an integer",
            "float": "a finite number",
            "bool": "true or false",
            "date": "a date YYYY-MM-DD",
            "datetime": "a datetime YYYY-MM-DDTHH:MM[:SS][+HH:MM]",
        }[type_name]
        raise ParameterError(f"parameter {name!r}: {text!r} is not {expected}") from None
    raise ParameterError(
        f"parameter {name!r}: unknown type {type_name!r}; use one of {', '.join(_TYPES)}"
    )


@dataclass(frozen=True, slots=True)
class JobParameter:
    """One job parameter: its value, and whether it identifies the job instance.

    Attributes:
        value: a str, int, float, bool, date or datetime.
        identifying: False leaves it out of the instance's key."""

    value: ParamValue
    identifying: bool = True

    @property
    def type_name(self) -> str:
        return _type_of(self.value)

    def to_json(self) -> dict[str, Any]:
        value: Any = self.value
        if isinstance(value, dt.date):
            value = value.isoformat()
        return {"type": self.type_name, "value": value, "identifying": self.identifying}

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> JobParameter:
        type_name = str(data["type"])
        raw = data["value"]
        value = _convert(name, type_name, raw) if type_name in ("date", "datetime") else raw
        _type_of(value)
        return cls(value, bool(data.get("identifying", True)))


class JobParameters(Mapping[str, ParamValue]):
    """An immutable mapping name -> value that also knows which names identify the instance."""

    __slots__ = ("_params",)

    def __init__(
        self,
        values: Mapping[str, ParamValue | JobParameter] | None = None,
        *,
        non_identifying: Mapping[str, ParamValue] | None = None,
    ) -> None:
        params: dict[str, JobParameter] = {}
        for name, value in (values or {}).items():
            params[_check_name(name)] = (
                value if isinstance(value, JobParameter) else JobParameter(value, True)
            )
        for name, value in (non_identifying or {}).items():
            params[_check_name(name)] = JobParameter(value, False)
        for name, param in params.items():
            try:
                _type_of(param.value)
            except ParameterError as exc:
                raise ParameterError(f"parameter {name!r}: {exc}") from None
            _check_finite(name, param.value)
        self._params = dict(sorted(params.items()))

    def __getitem__(self, name: str) -> ParamValue:
        try:
            return self._params[name].value
        except KeyError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{k}={p.value!r}{'' if p.identifying else ' (non-identifying)'}"
            for k, p in self._params.items()
        )
        return f"JobParameters({inner})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobParameters) and self._params == other._params

    def __hash__(self) -> int:
        return hash(self.key)

    def parameter(self, name: str) -> JobParameter:
        return self._params[name]

    def require(self, name: str) -> ParamValue:
        """The value of a parameter the job cannot run without."""
        try:
            return self._params[name].value
        except KeyError:
            raise ParameterError(f"missing required job parameter {name!r}") from None

    @property
    def identifying(self) -> dict[str, ParamValue]:
        return {k: p.value for k, p in self._params.items() if p.identifying}

    @property
    def key(self) -> str:
        """SHA-256 of the canonical JSON of the identifying parameters: the instance's key."""
        canonical = json.dumps(
            {k: p.to_json() for k, p in self._params.items() if p.identifying},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {k: p.to_json() for k, p in self._params.items()}

    def stored(self) -> str:
        """The JSON the repository stores; ParameterError past the documented limits."""
        if len(self._params) > MAX_PARAMETERS:
            raise ParameterError(
                f"{len(self._params)} job parameters: at most {MAX_PARAMETERS} are allowed"
            )
        text = json.dumps(self.to_json(), sort_keys=True, allow_nan=False)
        if len(text) > MAX_PARAMETERS_BYTES:
            largest = max(self._params, key=lambda k: len(json.dumps(self._params[k].to_json())))
            raise ParameterError(
                f"job parameters take {len(text):,} bytes as JSON: at most "
                f"{MAX_PARAMETERS_BYTES:,} are allowed (largest: {largest!r})"
            )
        return text

    @classmethod
    def from_json(cls, data: Mapping[str, Mapping[str, Any]]) -> JobParameters:
        params = cls()
        # Read back as stored: a row written before non-finite floats were refused stays
        # readable (and can be abandoned), so no check here.
        params._params = dict(sorted((k, JobParameter.from_json(k, v)) for k, v in data.items()))
        return params

    def merged(self, other: JobParameters) -> JobParameters:
        return JobParameters({**self._params, **other._params})

    @classmethod
    def parse(
        cls, identifying: Iterable[str] = (), non_identifying: Iterable[str] = ()
    ) -> JobParameters:
        """Parse ``name[:type]=value`` strings, as given on a command line."""
        params: dict[str, ParamValue | JobParameter] = {}
        for text, ident in [(t, True) for t in identifying] + [(t, False) for t in non_identifying]:
            name, param = parse_parameter(text, identifying=ident)
            if name in params:
                raise ParameterError(f"parameter {name!r} given twice")
            params[name] = param
        return cls(params)


def _check_finite(name: str, value: ParamValue) -> None:
    # NaN and Infinity are no JSON: stored, they broke every parameter-filtered query.
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(
            f"parameter {name!r}: {value} is not a finite number (NaN and Infinity are not JSON)"
        )


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ParameterError(
            f"invalid parameter name {name!r}: use letters, digits, '_', '.', '-' "
            "and start with a letter or '_'"
        )
    return name


def parse_parameter(text: str, *, identifying: bool = True) -> tuple[str, JobParameter]:
    """``date:date=2026-11-28`` -> ("date", JobParameter(date(2026, 11, 28))); str by default."""
    head, sep, raw = text.partition("=")
    if not sep:
        raise ParameterError(f"parameter {text!r}: expected name[:type]=value")
    name, colon, type_name = head.partition(":")
    _check_name(name)
    if colon and not type_name:
        raise ParameterError(
            f"parameter {name!r}: no type after ':'; use one of {', '.join(_TYPES)}"
        )
    type_name = type_name or "str"
    if type_name not in _TYPES:
        raise ParameterError(
            f"parameter {name!r}: unknown type {type_name!r}; use one of {', '.join(_TYPES)}"
        )
    return name, JobParameter(_convert(name, type_name, raw), identifying)
