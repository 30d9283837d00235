"""batchline.testing.eventually: wait for a condition another thread makes true."""

from __future__ import annotations

import threading

import pytest

from batchline.testing import eventually


class TestEventually:
    def test_returns_the_first_true_result(self) -> None:
        """The predicate is asked again until it returns something true, which is returned."""
        answers = iter([None, 0, [], {"done": 3}])
        assert eventually(lambda: next(answers), interval=0) == {"done": 3}

    def test_sees_what_another_thread_does(self) -> None:
        """A condition set by another thread ends the wait."""
        done = threading.Event()
        threading.Timer(0.05, done.set).start()
        assert eventually(done.is_set, interval=0.01) is True

    def test_gives_up_with_the_message(self) -> None:
        """After the timeout, AssertionError carries the message and the time waited."""
        with pytest.raises(AssertionError, match=r"^no file arrived \(waited 0.05 s\)$"):
            eventually(lambda: False, timeout=0.05, interval=0.01, message="no file arrived")

    def test_message_callable_is_asked_on_giving_up(self) -> None:
        """A callable message describes the state when the wait ends, and only then."""
        calls: list[int] = []
        state = {"seen": 0}

        def describe() -> str:
            calls.append(1)
            return f"seen {state['seen']}"

        def never() -> bool:
            state["seen"] += 1
            return False

        with pytest.raises(AssertionError, match=r"^seen \d+ "):
            eventually(never, timeout=0.05, interval=0.01, message=describe)
        assert calls == [1] and state["seen"] >= 2

    def test_predicate_errors_end_the_wait(self) -> None:
        """An exception from the predicate propagates at once, not after the timeout."""

        def broken() -> bool:
            raise ValueError("child died")

        with pytest.raises(ValueError, match="child died"):
            eventually(broken, timeout=60)
