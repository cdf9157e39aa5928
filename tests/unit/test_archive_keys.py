"""RawObjectKey renders and parses; the test-side line helpers decode what the encoder writes."""

from __future__ import annotations

import gzip
from datetime import date

import orjson
import pytest

from lake.archive.keys import ForeignKeyError, RawObjectKey, partition_prefix, shard_token, zone_prefix
from lake.archive.line import MalformedLineError
from tests.raw_zone import decode_line, iter_object_lines, record_bytes


@pytest.mark.parametrize("prefix", ["", "lake", "/team/lake/"])
def test_render_parse_round_trip(prefix: str) -> None:
    key = RawObjectKey("orders", date(2024, 5, 1), 7, shard_token("2024-05-01T00:00:00.000"),
                       "4421584500000000017450439091", "4421584500000000017450439099", prefix)
    text = key.render()
    assert text.startswith(partition_prefix(prefix, "orders", date(2024, 5, 1), 7))
    assert "/dt=2024-05-01/hour=07/2024-05-01T00-00-00.000/" in text
    assert text.endswith("-" + "4421584500000000017450439099".zfill(40) + ".json.gz")
    assert RawObjectKey.parse(text) == key
    assert RawObjectKey.parse(text).render() == text
    assert key.prefix == prefix.strip("/")


def test_sequence_numbers_are_padded_so_keys_sort_numerically() -> None:
    seqs = ["9", "10", "111", "4421584500000000017450439091", "1" + "0" * 39]
    keys = [RawObjectKey("t1", date(2024, 1, 1), 0, "s", s, s).render() for s in seqs]
    assert sorted(keys) == keys
    # leading zeros are normalised away: equal ranges are equal keys
    assert RawObjectKey("t1", date(2024, 1, 1), 0, "s", "007", "08") == \
        RawObjectKey("t1", date(2024, 1, 1), 0, "s", "7", "8")


@pytest.mark.parametrize("key", [
    "raw/table=orders/dt=2024-05-01/hour=07/s/1-2.json.gz",  # unpadded
    "raw/table=orders/dt=2024-13-01/hour=07/s/" + "0" * 39 + "1-" + "0" * 39 + "2.json.gz",
    "raw/table=orders/dt=2024-05-01/hour=24/s/" + "0" * 39 + "1-" + "0" * 39 + "2.json.gz",
    "curated/changes/table_name=orders/dt=2024-05-01/x.parquet",
    "raw/table=orders/dt=2024-05-01/hour=07/s/" + "0" * 39 + "1-" + "0" * 39 + "2.json",
    "raw/README.md",
    "",
])
def test_parse_rejects_foreign_keys(key: str) -> None:
    with pytest.raises(ForeignKeyError):
        RawObjectKey.parse(key)
    assert issubclass(ForeignKeyError, ValueError)


@pytest.mark.parametrize("kwargs", [
    {"table": "a/b"}, {"table": ""}, {"hour": 24}, {"hour": -1}, {"shard": "x/y"},
    {"first_seq": "12a"}, {"last_seq": "1" * 41},
])
def test_constructor_validates(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"table": "orders", "dt": date(2024, 1, 1), "hour": 0, "shard": "s",
                               "first_seq": "1", "last_seq": "2"}
    with pytest.raises(ForeignKeyError):
        RawObjectKey(**{**base, **kwargs})  # type: ignore[arg-type]


def test_partition_prefixes() -> None:
    assert zone_prefix("") == "raw/"
    assert zone_prefix("/x/") == "x/raw/"
    assert partition_prefix("", "orders") == "raw/table=orders/"
    assert partition_prefix("p", "orders", date(2024, 5, 1)) == "p/raw/table=orders/dt=2024-05-01/"
    assert partition_prefix("p", "orders", date(2024, 5, 1), 3) == "p/raw/table=orders/dt=2024-05-01/hour=03/"
    with pytest.raises(ValueError):
        partition_prefix("", "orders", hour=3)


def test_shard_token_is_path_safe() -> None:
    assert shard_token("2015-06-27T00:48:05.899") == "2015-06-27T00-48-05.899"
    with pytest.raises(ForeignKeyError):
        shard_token("")


def test_decode_line_and_slice() -> None:
    record = {"eventID": "1", "dynamodb": {"NewImage": {"n": {"N": "12345678901234567890123456789012345678"}}}}
    lake = {"table": "t", "key": 'pk=,"record":', "seq": "1", "t": 1, "event": "INSERT", "id": "1",
            "ttl": False}
    line = b'{"lake":' + orjson.dumps(lake) + b',"record":' + orjson.dumps(record) + b"}"
    env, rec = decode_line(line + b"\n")
    assert (env, rec) == (lake, record)
    # the envelope cannot contain the separator unescaped, so slicing finds the record
    assert orjson.loads(record_bytes(line)) == record
    body = gzip.compress(line + b"\n" + line + b"\n")
    assert list(iter_object_lines(body)) == [line, line]
    assert list(iter_object_lines(line + b"\n\n")) == [line]


@pytest.mark.parametrize("line", [b"not json", b"[1]", b'{"lake":{}}', b'{"record":{},"lake":1}'])
def test_decode_line_rejects_foreign_lines(line: bytes) -> None:
    with pytest.raises(MalformedLineError):
        decode_line(line)


def test_iter_object_lines_rejects_corrupt_gzip() -> None:
    body = gzip.compress(b'{"lake":{},"record":{}}\n')
    with pytest.raises(MalformedLineError):
        list(iter_object_lines(body[:-6] + b"\x00" * 6))
