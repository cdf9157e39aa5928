import base64
import random

import pytest

from lake.errors import MalformedRecordError
from lake.records import (
    KEY_VALUE_ESCAPES,
    TTL_IDENTITY_TYPE,
    TTL_PRINCIPAL,
    canonical_keys,
    escape_key_name,
    escape_key_value,
    event_time_us,
    is_ttl_delete,
    is_ttl_identity,
    key_parts,
    key_string,
    partition_key,
    sequence_number,
    sequence_sort_key,
    strict_key_string,
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


def _general_key_string(keys: dict) -> str:
    """key_string as it was before its fast path: every name and value through the escapes."""
    def text(av: dict) -> str:
        ((tag, v),) = av.items()
        if tag not in ("S", "N", "B"):
            raise MalformedRecordError(tag)
        return v if isinstance(v, str) else base64.b64encode(v).decode() if tag == "B" else str(v)

    return "|".join(f"{escape_key_name(n)}={escape_key_value(text(keys[n]))}" for n in sorted(keys))


def _random_keys(rng: random.Random) -> dict:
    chars = "aZ09|=\\#é😀 "
    keys = {}
    for _ in range(rng.randint(1, 3)):
        name = "".join(rng.choice(chars) for _ in range(rng.randint(1, 4)))
        tag = rng.choice(["S", "S", "N", "B"])
        value = {"S": "".join(rng.choice(chars) for _ in range(rng.randint(0, 5))),
                 "N": rng.choice(["1", "-1.5e3", ".5", "1.", "12abc", "", "١"]),
                 "B": rng.choice(["AAE=", "", "a|b", "A\\A=", "QUJD"])}[tag]
        keys[name] = {tag: value}
    return keys


def test_the_fast_key_path_agrees_with_the_general_one() -> None:
    rng = random.Random(5)
    strict = 0
    for _ in range(3000):
        keys = _random_keys(rng)
        fast = strict_key_string(keys)
        assert key_string(keys) == _general_key_string(keys)
        if fast is not None:
            strict += 1
            assert fast == key_string(keys)
    assert 500 < strict < 2900  # both sides of the strict check are exercised
    assert strict_key_string({"pk": {"N": "12abc"}}) is None and key_string({"pk": {"N": "12abc"}}) == "pk=12abc"
    assert strict_key_string({"pk": {"B": "a|b"}}) is None and key_string({"pk": {"B": "a|b"}}) == r"pk=a\|b"
    for bad in ({}, [], {"pk": "A"}, {"pk": {"S": 1}}, {"pk": {"SS": ["a"]}}, {1: {"S": "a"}}):
        assert strict_key_string(bad) is None


def test_escapes_are_one_table_applied_in_order() -> None:
    assert KEY_VALUE_ESCAPES[0][0] == "\\"  # the escape character first: no escape is escaped again
    text = "a\\|b=c|"
    for special, escaped in KEY_VALUE_ESCAPES:
        text = text.replace(special, escaped)
    assert text == escape_key_value("a\\|b=c|") == "a\\\\\\|b=c\\|"
    assert escape_key_name("a\\|b=c") == "a\\\\\\|b\\=c"


def test_key_parts_read_what_key_string_writes() -> None:
    rendered = key_string({"p=k": {"S": "a|b=c"}, "sk": {"S": "d\\e"}})
    assert list(key_parts(rendered)) == [("p\\=k", "a\\|b=c"), ("sk", "d\\\\e")]
    with pytest.raises(ValueError, match="name=value"):
        list(key_parts("pk=A|junk"))


def test_ttl_identity() -> None:
    assert is_ttl_identity({"type": TTL_IDENTITY_TYPE, "principalId": TTL_PRINCIPAL})
    assert not is_ttl_identity({"type": "User", "principalId": TTL_PRINCIPAL})
    assert not is_ttl_identity(None) and not is_ttl_identity("Service")
