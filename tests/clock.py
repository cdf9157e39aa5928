"""A clock that moves only when a test moves it (a :class:`lake.clock.Clock`).

``sleep`` moves the clock itself, so single-threaded code under test (replay's rate
limit and backoff) never blocks and the test reads back exactly how long it slept.
``wait`` blocks the calling thread until its event is set or another thread (the test)
advances the clock past its deadline, so threaded code (the local runtime's time limits,
backoffs and batching windows) does nothing time-dependent until the test says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ManualClock:
    """Starts at the real wall time (stream records carry real arrival times) and stands still."""

    def __init__(self, start: float | None = None) -> None:
        self._epoch = time.time() if start is None else start
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self._waiters: dict[object, tuple[float, threading.Event]] = {}
        self.slept: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._epoch + self._elapsed

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def sleep(self, seconds: float) -> None:
        """Moves the clock by ``seconds`` at once (and notes it in :attr:`slept`)."""
        self.slept.append(seconds)
        self.advance(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        token = object()
        with self._lock:
            deadline = self._elapsed + timeout
            self._waiters[token] = (deadline, event)
        try:
            while True:
                # Event.set cannot wake a condition of ours: look at the event often instead.
                if event.wait(0.002):
                    return True
                with self._lock:
                    if self._elapsed >= deadline:
                        return False
        finally:
            with self._lock:
                del self._waiters[token]

    def advance(self, seconds: float) -> None:
        """Move the clock forward; threads whose deadline it passes wake up."""
        with self._lock:
            self._elapsed += seconds

    def waiting(self) -> list[float]:
        """The time each blocked ``wait`` has left: waits already past their deadline or whose
        event is set count as over, even before their thread has noticed."""
        with self._lock:
            return sorted(d - self._elapsed for d, ev in self._waiters.values()
                          if d > self._elapsed and not ev.is_set())

    def until_waiting(self, count: int = 1, within: float | None = None, timeout: float = 10.0) -> bool:
        """Block (real time: the test's patience) until ``count`` threads wait on this clock,
        counting only waits with at most ``within`` seconds left if given."""
        deadline = time.monotonic() + timeout
        while len([w for w in self.waiting() if within is None or w <= within]) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def drive(self, until: Callable[[], bool], step: float, timeout: float = 10.0) -> bool:
        """Advance by ``step`` whenever some thread waits on the clock, until ``until()`` holds.

        For code whose every wait is meant to run out (time limits of a stuck handler,
        backoffs): the outcome does not depend on how fast the machine is, only how many
        steps it took. False if ``until()`` still fails after ``timeout`` real seconds.
        """
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                return False
            if self.waiting():
                self.advance(step)
            time.sleep(0.002)
        return True
