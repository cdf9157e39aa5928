"""A dead-lettered batch, as an on-failure destination message describes it. Pure: no boto3.

Lambda's stream event source mappings send the coordinates of a batch they gave up on
(AWS's documented on-failure record: ``requestContext`` with the function's ARN and the
``condition``, and ``DDBStreamBatchInfo`` or ``KinesisBatchInfo`` with the shard, the first and
last sequence numbers, the batch size and the stream's ARN). The local runtime's messages
carry the same plus ``reason`` and the full ``records`` (or a ``recordFile`` holding a record
too large for a message), so they can be re-driven from the message itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from lake.errors import MalformedRecordError

StreamKind = Literal["dynamodb", "kinesis"]
# "DDBStreamBatchInfo" is what AWS sends; "DynamoDBStreamBatchInfo" is accepted as its long form.
_INFO_KEYS: tuple[tuple[str, StreamKind], ...] = (
    ("DDBStreamBatchInfo", "dynamodb"), ("DynamoDBStreamBatchInfo", "dynamodb"), ("KinesisBatchInfo", "kinesis"),
)


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter queue: which function gave up on which records, and why."""

    function_arn: str
    condition: str
    kind: StreamKind
    stream_arn: str
    shard_id: str
    start_sequence: str
    end_sequence: str
    batch_size: int
    reason: str = ""
    records: tuple[Mapping[str, Any], ...] | None = None  # the full records, when the message carries them
    record_file: str | None = None  # a record too large for a message, kept in this file

    @property
    def function(self) -> str:
        """The function's name (``stream-archiver``, ``fanout@orders``...), from its ARN."""
        return self.function_arn.rsplit(":function:", 1)[-1].split(":", 1)[0]

    @property
    def stage(self) -> str:
        """The function's name without the local runtime's ``@table`` qualifier."""
        return self.function.split("@", 1)[0]

    def covers(self, sequence: int) -> bool:
        return int(self.start_sequence) <= sequence <= int(self.end_sequence)


def parse_message(body: str | bytes) -> DeadLetter:
    """The :class:`DeadLetter` of a message body; :class:`MalformedRecordError` if it is not one."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        import json  # the local runtime falls back to the stdlib for records nested too deep for orjson

        try:
            doc = json.loads(body)
        except ValueError as e:
            raise MalformedRecordError(f"not a JSON on-failure message: {e}") from None
    if not isinstance(doc, Mapping):
        raise MalformedRecordError("not an on-failure message (not a JSON object)")
    ctx = doc.get("requestContext")
    found = [(key, kind) for key, kind in _INFO_KEYS if isinstance(doc.get(key), Mapping)]
    if not isinstance(ctx, Mapping) or not found:
        raise MalformedRecordError("not a stream on-failure message (no requestContext or batch info)")
    key, kind = found[0]
    info = doc[key]
    try:
        records = doc.get("records")
        return DeadLetter(
            function_arn=str(ctx["functionArn"]), condition=str(ctx.get("condition", "")), kind=kind,
            stream_arn=str(info["streamArn"]), shard_id=str(info["shardId"]),
            start_sequence=str(info["startSequenceNumber"]), end_sequence=str(info["endSequenceNumber"]),
            batch_size=int(info.get("batchSize", 0)), reason=str(doc.get("reason") or ""),
            records=tuple(records) if isinstance(records, Sequence) and not isinstance(records, str) else None,
            record_file=str(doc["recordFile"]) if doc.get("recordFile") else None,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedRecordError(f"on-failure message without {e}") from None


def sequence_of(record: Mapping[str, Any]) -> str:
    """A Lambda stream record's sequence number (DynamoDB or Kinesis)."""
    if "kinesis" in record:
        return str(record["kinesis"]["sequenceNumber"])
    return str(record["dynamodb"]["SequenceNumber"])
