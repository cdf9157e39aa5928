"""The clock the runtime and replay take: the system one, and the manual one tests drive."""

from __future__ import annotations

import threading
import time

from lake.clock import SYSTEM_CLOCK
from tests.clock import ManualClock


def test_system_clock_is_the_machine_clock() -> None:
    assert abs(SYSTEM_CLOCK.now() - time.time()) < 1
    a = SYSTEM_CLOCK.monotonic()
    SYSTEM_CLOCK.sleep(0.01)
    assert SYSTEM_CLOCK.monotonic() - a >= 0.01
    event = threading.Event()
    assert not SYSTEM_CLOCK.wait(event, 0.01)
    event.set()
    assert SYSTEM_CLOCK.wait(event, 10)


def test_manual_clock_stands_still_until_advanced() -> None:
    clock = ManualClock(start=1000.0)
    assert (clock.now(), clock.monotonic()) == (1000.0, 0.0)
    clock.advance(2.5)
    assert (clock.now(), clock.monotonic()) == (1002.5, 2.5)
    clock.sleep(1.5)  # a sleep moves the clock itself and returns at once
    assert clock.now() == 1004.0 and clock.slept == [1.5]


def test_manual_wait_ends_when_the_clock_passes_its_deadline_or_the_event_is_set() -> None:
    clock = ManualClock()
    stop = threading.Event()
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(clock.wait(stop, 3.0)))
    waiter.start()
    assert clock.until_waiting(1)
    assert clock.waiting() == [3.0]
    clock.advance(2.0)
    assert clock.waiting() == [1.0]
    waiter.join(0.05)
    assert waiter.is_alive() and results == []  # 2 of its 3 seconds have passed: still waiting
    clock.advance(1.0)
    assert clock.waiting() == []  # over, even before the thread notices
    waiter.join(5)
    assert results == [False]

    waiter = threading.Thread(target=lambda: results.append(clock.wait(stop, 3.0)))
    waiter.start()
    assert clock.until_waiting(1)
    stop.set()
    waiter.join(5)
    assert results == [False, True] and clock.monotonic() == 3.0


def test_drive_advances_while_someone_waits() -> None:
    clock = ManualClock()
    never = threading.Event()
    rounds: list[float] = []

    def backoff() -> None:
        for _ in range(3):
            clock.wait(never, 1.0)
            rounds.append(clock.monotonic())

    threading.Thread(target=backoff, daemon=True).start()
    assert clock.drive(lambda: len(rounds) == 3, step=0.5)
    assert rounds == [1.0, 2.0, 3.0]
    assert not clock.drive(lambda: False, step=0.5, timeout=0.05)
