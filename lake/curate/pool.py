"""The curate stage's worker pool: one per process, shared by every batch and strand of work.

Past the parse, a batch's work would run on one thread: but the parse's halves, the image
texts and the history attributes are independent, and pyarrow's reader and kernels release
the GIL. Two workers beside the caller keep two cores busy (the dev machine
and a Lambda above 1769 MB have two or more); on one core they merely take turns. Only the
calling thread submits, and pool tasks never wait on the pool, so nothing can deadlock
however many callers share it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

WORKERS = 2
POOL_MIN = 1000  # rows; below this a hand-off to the pool costs more than it saves (measured at 128)
_lock = threading.Lock()
_instance: ThreadPoolExecutor | None = None


def shared_pool() -> ThreadPoolExecutor:
    """The process's pool, started on first use (nothing runs at import time)."""
    global _instance
    with _lock:
        if _instance is None:
            _instance = ThreadPoolExecutor(WORKERS, thread_name_prefix="lake-curate")
        return _instance


def start(rows: int, fn: Callable[..., T], *args: object, **kwargs: object) -> Future[T]:
    """``fn(*args, **kwargs)`` on the pool, or right here for a small batch."""
    if rows >= POOL_MIN:
        return shared_pool().submit(fn, *args, **kwargs)
    done: Future[T] = Future()
    try:
        done.set_result(fn(*args, **kwargs))
    except Exception as e:
        done.set_exception(e)
    return done
