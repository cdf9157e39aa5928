"""The raw line: one declaration, a writer and two readers that agree with it and each other."""

from __future__ import annotations

import inspect
from typing import Any

import orjson
import pytest

from lake.archive import line
from lake.archive.encode import plan_batch
from lake.errors import MalformedRecordError
from tests.events.factories import stream_record
from tests.raw_zone import iter_object_lines

ODD = ['plain', 'quo"te', 'back\\slash', 'pipe|and=eq', 'ünï\u2603\U0001F600', 'tab\tnl\n', 'x,"record":{', ""]


def test_the_writer_follows_the_declaration() -> None:
    assert list(inspect.signature(line.envelope).parameters) == list(line.NAMES)
    env = line.envelope("t", "k", "1", 2, "INSERT", "i", False)
    assert list(env) == list(line.REQUIRED)
    assert list(line.envelope("t", "k", "1", 2, "INSERT", "i", False, tsrc="arrival")) == list(line.NAMES)


def test_the_line_is_byte_for_byte_the_contract() -> None:
    # docs/CONTRACTS.md: these exact bytes are what Athena, replay and every archived object hold
    record = {"eventID": "e1", "dynamodb": {"Keys": {"pk": {"S": "A"}}, "N": {"N": "1" * 38}}}
    env = line.envelope("orders", "pk=A", "4421584500000000017450439091", 1428537600000000, "MODIFY", "e1", True)
    assert line.write(env, record) == (
        b'{"lake":{"table":"orders","key":"pk=A","seq":"4421584500000000017450439091","t":1428537600000000,'
        b'"event":"MODIFY","id":"e1","ttl":true},"record":{"eventID":"e1","dynamodb":{"Keys":{"pk":{"S":"A"}},'
        b'"N":{"N":"11111111111111111111111111111111111111"}}}}')
    env = line.envelope("t", "k", "1", -5, "REMOVE", "i", False, tsrc="arrival")
    assert line.write(env, {}) == (b'{"lake":{"table":"t","key":"k","seq":"1","t":-5,"event":"REMOVE","id":"i",'
                                   b'"ttl":false,"tsrc":"arrival"},"record":{}}')


def _lines(envs: list[dict[str, Any]], records: list[Any]) -> bytes:
    return b"".join(line.write(e, r) + b"\n" for e, r in zip(envs, records, strict=True))


def test_fast_and_slow_readers_read_what_the_writer_writes() -> None:
    envs = [line.envelope(f"t{i}", key, str(10**30 + i), i - 3, ("INSERT", "MODIFY", "REMOVE")[i % 3], key + "!",
                          i % 2 == 0, tsrc="arrival" if i % 3 == 0 else None) for i, key in enumerate(ODD)]
    records = [{"s": key, "i": i} for i, key in enumerate(ODD)]
    body = _lines(envs, records)
    reader = line.fast_reader(line.NAMES)
    got = reader.columns(body)
    assert got is not None
    columns, recs = got
    assert [orjson.loads(r) for r in recs] == records
    for name in line.NAMES:
        want = [orjson.dumps(e[name]) if name in e else b"" for e in envs]
        texts = [b'"' + v + b'"' if isinstance(e.get(name), str) else v
                 for e, v in zip(envs, columns[name], strict=True)]
        assert texts == want, name
    slow = [line.split(text) for text in body.split(b"\n") if text]
    assert [env for env, _ in slow] == envs and [r for _, r in slow] == list(recs)


def test_the_fast_reader_keeps_only_what_it_is_asked_for() -> None:
    body = _lines([line.envelope("t", "k", "7", 1, "INSERT", "i", False)], [{}])
    reader = line.fast_reader(["seq", "id"])
    assert reader.fields == ("seq", "id")
    assert reader.columns(body) == ({"seq": (b"7",), "id": (b"i",)}, (b"{}",))
    assert reader.columns(b"\n\n") == ({"seq": (), "id": ()}, ())
    with pytest.raises(ValueError, match="not envelope fields"):
        line.fast_reader(["seq", "nope"])


def _reordered(text: bytes) -> bytes:
    env, record = line.split(text)
    return line.HEAD + orjson.dumps(dict(reversed(list(env.items())))) + line.RECORD_SEP + record + b"}"


@pytest.mark.parametrize("mangle", [
    _reordered,  # another field order: allowed, but not the archiver's
    lambda t: t.replace(b'"event":"INSERT"', b'"event":"UPSERT"'),  # not an event name
    lambda t: t.replace(b'"ttl":false', b'"ttl":0'),  # not a boolean
    lambda t: t.replace(b'"seq":"7"', b'"seq":7'),  # a number where the declaration says digits
    lambda t: t + b" ",  # trailing blanks
])
def test_lines_not_as_written_take_the_slow_reader(mangle: Any) -> None:
    text = line.write(line.envelope("t", "k", "7", 1, "INSERT", "i", False), {"a": 1})
    other = mangle(text)
    reader = line.fast_reader(line.NAMES)
    assert reader.columns(text + b"\n") is not None
    assert reader.columns(text + b"\n" + other + b"\n") is None
    _, record = line.split(other)
    assert record == b'{"a":1}'


@pytest.mark.parametrize("bad", [b"not json", b"[1]", b'{"lake":{}}', b'{"record":{},"lake":1}',
                                 b'{"lake":[1],"record":{}}', b'{"lake":{"a":},"record":{}}'])
def test_the_slow_reader_names_what_is_wrong(bad: bytes) -> None:
    with pytest.raises(MalformedRecordError):
        line.split(bad)
    with pytest.raises(ValueError):  # (a MalformedLineError is both)
        line.split(bad)


def test_archiver_output_takes_the_fast_reader() -> None:
    records = [stream_record(i, event=("INSERT", "MODIFY", "REMOVE")[i % 3], ttl=i % 3 == 2) for i in range(30)]
    no_time = stream_record(99)
    del no_time["dynamodb"]["ApproximateCreationDateTime"]  # placed by arrival: "tsrc" in the envelope
    reader = line.fast_reader(line.NAMES)
    for obj in plan_batch([*records, no_time]).objects:
        texts = list(iter_object_lines(obj.body))
        got = reader.columns(b"\n".join(texts))
        assert got is not None
        columns, recs = got
        assert list(recs) == [line.split(t)[1] for t in texts]
        assert [int(s) for s in columns["seq"]] == [int(line.split(t)[0]["seq"]) for t in texts]
