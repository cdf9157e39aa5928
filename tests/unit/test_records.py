import pytest

from lake.errors import MalformedRecordError
from lake.records import (
    canonical_keys,
    event_time_us,
    is_ttl_delete,
    key_string,
    partition_key,
    sequence_number,
    sequence_sort_key,
    table_from_arn,
    table_name,
)

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"


def test_table_from_stream_and_table_arns() -> None:
    assert table_from_arn(ARN) == "orders"
    assert table_from_arn("arn:aws-cn:dynamodb:cn-north-1:1:table/x.y-z") == "x.y-z"
    with pytest.raises(MalformedRecordError, match="not a DynamoDB"):
        table_from_arn("arn:aws:kinesis:us-east-1:1:stream/x")


def test_table_name_prefers_kinesis_table_name() -> None:
    assert table_name({"tableName": "t", "eventSourceARN": ARN}) == "t"
    assert table_name({"eventSourceARN": ARN}) == "orders"
    with pytest.raises(MalformedRecordError):
        table_name({})


def test_event_time_units_are_normalised_to_microseconds() -> None:
    assert event_time_us({"dynamodb": {"ApproximateCreationDateTime": 1700000000}}) == 1_700_000_000_000_000
    # Kinesis Data Streams for DynamoDB: milliseconds, or microseconds when said so
    kds = {"recordFormat": "application/json", "tableName": "t",
           "dynamodb": {"ApproximateCreationDateTime": 1700000000123}}
    assert event_time_us(kds) == 1_700_000_000_123_000
    kds["dynamodb"] = {"ApproximateCreationDateTime": 1700000000123456,
                       "ApproximateCreationDateTimePrecision": "MICROSECOND"}
    assert event_time_us(kds) == 1_700_000_000_123_456
    # as a numeric string (AWS's event-filtering docs show it so)
    assert event_time_us({"dynamodb": {"ApproximateCreationDateTime": "1700000000"}}) == 1_700_000_000_000_000


@pytest.mark.parametrize("bad", [{}, {"dynamodb": {}}, {"dynamodb": {"ApproximateCreationDateTime": "soon"}},
                                 {"dynamodb": {"ApproximateCreationDateTime": True}}])
def test_event_time_refuses_garbage(bad: dict) -> None:
    with pytest.raises(MalformedRecordError):
        event_time_us(bad)


def test_ttl_delete_needs_service_identity_and_remove() -> None:
    ident = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert is_ttl_delete({"eventName": "REMOVE", "userIdentity": ident})
    assert not is_ttl_delete({"eventName": "REMOVE"})
    assert not is_ttl_delete({"eventName": "MODIFY", "userIdentity": ident})
    assert not is_ttl_delete({"eventName": "REMOVE", "userIdentity": {"type": "Service", "principalId": "x"}})


def test_sequence_numbers_compare_numerically() -> None:
    seqs = ["100", "99", "1000000000000000000001", "0200"]
    assert sorted(seqs, key=sequence_sort_key) == ["99", "100", "0200", "1000000000000000000001"]
    assert sequence_number({"dynamodb": {"SequenceNumber": "42"}}) == "42"
    with pytest.raises(MalformedRecordError):
        sequence_number({"dynamodb": {"SequenceNumber": 42}})


def test_keys_render_canonically() -> None:
    keys = {"sk": {"N": "10"}, "pk": {"S": "A#1"}}
    assert key_string(keys) == "pk=A#1|sk=10"
    assert canonical_keys(keys) == '{"pk":{"S":"A#1"},"sk":{"N":"10"}}'
    assert key_string({"id": {"B": "AAE="}}) == "id=AAE="
    with pytest.raises(MalformedRecordError):
        key_string({})
    with pytest.raises(MalformedRecordError):
        key_string({"pk": {"M": {}}})


def test_partition_key_is_deterministic_and_bounded() -> None:
    short = partition_key("orders", {"pk": {"S": "a"}})
    assert short == "orders|pk=a"
    long_key = {"pk": {"S": "x" * 1000}}
    pk = partition_key("orders", long_key)
    assert len(pk) <= 256 and pk == partition_key("orders", long_key)
    assert pk != partition_key("orders", {"pk": {"S": "x" * 999}})


def test_keys_that_would_collide_are_escaped_apart() -> None:
    a = key_string({"pk": {"S": "a|sk=c"}, "sk": {"S": "d"}})
    b = key_string({"pk": {"S": "a"}, "sk": {"S": "c|sk=d"}})
    assert a != b and (a, b) == (r"pk=a\|sk=c|sk=d", r"pk=a|sk=c\|sk=d")
    assert key_string({"p=k": {"S": "x\\y"}}) == r"p\=k=x\\y"
