"""S3 failures are transient: reported as batch item failures (Lambda's retry point), nothing lost."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lake.aws.clients import Clients
from lake.aws.provision import ensure_bucket
from lake.errors import TransientError
from lake.settings import Settings
from lambdas import stream_archiver
from tests.conftest import load_event
from tests.events.factories import T0, event, stream_record
from tests.integration.test_archiver import quarantined, raw_objects


def redeliver_from(ev: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """What Lambda does with ReportBatchItemFailures: retry from the lowest failed sequence number."""
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    records = ev["Records"]
    start = min(i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] in failed)
    return {"Records": copy.deepcopy(records[start:])}


def test_missing_bucket_reports_every_record_then_retry_archives_all(settings: Settings, clients: Clients) -> None:
    stream_archiver.configure(settings, clients)
    try:
        ev = load_event("ddbHourBoundary.json")
        response = stream_archiver.lambda_handler(copy.deepcopy(ev), None)
        assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
            r["dynamodb"]["SequenceNumber"] for r in ev["Records"]]
        ensure_bucket(clients, settings.bucket, settings.region)  # the operator fixes it
        assert stream_archiver.lambda_handler(redeliver_from(ev, response), None) == {"batchItemFailures": []}
        lines = [rec for o in raw_objects(settings, clients).values() for _, rec in o["lines"]]
        assert sorted(r["eventID"] for r in lines) == sorted(r["eventID"] for r in ev["Records"])
    finally:
        stream_archiver.configure()


def throttle_puts_for(clients: Clients, fragment: str) -> list[str]:
    """Make S3 answer SlowDown to puts whose key contains ``fragment`` (a fault-injecting client)."""
    refused: list[str] = []

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if fragment in params.get("Key", ""):
            refused.append(params["Key"])
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                               "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject")

    clients.s3.meta.events.register("provide-client-params.s3.PutObject", refuse)
    return refused


def test_throttled_partition_fails_from_the_retry_point_without_duplicates(settings: Settings) -> None:
    healthy = Clients(settings)
    ensure_bucket(healthy, settings.bucket, settings.region)
    flaky = Clients(settings)
    refused = throttle_puts_for(flaky, "/hour=01/")
    malformed = stream_record(2, t=T0 + 3700)
    malformed["eventName"] = "UPSERT"  # to quarantine; its seq is after the throttled partition's
    # stream (= sequence) order: hour 00, hour 01 (throttled), malformed, hour 02
    ev = event(stream_record(0, t=T0), stream_record(1, t=T0 + 3600), malformed, stream_record(3, t=T0 + 7200))
    seqs = [r["dynamodb"]["SequenceNumber"] for r in ev["Records"]]

    stream_archiver.configure(settings, flaky)
    try:
        response = stream_archiver.lambda_handler(copy.deepcopy(ev), None)
        assert refused  # the hour=01 put really was refused
        # Lambda retries from the lowest failure, so everything from there on is reported and left unwritten
        assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == seqs[1:]
        archived = [r for o in raw_objects(settings, healthy).values() for _, r in o["lines"]]
        assert archived == ev["Records"][:1]
        assert quarantined(settings, healthy) == []

        stream_archiver.configure(settings, healthy)
        assert stream_archiver.lambda_handler(redeliver_from(ev, response), None) == {"batchItemFailures": []}
        archived = [r for o in raw_objects(settings, healthy).values() for _, r in o["lines"]]
        assert sorted(r["eventID"] for r in archived) == sorted(ev["Records"][i]["eventID"] for i in (0, 1, 3))
        (q,) = quarantined(settings, healthy)  # each record exactly once, archived or quarantined
        assert "eventName" in q["reason"] and q["record"] == malformed
    finally:
        stream_archiver.configure()


def test_unreportable_record_with_failing_quarantine_fails_the_invocation(settings: Settings,
                                                                          clients: Clients) -> None:
    """A record without SequenceNumber cannot be an item failure: if S3 is down, Lambda retries it all."""
    no_seq = stream_record(1)
    del no_seq["dynamodb"]["SequenceNumber"]
    stream_archiver.configure(settings, clients)  # no bucket
    try:
        with pytest.raises(TransientError, match="without SequenceNumber"):
            stream_archiver.lambda_handler(event(stream_record(0), no_seq), None)
    finally:
        stream_archiver.configure()
