"""Replay's pure parts: time and key parsing, selection matching, batching rules, Lambda's
partial-failure semantics. No AWS."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest

from lake.archive.line import split
from lake.errors import ConfigError
from lake.replay import ReplayOptions, Selection, iter_batches, normalise_key, parse_time, read_keys_file
from lake.replay.source import Change
from lake.replay.targets import LAMBDA_MAX_PAYLOAD, Target, _unique_key_chunks, event_payload, failed_from_response


def test_parse_time_accepts_iso_and_epoch_units() -> None:
    assert parse_time("2024-05-01T00:00:00Z") == 1_714_521_600_000_000
    assert parse_time("2024-05-01") == 1_714_521_600_000_000
    assert parse_time("2024-05-01T02:00:00+02:00") == 1_714_521_600_000_000
    assert parse_time("1714521600") == 1_714_521_600_000_000
    assert parse_time("1714521600.5") == 1_714_521_600_500_000
    assert parse_time(1_714_521_600_000) == 1_714_521_600_000_000  # milliseconds
    assert parse_time(1_714_521_600_000_000) == 1_714_521_600_000_000  # microseconds
    with pytest.raises(ConfigError, match="neither ISO-8601"):
        parse_time("yesterday")


def test_keys_are_normalised_from_text_or_typed_json(tmp_path: Path) -> None:
    assert normalise_key("sk=1|pk=A") == "pk=A|sk=1"
    assert normalise_key('{"sk": {"N": "1"}, "pk": {"S": "A"}}') == "pk=A|sk=1"
    with pytest.raises(ConfigError, match="name=value"):
        normalise_key("justavalue")
    with pytest.raises(ConfigError, match="twice"):
        normalise_key("pk=A|pk=B")
    f = tmp_path / "keys.txt"
    f.write_text("# wanted items\npk=A|sk=1\n\n  sk=2|pk=B\n{\"pk\":{\"S\":\"C\"},\"sk\":{\"S\":\"3\"}}\n")
    assert read_keys_file(f) == ("pk=A|sk=1", "pk=B|sk=2", "pk=C|sk=3")
    with pytest.raises(ConfigError, match="keys file"):
        read_keys_file(tmp_path / "missing.txt")


def test_selection_validates_its_parts() -> None:
    with pytest.raises(ConfigError, match="unknown event name"):
        Selection(event_names=frozenset({"UPSERT"}))
    with pytest.raises(ConfigError, match="empty"):
        Selection.build(since="2024-05-02", until="2024-05-01")
    with pytest.raises(ConfigError, match="filter"):
        Selection(filters=('{"eventName": "INSERT"}',))  # a leaf must be a list, as on AWS
    sel = Selection.build(keys=["sk=1|pk=A"], event_names=["insert"],
                          filters=[{"eventName": ["INSERT"]}], since="2024-05-01", until="2024-05-01T01:00Z")
    assert sel.keys == frozenset({"pk=A|sk=1"}) and sel.event_names == frozenset({"INSERT"})
    t = parse_time("2024-05-01T00:30Z")
    assert sel.envelope_matches("pk=A|sk=1", "INSERT", t)
    assert not sel.envelope_matches("pk=B|sk=1", "INSERT", t)
    assert not sel.envelope_matches("pk=A|sk=1", "MODIFY", t)
    assert not sel.envelope_matches("pk=A|sk=1", "INSERT", parse_time("2024-05-01T01:00Z"))  # until exclusive
    assert sel.envelope_matches("pk=A|sk=1", "INSERT", parse_time("2024-05-01"))  # since inclusive
    assert sel.record_matches({"eventName": "INSERT"}) and not sel.record_matches({"eventName": "REMOVE"})
    assert sel.digest("file:x") == Selection.build(keys=["pk=A|sk=1"], event_names=["INSERT"],
                                                   filters=[{"eventName": ["INSERT"]}], since="2024-05-01",
                                                   until="2024-05-01T01:00Z").digest("file:x")
    assert sel.digest("file:x") != sel.digest("file:y")


def test_partitions_follow_the_time_range() -> None:
    sel = Selection.build(since="2024-05-01T22:30Z", until="2024-05-03T01:00Z")
    assert sel.days() == [date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)]
    assert not sel.hour_in_range(date(2024, 5, 1), 21)
    assert sel.hour_in_range(date(2024, 5, 1), 22)
    assert sel.hour_in_range(date(2024, 5, 3), 0)
    assert not sel.hour_in_range(date(2024, 5, 3), 1)  # until is exclusive
    assert Selection.build(since="2024-05-01").days() is None  # open range: list the table
    assert Selection.build(since="2000-01-01", until="2024-01-01").days() is None  # too many days


def _change(i: int, key: str = "pk=A|sk=1", size: int = 10) -> Change:
    record = orjson.dumps({"eventID": f"e{i}", "pad": "x" * size, "dynamodb": {"SequenceNumber": str(i)}})
    return Change(i, i, f"e{i}", key, "INSERT", "orders", "s", "orders/s", record)


def test_batches_respect_size_and_payload_limit() -> None:
    changes = [_change(i) for i in range(25)]
    assert [len(b) for b in iter_batches(changes, 10, None)] == [10, 10, 5]
    big = [_change(i, size=2_500_000) for i in range(7)]  # 2.5 MB records: 2 per 6 MiB event
    out = list(iter_batches(big, 10_000, LAMBDA_MAX_PAYLOAD))
    assert [len(b) for b in out] == [2, 2, 2, 1]
    assert all(len(event_payload(b)) <= LAMBDA_MAX_PAYLOAD for b in out)
    assert [c for b in out for c in b] == big
    for bad in (0, 10_001):
        with pytest.raises(ConfigError, match="10000"):
            ReplayOptions(batch_size=bad)
    assert ReplayOptions(batch_size=10_000).batch_size == 10_000


def test_event_payload_splices_records_verbatim() -> None:
    changes = [_change(i) for i in range(3)]
    event = orjson.loads(event_payload(changes))
    assert event["Records"] == [orjson.loads(c.record) for c in changes]
    line = b'{"lake":{"table":"t","key":"pk=A","seq":"1","t":5,"event":"INSERT","id":"x","ttl":false},' \
           b'"record":{"a":"b\\",\\"record\\":","c":1}}\n'
    env, rec = split(line)
    assert env["seq"] == "1" and orjson.loads(rec) == {"a": 'b","record":', "c": 1}


def test_batch_item_failures_follow_lambda() -> None:
    changes = [_change(i) for i in range(5)]
    assert failed_from_response(changes, None).ok
    assert failed_from_response(changes, {"batchItemFailures": []}).ok
    r = failed_from_response(changes, {"batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "1"}]})
    assert r.failed_index == 1 and r.reported == ("3", "1")
    # an identifier Lambda cannot place fails the whole batch
    assert failed_from_response(changes, {"batchItemFailures": [{"itemIdentifier": ""}]}).failed_index == 0
    assert failed_from_response(changes, {"batchItemFailures": [{"itemIdentifier": "99"}]}).failed_index == 0


def test_service_calls_never_hold_one_item_twice() -> None:
    items = [("a", 1), ("b", 1), ("a", 1), ("c", 1), ("c", 1), ("d", 1)]
    assert [list(r) for r in _unique_key_chunks(items, 10, 100)] == [[0, 1], [2, 3], [4, 5]]
    assert [list(r) for r in _unique_key_chunks(items, 1, 100)] == [[i] for i in range(6)]
    assert [list(r) for r in _unique_key_chunks([("a", 60), ("b", 60)], 10, 100)] == [[0], [1]]


def test_target_specs() -> None:
    assert Target.parse("lambda:my-fn").is_remote
    assert Target.parse("python:tests.replay_handlers:module_handler").name == "tests.replay_handlers:module_handler"
    assert Target.parse("null:").kind == "null"
    assert not Target.parse("file:/tmp/x").is_remote
    for bad in ("ftp:x", "lambda:", "python:nomodule", "nothing"):
        with pytest.raises(ConfigError):
            Target.parse(bad)


def test_escaped_keys_parse_as_rendered() -> None:
    from lake.records import key_string
    from lake.replay.selection import normalise_key

    rendered = key_string({"pk": {"S": "a|sk=c"}, "sk": {"S": "d\\e"}})
    assert normalise_key(rendered) == rendered
    assert normalise_key(r"sk=d\\e|pk=a\|sk=c") == rendered
