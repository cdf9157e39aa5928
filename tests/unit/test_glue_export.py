"""DynamoDB export layouts and lines as stream records (lake.glue.export): AWS's manifests,
the embedded DynamoDB's single data file, full and incremental (NEW_AND_OLD_IMAGES) lines."""

from __future__ import annotations

import gzip

import orjson
import pytest

from lake.curate.decode import Coordinates, decode
from lake.errors import MalformedRecordError
from lake.glue.export import FULL_SHARD, INCREMENTAL_SHARD, ExportLayout, layout, lines, stream_record

ROOT = "exports/orders/AWSDynamoDB/01700000000000-abcdef12"
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"


def _aws(kind: str = "FULL_EXPORT") -> dict[str, bytes]:
    files = [f"{ROOT}/data/a.json.gz", f"{ROOT}/data/b.json.gz"]
    return {
        f"{ROOT}/manifest-summary.json": orjson.dumps({
            "version": "2020-06-30", "exportArn": f"{ARN}/export/01700000000000-abcdef12",
            "exportTime": "2023-11-14T22:13:20.000Z", "exportType": kind, "itemCount": 3,
            "manifestFilesS3Key": f"{ROOT}/manifest-files.json", "outputFormat": "DYNAMODB_JSON"}),
        f"{ROOT}/manifest-files.json": b"\n".join(orjson.dumps({"itemCount": 1, "dataFileS3Key": f}) for f in files),
        **{f: b"" for f in files},
    }


def test_aws_layout_is_read_from_its_manifests() -> None:
    objects = _aws()
    got = layout("s3://b/exports/orders", sorted(objects), objects.__getitem__)
    assert got == ExportLayout("01700000000000-abcdef12", (f"{ROOT}/data/a.json.gz", f"{ROOT}/data/b.json.gz"),
                               "FULL_EXPORT", 1_700_000_000_000_000, 3)


def test_the_embedded_layout_without_manifests_is_accepted() -> None:
    keys = ["exports/orders/x/AWSDynamoDB/5f0e/data/77aa.gz"]
    got = layout("s3://b/exports/orders/x", keys, lambda k: b"")
    assert (got.export_id, got.data_keys, got.export_time_us) == ("5f0e", tuple(keys), None)


def test_two_exports_under_one_prefix_and_no_export_are_refused() -> None:
    with pytest.raises(MalformedRecordError, match="2 exports"):
        layout("s3://b/p", ["p/AWSDynamoDB/1/data/a.gz", "p/AWSDynamoDB/2/data/b.gz"], lambda k: b"")
    with pytest.raises(MalformedRecordError, match="no DynamoDB export"):
        layout("s3://b/p", ["p/readme.txt"], lambda k: b"")


def test_a_full_export_line_is_an_insert_at_the_export_time() -> None:
    body = gzip.compress(b'{"Item":{"pk":{"S":"A"},"n":{"N":"1.50"}}}\n\n')
    (doc,) = list(lines(body))
    export = ExportLayout("e1", (), "FULL_EXPORT", 1_700_000_000_000_000)
    record, shard = stream_record(doc, ["pk"], export, ARN)
    change = decode("orders", record, Coordinates(shard, "0"))
    assert (shard, change.event_name, change.event_time_us, change.event_id, change.key) == (
        FULL_SHARD, "INSERT", 1_700_000_000_000_000, "export:e1:pk=A", "pk=A")
    assert change.new_json == '{"pk":"A","n":1.50}'
    assert change.padded_sequence == "0" * 64  # a streamed change at the same time is the later


def test_incremental_lines_are_net_changes_at_their_write_time() -> None:
    export = ExportLayout("e2", (), "INCREMENTAL_EXPORT")
    keys = {"pk": {"S": "A"}}
    meta = {"WriteTimestampMicros": {"N": "1700000000123456"}}
    cases = {"INSERT": {"Metadata": meta, "Keys": keys, "NewImage": {**keys, "v": {"N": "1"}}},
             "MODIFY": {"Metadata": meta, "Keys": keys, "NewImage": {**keys, "v": {"N": "2"}},
                        "OldImage": {**keys, "v": {"N": "1"}}},
             "REMOVE": {"Metadata": meta, "Keys": keys, "OldImage": {**keys, "v": {"N": "2"}}}}
    for name, doc in cases.items():
        record, shard = stream_record(doc, ["pk"], export, ARN)
        change = decode("orders", record, Coordinates(shard, "0"))
        assert (shard, change.event_name, change.event_time_us) == (INCREMENTAL_SHARD, name, 1_700_000_000_123_456)
        assert change.event_id == "export:e2:pk=A:1700000000123456"


def test_bad_lines_say_what_is_wrong() -> None:
    with pytest.raises(MalformedRecordError, match="line 1: not JSON"):
        list(lines(b"{nope"))
    with pytest.raises(MalformedRecordError, match="key attribute"):
        stream_record({"Item": {"x": {"S": "1"}}}, ["pk"], ExportLayout("e", (), "FULL_EXPORT", 1), ARN)
    with pytest.raises(MalformedRecordError, match="WriteTimestampMicros"):
        stream_record({"Keys": {"pk": {"S": "A"}}}, ["pk"], ExportLayout("e", ()), ARN)
