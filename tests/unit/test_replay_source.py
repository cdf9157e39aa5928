"""Reading raw objects for replay: the column-wise fast path gives exactly what the
line-by-line reader gives, falls back to it for lines of another shape, and the GC
helpers leave the collector as they found it. No AWS."""

from __future__ import annotations

import gc
import gzip
import zlib
from typing import Any

import orjson
import pytest

from lake.archive.encode import plan_batch
from lake.archive.keys import RawObjectKey
from lake.aws.storage import MemoryObjectStore
from lake.errors import MalformedRecordError
from lake.records import key_string
from lake.replay import Selection
from lake.replay.engine import frozen_heap
from lake.replay.source import Change, _read_columns, _read_lines, fetch, gc_paused, position_key, read_object
from lake.replay.targets import event_payload
from tests import replay_handlers as h

ODD_PKS = ['plain', 'quo"te', 'back\\slash', 'pipe|and=eq', 'ünï\u2603\U0001F600', 'tab\tnl\n', 'x,"record":{']


def archived(records: list[dict[str, Any]]) -> list[tuple[RawObjectKey, bytes]]:
    out = []
    for obj in plan_batch(records).objects:
        out.append((obj.key, zlib.decompress(obj.body, 31)))
    return out


def odd_history() -> list[dict[str, Any]]:
    """Changes whose keys and images need JSON escapes, over two hours, every event name."""
    recs = []
    for i, pk in enumerate(ODD_PKS * 3):
        event = ("INSERT", "MODIFY", "REMOVE")[i % 3]
        img = {"status": {"S": pk}, "n": {"N": str(i)}}
        recs.append(h.make_record("orders", pk, f"v{i % 2}", event, 10**20 + i, h.T0 + i * 400,
                                  new=img if event != "REMOVE" else None,
                                  old=img if event != "INSERT" else None))
    return recs


SELECTIONS = [
    Selection(),
    Selection(event_names=frozenset({"MODIFY", "REMOVE"})),
    Selection(since_us=(h.T0 + 2000) * 1_000_000),
    Selection(until_us=(h.T0 + 4000) * 1_000_000),
    Selection(since_us=(h.T0 + 800) * 1_000_000, until_us=(h.T0 + 6000) * 1_000_000,
              event_names=frozenset({"INSERT"})),
    Selection(keys=frozenset({'pk=quo"te|sk=v1', "pk=back\\slash|sk=v0", "pk=ünï\u2603\U0001F600|sk=v0"})),
    Selection(filters=(orjson.dumps({"dynamodb": {"NewImage": {"status": {"S": ["plain", 'quo"te']}}}}).decode(),)),
]


@pytest.mark.parametrize("selection", SELECTIONS)
@pytest.mark.parametrize("floor", [None, 10**20 + 5])
def test_columns_equal_lines_on_archiver_output(selection: Selection, floor: int | None) -> None:
    objects = archived(odd_history())
    assert len(objects) >= 2  # two hours: two objects
    total = 0
    for key, body in objects:
        after = {position_key(key.table, key.shard): floor} if floor is not None else None
        fast = _read_columns(key, body, selection, after)
        assert fast is not None  # the archiver's lines take the fast path
        slow = _read_lines(key, body, selection, after)
        assert fast == slow
        assert all(type(c) is Change for c in fast)
        total += len(fast)
    if selection == Selection() and floor is None:
        assert total == len(odd_history())


def test_keys_ids_and_records_are_decoded_exactly() -> None:
    records = odd_history()
    changes = [c for key, body in archived(records) for c in _read_columns(key, body, Selection(), None) or []]
    by_seq = {int(r["dynamodb"]["SequenceNumber"]): r for r in records}
    assert len(changes) == len(records)
    for c in changes:
        rec = by_seq[c.seq]
        assert orjson.loads(c.record) == rec
        assert c.key == key_string(rec["dynamodb"]["Keys"])
        assert (c.id, c.event) == (rec["eventID"], rec["eventName"])
        assert c.t == int(rec["dynamodb"]["ApproximateCreationDateTime"] * 1_000_000)
    assert orjson.loads(event_payload(changes)) == {"Records": [orjson.loads(c.record) for c in changes]}
    assert event_payload([]) == b'{"Records":[]}'


