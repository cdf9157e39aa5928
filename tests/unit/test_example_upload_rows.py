"""upload_rows (article 000): the pure parts of its handlers and its declaration, no AWS."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any
from urllib.parse import quote_plus

import pytest

from examples.upload_rows.app import APP, RELEASE_FILTERS
from examples.upload_rows.handlers import (
    THRESHOLD,
    Upload,
    chunks,
    crossed,
    first_failure_request,
    group_id,
    is_flaky,
    log_request,
    parse_rows,
    processed_request,
    release_messages,
    uploads_from_sns,
)
from examples.upload_rows.scenario import ROUNDS, csv_text, expected
from lake.apps import QueueEvents, StreamEvents
from lake.filters import compile_filters


def sns_event(*s3_records: dict[str, Any]) -> dict[str, Any]:
    """SNS → Lambda event wrapping an S3 notification, as the article shows it."""
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:upload-rows-uploaded:1",
        "Sns": {"Type": "Notification", "MessageId": "m1", "Subject": "Amazon S3 Notification",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:upload-rows-uploaded",
                "Message": json.dumps({"Records": list(s3_records)}), "Timestamp": "2017-04-01T14:00:53.511Z"},
    }]}


def s3_record(key: str, etag: str = "abc") -> dict[str, Any]:
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "upload-rows-incoming"},
                   "object": {"key": quote_plus(key), "size": 10, "eTag": etag}}}


def image(count: int, batch: str = "b") -> dict[str, Any]:
    rows = [{"M": {"file": {"S": f"incoming/{batch}/f.csv"}, "line": {"S": str(i + 2)}}} for i in range(count)]
    return {"batch": {"S": batch}, "rows": {"L": rows}, "row_count": {"N": str(count)}}


def stream_record(old: int | None, new: int, event_id: str = "e1") -> dict[str, Any]:
    ddb: dict[str, Any] = {"Keys": {"batch": {"S": "b"}}, "NewImage": image(new),
                           "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if old is not None:
        ddb["OldImage"] = image(old)
    return {"eventID": event_id, "eventName": "INSERT" if old is None else "MODIFY",
            "eventSource": "aws:dynamodb", "dynamodb": ddb}


def test_the_key_is_unwrapped_from_sns_and_url_decoded() -> None:
    key = "incoming/echo site/scans 1+2.csv"
    uploads = uploads_from_sns(sns_event(s3_record(key, "e1"), {**s3_record("x"), "eventName": "ObjectRemoved:Delete"}))
    assert uploads == [Upload("upload-rows-incoming", key, "e1")]
    assert uploads[0].batch == "echo site"
    assert uploads_from_sns(sns_event()) == []  # S3's TestEvent-like message without Records


def test_rows_carry_their_file_and_line() -> None:
    upload = Upload("b", "incoming/a/p.csv", "e")
    rows = parse_rows(upload, "\ufeffimage,width\r\nx.jpg,640\r\ny.jpg,\r\n")
    assert rows == [{"file": "incoming/a/p.csv", "line": "2", "image": "x.jpg", "width": "640"},
                    {"file": "incoming/a/p.csv", "line": "3", "image": "y.jpg", "width": ""}]


def test_a_log_write_appends_and_counts_once_per_upload() -> None:
    upload = Upload("b", "incoming/a/p.csv", "e9")
    req = log_request("t", upload, [{"file": "f", "line": "2"}])
    assert req["Key"] == {"batch": {"S": "a"}}
    assert "list_append(if_not_exists(#rows, :none), :rows)" in req["UpdateExpression"]
    assert req["ExpressionAttributeValues"][":n"] == {"N": "1"}
    assert req["ExpressionAttributeValues"][":id"] == {"S": "incoming/a/p.csv@e9"}
    assert "NOT contains(uploads, :id)" in req["ConditionExpression"]


@pytest.mark.parametrize(("old", "new", "fires"), [
    (None, 3, False), (None, THRESHOLD, True), (None, 12, True),
    (4, 8, False), (8, 12, True), (9, 10, True), (10, 16, False), (12, 13, False), (3, 9, False),
])
def test_the_filter_and_the_handler_agree_on_the_transition(old: int | None, new: int, fires: bool) -> None:
    record = stream_record(old, new)
    assert compile_filters(RELEASE_FILTERS)(record) is fires
    assert crossed(record["dynamodb"].get("OldImage"), record["dynamodb"]["NewImage"]) is fires
    assert bool(release_messages(record)) is fires


def test_a_batch_growing_by_uploads_fires_once() -> None:
    counts = [0, 4, 8, 12, 16, 20]
    records = [stream_record(None, 4)] + [stream_record(a, b) for a, b in pairwise(counts[1:])]
    passed = [r for r in records if compile_filters(RELEASE_FILTERS)(r)]
    assert [r["dynamodb"]["NewImage"]["row_count"]["N"] for r in passed] == ["12"]


def test_released_messages_keep_the_rows_order_in_one_group() -> None:
    entries = release_messages(stream_record(8, 12, event_id="rec-7"))
    assert [json.loads(e["MessageBody"])["index"] for e in entries] == list(range(12))
    assert {e["MessageGroupId"] for e in entries} == {"b"}
    assert len({e["MessageDeduplicationId"] for e in entries}) == 12
    assert {json.loads(e["MessageBody"])["release"] for e in entries} == {"rec-7"}
    # the same record again (a retry) gives the same ids, so SQS drops the copies
    assert [e["MessageDeduplicationId"] for e in release_messages(stream_record(8, 12, event_id="rec-7"))] == \
        [e["MessageDeduplicationId"] for e in entries]
    assert [len(c) for c in chunks(entries)] == [10, 2]


def test_group_ids_use_only_what_sqs_allows() -> None:
    assert group_id("echo site") == "echo_site"
    assert group_id("a/b:c") == "a/b:c"
    long = group_id("x" * 200)
    assert len(long) == 64 and long != group_id("x" * 201)


def test_the_processed_record_is_ordered_and_idempotent() -> None:
    req = processed_request("p", {"batch": "b", "index": 3, "release": "r",
                                  "row": {"file": "incoming/b/f.csv", "line": "5"}})
    assert req["ConditionExpression"] == "attribute_not_exists(last_index) OR last_index < :i"
    assert req["ExpressionAttributeValues"][":done"] == {"L": [{"S": "incoming/b/f.csv:5"}]}


def test_a_flaky_row_fails_only_at_its_first_attempt() -> None:
    job = {"batch": "b", "index": 4, "release": "r", "row": {"file": "f", "line": "6", "status": " Flaky"}}
    assert is_flaky(job) and not is_flaky({**job, "row": {"status": "ok"}})
    req = first_failure_request("p", job)
    assert req["UpdateExpression"] == "ADD failed :i"
    assert req["ConditionExpression"] == "attribute_not_exists(failed) OR NOT contains(failed, :n)"
    assert req["ExpressionAttributeValues"] == {":i": {"NS": ["4"]}, ":n": {"N": "4"}}


def test_the_scenario_plan_releases_what_the_readme_says() -> None:
    want = expected()
    assert sorted(want["released"]) == ["alpha", "bravo", "delta", "echo site"]
    assert {b: len(v) for b, v in want["released"].items()} == {"alpha": 12, "bravo": 12, "delta": 10,
                                                                "echo site": 10}
    assert len(want["logged"]["alpha"]) == 16 and len(want["logged"]["charlie"]) == 8
    assert want["flaky"] == {"alpha": 1, "echo site": 1}
    assert "zulu" not in want["logged"]
    first = ROUNDS[0][0]
    assert csv_text(first[1]).splitlines()[0] == "image,width,height,status"


def test_the_declaration_is_complete() -> None:
    APP.validate()
    assert APP.root.endswith("upload_rows")
    by_name = {f.name: f for f in APP.functions}
    assert set(by_name) == {"log_rows", "release", "work"}
    stream = by_name["release"].triggers[0]
    assert isinstance(stream, StreamEvents) and stream.filter_patterns == RELEASE_FILTERS
    queue = by_name["work"].triggers[0]
    assert isinstance(queue, QueueEvents) and queue.report_batch_item_failures
    for f in APP.functions:
        assert f.permissions and all(p.actions and "*" not in "".join(p.actions) for p in f.permissions)
    assert all(t.stream == "NEW_AND_OLD_IMAGES" and t.archived for t in APP.tables)
