"""What an event source mapping is (AWS's settings, in snake case) and the counters kept for one."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from lake.errors import ConfigError

StartingPosition = Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]
_GENERIC_MODULES = frozenset({"handler", "handlers", "app", "main", "index", "lambda_function", "function"})


@dataclass(frozen=True)
class EventSourceMapping:
    """One event source mapping, with the names and defaults of AWS's (in snake case)."""

    function: str | Callable[..., Any]  # "module:function" or a callable(event, context)
    event_source_arn: str  # DynamoDB stream (or table) ARN, or Kinesis stream ARN
    batch_size: int = 100
    maximum_batching_window_s: float = 0.0
    starting_position: StartingPosition = "TRIM_HORIZON"
    starting_position_timestamp: datetime | None = None  # AT_TIMESTAMP (Kinesis)
    maximum_retry_attempts: int = -1  # -1: until the record expires, like AWS
    maximum_record_age_s: float = -1
    bisect_batch_on_function_error: bool = False
    report_batch_item_failures: bool = False  # FunctionResponseTypes=["ReportBatchItemFailures"]
    on_failure_destination: str | None = None  # SQS queue ARN or URL
    filter_criteria: tuple[str | Mapping[str, Any], ...] = ()
    timeout_s: float = 30.0
    memory_mb: int = 128
    name: str | None = None  # function_name in the context

    @property
    def function_name(self) -> str:
        """``name``, else the handler's own name (its module's for a generic ``handler:...``)."""
        if self.name:
            return self.name
        if callable(self.function):
            return str(getattr(self.function, "__name__", type(self.function).__name__))
        parts = self.function.partition(":")[0].split(".")
        while len(parts) > 1 and parts[-1] in _GENERIC_MODULES:
            parts.pop()
        return parts[-1] or "handler"

    @property
    def mapping_id(self) -> str:
        """Stable across restarts: names the checkpoint file."""
        fn = self.function if isinstance(self.function, str) else (
            f"{getattr(self.function, '__module__', '')}.{getattr(self.function, '__qualname__', '')}")
        digest = hashlib.sha256(f"{self.event_source_arn}\n{fn}\n{self.name}".encode()).hexdigest()[:10]
        return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', self.function_name)}-{digest}"

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings AWS would refuse."""
        if not 1 <= self.batch_size <= 10_000:
            raise ConfigError(f"mapping {self.function_name}: batch_size must be 1..10000")
        if self.starting_position not in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
            raise ConfigError(f"mapping {self.function_name}: unknown starting_position {self.starting_position!r}")
        if self.starting_position == "AT_TIMESTAMP" and self.starting_position_timestamp is None:
            raise ConfigError(f"mapping {self.function_name}: AT_TIMESTAMP needs starting_position_timestamp")
        if self.maximum_retry_attempts < -1 or self.timeout_s <= 0:
            raise ConfigError(f"mapping {self.function_name}: bad maximum_retry_attempts or timeout_s")


@dataclass
class Counters:
    """Counters updated under a lock by the threads of one mapping or trigger (read them freely);
    subclasses declare the counters as ``int`` fields."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to several counters at once."""
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


@dataclass
class MappingStats(Counters):
    """Counters of one mapping (read them; the runtime updates them under a lock)."""

    invocations: int = 0
    records_delivered: int = 0  # records passed to the handler, retries included
    records_succeeded: int = 0  # records whose processing the handler acknowledged
    records_filtered: int = 0  # skipped by FilterCriteria (count as processed, as AWS)
    retries: int = 0
    bisections: int = 0
    timeouts: int = 0
    function_errors: int = 0
    records_to_destination: int = 0
    destination_messages: int = 0
    records_discarded: int = 0  # failed with no destination: logged loudly, then skipped
    records_expired: int = 0  # older than MaximumRecordAgeInSeconds
    records_poison: int = 0  # records the runtime could not deliver at all (sent to the destination)
    worker_restarts: int = 0  # shard workers restarted after a crash of the runtime's own code

