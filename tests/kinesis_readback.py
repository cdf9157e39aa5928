"""Test helper: read the lake's Kinesis stream back as Lambda would deliver it (every shard, in order)."""

from __future__ import annotations

import base64
from typing import Any


def read_stream(kinesis: Any, stream: str, region: str = "us-east-1",
                account: str = "123456789012") -> dict[str, list[dict[str, Any]]]:
    """All records of every shard, from TRIM_HORIZON, as Lambda Kinesis event records by shard."""
    out: dict[str, list[dict[str, Any]]] = {}
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    for shard in shards:
        sid = shard["ShardId"]
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=sid,
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        recs: list[dict[str, Any]] = []
        while it:
            resp = kinesis.get_records(ShardIterator=it, Limit=10_000)
            for r in resp["Records"]:
                recs.append({
                    "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r["PartitionKey"],
                                "sequenceNumber": r["SequenceNumber"],
                                "data": base64.b64encode(r["Data"]).decode(),
                                "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp()},
                    "eventSource": "aws:kinesis", "eventVersion": "1.0",
                    "eventID": f"{sid}:{r['SequenceNumber']}", "eventName": "aws:kinesis:record",
                    "awsRegion": region,
                    "eventSourceARN": f"arn:aws:kinesis:{region}:{account}:stream/{stream}",
                })
            if not resp["Records"] or resp.get("MillisBehindLatest", 0) == 0:
                break
            it = resp.get("NextShardIterator")
        out[sid] = recs
    return out
