"""Stage 5, replay: archived changes re-fed to any Lambda (or Kinesis, SQS, a file) in the
exact DynamoDB-stream event format, in stream order, resumable.

``selection`` (pure) says what to replay, ``source`` reads the raw zone in order,
``targets`` send, ``engine`` batches, retries, checkpoints and reports.
"""

from lake.replay.engine import (
    Failure,
    ProgressUpdate,
    ReplayOptions,
    ReplayReport,
    checkpoint_path,
    iter_batches,
    replay,
)
from lake.replay.selection import Selection, normalise_key, parse_time, read_keys_file
from lake.replay.source import Change
from lake.replay.targets import LambdaContext, Target

__all__ = [
    "Change", "Failure", "LambdaContext", "ProgressUpdate", "ReplayOptions", "ReplayReport", "Selection",
    "Target", "checkpoint_path", "iter_batches", "normalise_key", "parse_time", "read_keys_file", "replay",
]
