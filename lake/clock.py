"""Time as a dependency: the one module that reads the system clock for the code that takes one.

Code that measures an age, keeps a deadline, paces or backs off takes a :class:`Clock`
instead of calling ``time`` itself, so its tests can stop time and move it by hand
(``tests/clock.py``) instead of sleeping and hoping the machine is fast enough.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time, monotonic time, and waiting on them."""

    def now(self) -> float:
        """Wall-clock time in epoch seconds: for ages of records and timestamps in messages."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going back: for deadlines, windows and pacing."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` (> 0) pass."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Block until ``event`` is set (True) or ``timeout`` seconds have passed on this clock (False)."""
        ...


class SystemClock:
    """The clock of the machine."""

    def now(self) -> float:
        """``time.time()``."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep(seconds)``."""
        time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """``event.wait(timeout)``."""
        return event.wait(timeout)


SYSTEM_CLOCK: Clock = SystemClock()
