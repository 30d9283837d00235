"""Retry and skip: which exceptions, how often, how long to wait, and who is told.

Classification is by exception class, the nearest class in the hierarchy deciding: with
``include=[OSError]`` and ``exclude=[FileNotFoundError]``, a FileNotFoundError is not retried but
a ConnectionError is. Anything not classified is fatal.

A custom SkipPolicy composes with the limits: an item is skipped only if the classes (or the
policy) allow it AND the total and per-exception limits are not exceeded. Unlike Spring Batch,
giving a policy never silently drops the limit, and ``limit=None`` means unlimited.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from batchline.errors import ConfigurationError, SkipLimitExceeded

Phase = Literal["read", "process", "write"]
ExcTypes = Iterable[type[BaseException]]


class Classifier:
    """Maps an exception to True/False by the nearest listed class in its MRO.

    A database error raised as SQLAlchemy's (``sqlalchemy.exc.IntegrityError``, as every SQL
    writer raises them on every backend) that no listed class matches is classified by the
    driver's error it wraps (``.orig``: ``psycopg.errors.DataError``...), so either class can
    be named in ``.skip``/``.retry``/``.no_rollback``.
    """

    def __init__(
        self,
        include: ExcTypes | type[BaseException] = (),
        exclude: ExcTypes | type[BaseException] = (),
    ) -> None:
        self._rules: dict[type[BaseException], bool] = {}
        for cls in _listed(include):
            self._rules[_check_exc(cls)] = True
        for cls in _listed(exclude):
            self._rules[_check_exc(cls)] = False
        self._cache: dict[type[BaseException], bool] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    def __call__(self, error: BaseException) -> bool:
        cls = type(error)
        hit = self._cache.get(cls)
        if hit is None:
            found = self._nearest(cls)
            if found is None and cls.__module__.startswith("sqlalchemy."):
                orig = getattr(error, "orig", None)
                if isinstance(orig, BaseException):
                    return bool(self._nearest(type(orig)))  # not cached: per driver class
            hit = bool(found)
            self._cache[cls] = hit
        return hit

    def _nearest(self, cls: type[BaseException]) -> bool | None:
        return next((self._rules[k] for k in cls.__mro__ if k in self._rules), None)


def _listed(classes: ExcTypes | type[BaseException]) -> ExcTypes:
    return (classes,) if isinstance(classes, type) else classes


def _check_exc(cls: Any) -> type[BaseException]:
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        raise ConfigurationError(f"{cls!r} is not an exception class")
    return cls


@dataclass(frozen=True)
class Backoff:
    """Wait before retry ``attempt`` (1-based): none, fixed, or exponential with jitter, capped."""

    initial: float = 0.0
    multiplier: float = 1.0
    maximum: float = 30.0
    jitter: float = 0.0

    @classmethod
    def none(cls) -> Backoff:
        return cls()

    @classmethod
    def fixed(cls, seconds: float) -> Backoff:
        return cls(initial=seconds, multiplier=1.0, maximum=seconds)

    @classmethod
    def exponential(
        cls,
        initial: float = 0.1,
        multiplier: float = 2.0,
        maximum: float = 30.0,
        jitter: float = 0.1,
    ) -> Backoff:
        return cls(initial, multiplier, maximum, jitter)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        if self.jitter and base:
            spread = base * self.jitter
            base += (rng or random).uniform(-spread, spread)
        return max(0.0, min(self.maximum, base))


class SkipPolicy(Protocol):
    """A custom skip decision; it narrows, never widens past, the configured limits."""

    def should_skip(self, error: BaseException, phase: Phase, skip_count: int) -> bool: ...


class RetryListener(Protocol):
    """Called once per retry of a chunk step, before the backoff wait.

    ``attempt`` counts the retries of this item or chunk from 1; ``phase`` is ``"process"`` or
    ``"write"``; ``subject`` is the item (process) or the items (write) being retried."""

    def on_retry(self, error: BaseException, attempt: int, phase: Phase, subject: Any) -> None: ...


class SkipListener(Protocol):
    """Called exactly once per skipped item, just before its chunk commits."""

    def on_skip_in_read(self, error: BaseException) -> None: ...

    def on_skip_in_process(self, item: Any, error: BaseException) -> None: ...

    def on_skip_in_write(self, item: Any, error: BaseException) -> None: ...


@dataclass
class FaultTolerance:
    """A chunk step's retry, skip and no-rollback settings."""

    retryable: Classifier = field(default_factory=Classifier)
    retry_limit: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    skippable: Classifier = field(default_factory=Classifier)
    skip_limit: int | None = 0
    per_exception_limits: Mapping[type[BaseException], int] = field(default_factory=dict)
    skip_policy: SkipPolicy | None = None
    no_rollback: Classifier = field(default_factory=Classifier)
    reprocess_on_scan: bool = False
    sleep: Callable[[float], None] = time.sleep

    def may_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether failed attempt number ``attempt`` (1-based) may be tried again."""
        return attempt <= self.retry_limit and self.retryable(error)

    def wait(self, attempt: int) -> None:
        delay = self.backoff.delay(attempt)
        if delay > 0:
            self.sleep(delay)

    def is_skippable(self, error: BaseException, phase: Phase, skip_count: int) -> bool:
        """Class (or custom policy) says skippable; limits are checked by ``check_limits``."""
        if self.skippable and not self.skippable(error):
            return False
        if self.skip_policy is not None:
            return self.skip_policy.should_skip(error, phase, skip_count)
        return bool(self.skippable)

    def check_limits(self, error: BaseException, total: int, by_class: Mapping[str, int]) -> None:
        """Raise SkipLimitExceeded if skipping ``error`` goes past a limit."""
        if self.skip_limit is not None and total > self.skip_limit:
            raise SkipLimitExceeded(
                f"skip limit {self.skip_limit} exceeded ({total} skips); last cause: "
                f"{type(error).__name__}: {error}"
            ) from error
        for cls, limit in self.per_exception_limits.items():
            if isinstance(error, cls) and by_class.get(cls.__name__, 0) > limit:
                raise SkipLimitExceeded(
                    f"skip limit {limit} for {cls.__name__} exceeded "
                    f"({by_class[cls.__name__]} skips); last cause: {type(error).__name__}: {error}"
                ) from error
