"""The pure archiver core: envelope, structural checks, grouping, verbatim lines, determinism."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
from datetime import date
from typing import Any

import orjson
import pytest

from lake.archive.encode import check_attribute_map, plan_batch
from lake.errors import MalformedRecordError
from tests.conftest import load_event
from tests.events.factories import T0, large_item, nested_item, stream_record
from tests.raw_zone import build_objects, decode_line, encode_record, iter_object_lines, record_bytes


def lines_of(plan_objects: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [decode_line(line) for o in plan_objects for line in iter_object_lines(o.body)]


def test_sam_event_one_object_verbatim() -> None:
    event = load_event("samDynamoDBUpdate.json")
    pristine = copy.deepcopy(event)
    plan = plan_batch(event["Records"])
    assert plan.rejected == ()
    assert event == pristine  # never altered
    (obj,) = plan.objects
    assert obj.key.table == "ExampleTableWithStream"
    assert (obj.key.dt, obj.key.hour) == (date(2015, 4, 9), 0)
    assert obj.key.shard == "2015-06-27T00-48-05.899"
    assert (obj.key.first_seq, obj.key.last_seq) == ("4421584500000000017450439091", "4421584500000000017450439093")
    decoded = lines_of(plan.objects)
    assert [rec for _, rec in decoded] == event["Records"]
    envs = [env for env, _ in decoded]
    assert [e["event"] for e in envs] == ["INSERT", "MODIFY", "REMOVE"]
    assert {e["key"] for e in envs} == {"Id=101"}
    assert envs[0]["t"] == 1428537600 * 1_000_000
    assert [e["seq"] for e in envs] == [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    text = gzip.decompress(obj.body)
    assert obj.sha256 == hashlib.sha256(text).hexdigest()
    assert obj.metadata()["record-count"] == "3"


def test_line_layout_envelope_first_and_record_slice() -> None:
    line = encode_record(stream_record(1)).line
    assert line.startswith(b'{"lake":{"table":"orders",')
    at = line.index(b',"record":')
    assert orjson.loads(line[at + len(b',"record":'):-1]) == stream_record(1)


def test_all_types_38_digits_and_sets_survive_exactly() -> None:
    event = load_event("ddbAllTypes.json")
    plan = plan_batch(event["Records"])
    assert plan.rejected == ()
    text = gzip.decompress(plan.objects[0].body)
    # the 38-digit number is in the bytes as the same string, never through a float
    assert b'"n38":{"N":"12345678901234567890123456789012345678"}' in text
    assert [r for _, r in lines_of(plan.objects)] == event["Records"]
    image = event["Records"][0]["dynamodb"]["NewImage"]
    assert {next(iter(v)) for v in image.values()} >= {"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"}


def test_stream_view_types_all_archived() -> None:
    event = load_event("ddbStreamViewTypes.json")
    plan = plan_batch(event["Records"])
    assert plan.rejected == ()
    got = [r["dynamodb"]["StreamViewType"] for _, r in lines_of(plan.objects)]
    assert got == ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]


def test_ttl_deletions_marked_and_untouched() -> None:
    event = load_event("ddbTtlRemove.json")
    decoded = lines_of(plan_batch(event["Records"]).objects)
    assert [env["ttl"] for env, _ in decoded] == [False, True, False]
    assert decoded[1][1]["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert [rec for _, rec in decoded] == event["Records"]


def test_hour_boundary_splits_partitions() -> None:
    plan = plan_batch(load_event("ddbHourBoundary.json")["Records"])
    parts = [(o.key.dt, o.key.hour, o.record_count) for o in plan.objects]
    assert parts == [(date(2024, 5, 1), 0, 2), (date(2024, 5, 1), 1, 1), (date(2024, 5, 2), 0, 1)]


def test_objects_split_per_table_and_keep_batch_order() -> None:
    other = "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/2024-05-01T00:00:00.000"
    recs = [stream_record(5), stream_record(1, arn=other), stream_record(3), stream_record(2, arn=other)]
    plan = plan_batch(recs)
    assert [(o.key.table, o.sequence_numbers) for o in plan.objects] == [
        ("users", (recs[1]["dynamodb"]["SequenceNumber"], recs[3]["dynamodb"]["SequenceNumber"])),
        ("orders", (recs[0]["dynamodb"]["SequenceNumber"], recs[2]["dynamodb"]["SequenceNumber"])),
    ]
    orders = plan.objects[1]
    # first/last are the numeric min/max even though the batch order differs
    assert (orders.key.first_seq, orders.key.last_seq) == (recs[2]["dynamodb"]["SequenceNumber"],
                                                           recs[0]["dynamodb"]["SequenceNumber"])


def test_deterministic_bytes() -> None:
    recs = load_event("ddbAllTypes.json")["Records"]
    a, b = plan_batch(recs), plan_batch(copy.deepcopy(recs))
    assert [(o.key, o.body) for o in a.objects] == [(o.key, o.body) for o in b.objects]


def test_numeric_string_creation_time_accepted_unaltered() -> None:
    rec = stream_record(1, t=str(T0 + 7200))
    enc = encode_record(rec)
    assert (enc.dt, enc.hour) == (date(2024, 5, 1), 2)
    env, back = decode_line(enc.line)
    assert back["dynamodb"]["ApproximateCreationDateTime"] == str(T0 + 7200)
    assert env["t"] == (T0 + 7200) * 1_000_000


def test_deep_nesting_and_400kb_item() -> None:
    deep, big = nested_item(31), large_item()
    assert len(json.dumps(big)) > 380 * 1024
    recs = [stream_record(1, event="INSERT", keys={"pk": deep["pk"], "sk": deep["sk"]}, new=deep),
            stream_record(2, event="INSERT", keys={"pk": big["pk"], "sk": big["sk"]}, new=big)]
    plan = plan_batch(recs)
    assert plan.rejected == ()
    assert [r for _, r in lines_of(plan.objects)] == recs


@pytest.mark.parametrize(("item", "reason"), [
    ({"a": {"X": "1"}}, "unknown DynamoDB type tag 'X'"),
    ({"a": {"M": {"b": {"L": [{"N": "1"}, {"N": "one"}]}}}}, "img.a.b[1]"),
    ({"a": {"NULL": False}}, "NULL"),
    ({"a": {"SS": [1]}}, "SS"),
    ({"a": {"NS": ["1", "x"]}}, "NS"),
    ({"a": {"BS": ["!!"]}}, "BS"),
    ({"a": {"B": "not base64!"}}, "B"),
    ({"a": {"BOOL": "true"}}, "BOOL"),
    ({"a": {"S": "x", "N": "1"}}, "not a DynamoDB attribute value"),
    ({"a": "plain"}, "not a DynamoDB attribute value"),
    ([], "expected an object"),
])
def test_check_attribute_map_reasons(item: Any, reason: str) -> None:
    with pytest.raises(MalformedRecordError) as info:
        check_attribute_map(item, "img")
    assert reason in str(info.value)


def test_hostile_depth_does_not_recurse() -> None:
    value: dict[str, Any] = {"N": "1"}
    for _ in range(5000):
        value = {"L": [value]}
    check_attribute_map({"a": value}, "img")  # no RecursionError: the walk is iterative
    value["L"][0] = {"Q": 1}
    with pytest.raises(MalformedRecordError):
        check_attribute_map({"a": value}, "img")


def test_unknown_type_tag_in_an_image_is_archived_verbatim() -> None:
    # The archive keeps records as delivered; interpreting values is the curated consumer's job.
    rec = stream_record(1)
    rec["dynamodb"]["OldImage"]["extra"] = {"ZZ": "1"}
    rec["dynamodb"]["NewImage"]["deep"] = {"M": {"x": {"L": [{"SX": ["a"]}]}}}
    plan = plan_batch([rec])
    assert plan.rejected == ()
    ((env, back),) = lines_of(plan.objects)
    assert back == rec
    assert (env["key"], env["event"], env["seq"]) == ("pk=ORDER#1|sk=v0", "MODIFY", rec["dynamodb"]["SequenceNumber"])


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda r: r["dynamodb"].pop("SequenceNumber"), "SequenceNumber"),
    (lambda r: r["dynamodb"].update(ApproximateCreationDateTime="soon"), "epoch number"),
    (lambda r: r["dynamodb"].update(ApproximateCreationDateTime=1e300), "outside"),
    (lambda r: r.update(eventName="UPSERT"), "eventName"),
    (lambda r: r["dynamodb"].update(StreamViewType="ALL"), "StreamViewType"),
    (lambda r: r["dynamodb"]["Keys"].update(pk={"SS": ["a"]}), "key attribute of type SS"),
    (lambda r: r["dynamodb"]["Keys"].update(pk={"S": 5}), "dynamodb.Keys.pk: S value"),
    (lambda r: r["dynamodb"]["Keys"].update(pk={"Q": "5"}), "dynamodb.Keys.pk: unknown DynamoDB type tag 'Q'"),
    (lambda r: r["dynamodb"].update(SequenceNumber="1" * 41), "40 digits"),
    (lambda r: r["dynamodb"].update(SequenceNumber="\u0661\u0662"), "not ASCII decimal"),
    (lambda r: r["dynamodb"].update(NewImage=["a"]), "dynamodb.NewImage is a list"),
    (lambda r: r["dynamodb"].update(OldImage=None), "dynamodb.OldImage is a NoneType"),
    (lambda r: r["dynamodb"]["Keys"].update(pk={"N": "12x"}), "dynamodb.Keys.pk: N value"),
    (lambda r: r["dynamodb"]["Keys"].update(pk={"B": "not base64!"}), "dynamodb.Keys.pk: B value"),
    (lambda r: r["dynamodb"].update(Keys=[]), "no dynamodb.Keys object"),
    (lambda r: r["dynamodb"].update(Keys={}), "no dynamodb.Keys"),
])
def test_malformed_records_rejected_with_reason(mutate: Any, reason: str) -> None:
    rec = stream_record(1)
    mutate(rec)
    plan = plan_batch([stream_record(0), rec])
    assert [o.record_count for o in plan.objects] == [1]
    (rej,) = plan.rejected
    assert rej.index == 1 and reason in rej.reason, rej.reason
    assert rej.record is rec


ODD_IMAGES: list[dict[str, Any]] = [
    load_event("ddbAllTypes.json")["Records"][0]["dynamodb"]["NewImage"],
    nested_item(31),
    {"pk": {"S": '{"S":"x"} "quoted" \\'}, "NewImage": {"M": {"OldImage": {"S": "{"}}}},  # marker names inside
    {"a": {"S": "x", "N": "1"}},
    {"a": {"M": {"b": {"S": "x"}, "c": "plain"}}},
    {"a": {"L": ["x"]}},
    {"a": {"L": [{"N": "1e5"}, {"N": "-.5"}, {"N": "1x"}]}},
    {"a": {"NS": ["1", "2"]}, "b": {"BS": ["AA=="]}, "c": {"SS": []}},
    {"a": {"BOOL": 1}},
    {"a": {"NULL": True}, "b": {"NULL": False}},
    {"a": {"B": "AA==", "S": "x"}},
    {"a": {"M": {}}, "b": {"L": []}},
    {"S": {"S": "attribute named like a tag"}, "M": {"M": {"L": {"L": []}}}},
    {"record": {"S": ',"record":{"S":"x"}'}},  # the line separator's text inside the record
    {},
]


@pytest.mark.parametrize("image", ODD_IMAGES)
def test_any_image_object_is_archived_verbatim(image: dict[str, Any]) -> None:
    # valid or not by DynamoDB's typing rules (check_attribute_map), an image object is archived as delivered
    rec = stream_record(1, event="INSERT", new=image)
    line = encode_record(rec).line
    assert orjson.loads(record_bytes(line)) == rec
    assert decode_line(line) == (orjson.loads(line)["lake"], rec)


def _mutations(seed: int, count: int) -> list[dict[str, Any]]:
    """Random small corruptions of a valid item (fixed seed: the same cases every run)."""
    import random

    rng = random.Random(seed)
    junk: list[Any] = [1, 1.5, True, False, None, "x", "1e", [], {}, ["a"], [1], {"S": "x"}, {"Q": "x"},
                       {"N": "x"}, {"B": "!"}, {"NULL": 1}, {"BOOL": 0}, {"S": "x", "N": "1"}]
    out = []
    for _ in range(count):
        item = copy.deepcopy(nested_item(4) | load_event("ddbAllTypes.json")["Records"][0]["dynamodb"]["NewImage"])
        # walk to a random attribute value and replace its tag, its value or itself
        parent: Any = item
        key: Any = rng.choice(sorted(item))
        for _ in range(rng.randrange(4)):
            av = parent[key]
            if not isinstance(av, dict) or len(av) != 1:
                break
            ((tag, val),) = av.items()
            if tag == "M" and val:
                parent, key = val, rng.choice(sorted(val))
            elif tag == "L" and val:
                parent, key = val, rng.randrange(len(val))
            else:
                break
        what = rng.randrange(3)
        if what == 0:
            parent[key] = rng.choice(junk)
        elif what == 1 and isinstance(parent[key], dict) and len(parent[key]) == 1:
            ((tag, val),) = parent[key].items()
            parent[key] = {rng.choice(["S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL", "X"]): val}
        elif isinstance(parent[key], dict) and len(parent[key]) == 1:
            ((tag, _),) = parent[key].items()
            parent[key] = {tag: rng.choice(junk)}
        out.append(item)
    return out


def test_random_image_corruptions_are_archived_and_the_walk_still_names_them() -> None:
    verdicts = {True: 0, False: 0}
    for image in _mutations(seed=3, count=400):
        try:
            check_attribute_map(image, "img")
            walk_ok = True
        except MalformedRecordError as e:
            walk_ok = False
            assert str(e).startswith("img"), e  # the reason names the path
        verdicts[walk_ok] += 1
        rec = stream_record(1, event="INSERT", new=image)
        plan = plan_batch([rec])
        assert plan.rejected == (), plan.rejected
        ((env, back),) = lines_of(plan.objects)
        assert back == rec and env["key"] == "pk=ORDER#1|sk=v0"
    assert verdicts[True] > 10 and verdicts[False] > 100  # the corpus exercises both sides


@pytest.mark.parametrize(("keys", "text"), [
    ({"pk": {"S": "A"}}, "pk=A"),
    ({"sk": {"N": "-1.5e3"}, "pk": {"S": "a|b"}}, "pk=a\\|b|sk=-1.5e3"),
    ({"pk": {"B": "AAE="}, "a": {"S": ""}}, "a=|pk=AAE="),
])
def test_the_envelope_key_is_the_canonical_key_string(keys: dict[str, Any], text: str) -> None:
    from lake.records import key_string, strict_key_string

    assert strict_key_string(keys) == key_string(keys) == text
    assert encode_record(stream_record(1, keys=keys)).line.startswith(
        b'{"lake":{"table":"orders","key":' + orjson.dumps(text) + b',')


def test_plan_batch_equals_encode_record_then_build_objects() -> None:
    other = "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/2024-05-01T00:00:00.000"
    recs = load_event("ddbHourBoundary.json")["Records"] + [stream_record(9, arn=other), stream_record(3)]
    plan = plan_batch(recs, "pre/fix")
    assert plan.rejected == ()
    built = build_objects([encode_record(r, i) for i, r in enumerate(recs)], "pre/fix")
    assert [(o.key, o.body, o.sha256, o.sequence_numbers) for o in plan.objects] == \
        [(o.key, o.body, o.sha256, o.sequence_numbers) for o in built]
    assert len(plan.objects) >= 4 and all(o.key.prefix == "pre/fix" for o in plan.objects)


@pytest.mark.parametrize(("arn", "table", "shard"), [
    (None, "_unknown", "no-arn"),
    ("eventsource_arn", "_unknown", None),
    ("arn:aws:dynamodb:us-east-1:123456789012:table/orders", "orders", "no-stream"),
])
def test_records_without_a_stream_arn_are_still_archived(arn: Any, table: str, shard: str | None) -> None:
    rec = stream_record(1)
    if arn is None:
        rec.pop("eventSourceARN")
    else:
        rec["eventSourceARN"] = arn
    plan = plan_batch([rec])
    assert plan.rejected == ()
    (obj,) = plan.objects
    assert obj.key.table == table and (shard is None or obj.key.shard == shard)
    ((env, back),) = lines_of(plan.objects)
    assert back == rec and env["table"] == table


@pytest.mark.parametrize("keys", [
    {"pk": {"S": "a|sk=c"}, "sk": {"S": "d"}},
    {"pk": {"S": "back\\slash"}},
    {"p=k": {"S": "x"}, "sk": {"N": "1"}},
])
def test_strict_key_string_escapes_as_key_string(keys: dict) -> None:
    from lake.records import key_string, strict_key_string

    assert strict_key_string(keys) == key_string(keys)