def _reordered(line: bytes) -> bytes:
    """The same line from a writer that orders the envelope's fields differently (allowed)."""
    doc = orjson.loads(line)
    env = dict(reversed(list(doc["lake"].items())))
    return b'{"lake":' + orjson.dumps(env) + line[line.index(b',"record":'):]


@pytest.mark.parametrize(("mangle", "fast"), [
    (lambda lines: [_reordered(lines[0]), *lines[1:]], False),
    (lambda lines: [lines[0], b"   ", *lines[1:]], False),
    (lambda lines: [ln + b"  " for ln in lines], False),
    (lambda lines: [lines[0], b"", *lines[1:]], True),  # an empty line is no line at all
    (lambda lines: [ln + b"\r" for ln in lines], True),
])
def test_other_line_shapes_fall_back_to_the_line_reader(mangle: Any, fast: bool) -> None:
    ((key, body), *_) = archived(odd_history())
    expected = _read_lines(key, body, Selection(), None)
    lines = body.rstrip(b"\n").split(b"\n")
    other = b"\n".join(mangle(lines)) + b"\n"
    assert (_read_columns(key, other, Selection(), None) is not None) == fast
    store = MemoryObjectStore({key.render(): other})
    assert read_object(store, key, Selection()) == expected


def test_crlf_lines_take_the_fast_path_with_the_same_result() -> None:
    ((key, body), *_) = archived(odd_history())
    crlf = body.replace(b"\n", b"\r\n")
    assert _read_columns(key, crlf, Selection(), None) == _read_lines(key, body, Selection(), None)


ENV = b'{"lake":{"table":"orders","key":"%s","seq":"1","t":1,"event":"INSERT","id":"x","ttl":false},"record":{}}'


@pytest.mark.parametrize("bad", [
    b'{"lake":{"table":"orders"}', b'{"nope":1}', b'{"lake":{"seq":"x"},"record":{}}',
    ENV % b"pk=a\tb",  # a raw control character: not JSON
    ENV % b"pk=a\\qb",  # an escape JSON does not have
    ENV % b"pk=\xff",  # not UTF-8
    ENV.replace(b'"t":1,', b'"t":01,') % b"pk=a",  # a leading zero: not a JSON number
])
def test_malformed_lines_are_named(bad: bytes) -> None:
    ((key, body), *_) = archived(odd_history())
    store = MemoryObjectStore({key.render(): body + bad + b"\n"})
    with pytest.raises(MalformedRecordError, match=key.render()):
        read_object(store, key, Selection())


def test_fetch_reads_one_or_several_gzip_members_and_refuses_a_truncated_one() -> None:
    (obj,) = plan_batch(odd_history()[:3]).objects
    text = zlib.decompress(obj.body, 31)

    def fetched(body: bytes) -> bytes:
        return fetch(MemoryObjectStore({obj.key.render(): body}), obj.key)

    assert fetched(obj.body) == text
    assert fetched(obj.body + gzip.compress(b"more\n")) == text + b"more\n"
    assert fetched(text) == text  # not gzip: as stored
    with pytest.raises(MalformedRecordError, match="not valid gzip"):
        fetched(obj.body[:-9])


def test_gc_paused_restores_the_collector_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: left off
    finally:
        gc.enable()


def test_frozen_heap_unfreezes_and_leaves_a_callers_freeze_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()  # a known start, whatever ran before in this process
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), frozen_heap():
        assert gc.get_freeze_count() > 0
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0
    # A caller's own freeze is left alone: no unfreeze. (Counting frozen objects would be racy:
    # other threads of the test process free frozen objects at any time.)
    gc.freeze()
    try:
        calls: list[int] = []
        monkeypatch.setattr(gc, "unfreeze", lambda: calls.append(1))
        with frozen_heap():
            pass
        assert calls == []
    finally:
        monkeypatch.undo()
        gc.unfreeze()


def test_records_placed_by_arrival_time_take_the_fast_path_too() -> None:
    records = odd_history()[:4]
    del records[1]["dynamodb"]["ApproximateCreationDateTime"]  # the envelope then ends with "tsrc"
    for key, body in archived(records):
        fast = _read_columns(key, body, Selection(), None)
        assert fast is not None and fast == _read_lines(key, body, Selection(), None)
