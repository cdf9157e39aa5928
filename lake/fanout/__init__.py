"""Fan-out stage: DynamoDB stream batches → the lake's Kinesis stream, order-safe per item.

Payload: ``{"lake": {"v": 1, "table": <t>}, "record": <the stream record, untouched>}``
(orjson), partition key ``lake.records.partition_key(table, keys)``. A record whose
payload exceeds 1 MiB goes to S3 under ``<prefix>claims/<table>/<sha256>.json`` and
Kinesis carries ``{"lake": {..., "claim": {"bucket", "key", "bytes", "sha256"}}, ...}``.
Both are declared, written and read in :mod:`lake.fanout.wire`.

Order under partial failures: each PutRecords request holds at most one record per key
and a key's next record is sent only once the previous one is in the stream, so a
failed entry is never overtaken by a later record of its key. A record that still fails
after the retries is reported as a batch item failure together with every later record
that was not put; nothing after it is sent any more. Lambda resumes at the lowest
reported sequence number, so records of *other* keys that were already put before the
give-up are put again on redelivery: the stream may then hold exact duplicates (same
eventID), never a reordering of first occurrences. The consumer dedupes by event_id
within a batch and views dedupe on ``event_id``.
"""

from lake.fanout.plan import Entry, SendPlan
from lake.fanout.publisher import FanoutOptions, FanoutResult, FaultInjectingKinesis, publish
from lake.fanout.wire import envelope

__all__ = ["Entry", "FanoutOptions", "FanoutResult", "FaultInjectingKinesis", "SendPlan", "envelope",
           "publish"]
