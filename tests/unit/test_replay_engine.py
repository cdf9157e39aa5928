"""The replay loop on an in-memory raw zone written by the real encoder
(``lake.archive.encode.plan_batch``): selection, order, dedupe, targets without AWS,
Lambda-style retries, resume, dry-run. No AWS."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

from lake.archive.encode import plan_batch
from lake.aws.storage import MemoryObjectStore
from lake.errors import ConfigError
from lake.records import key_string, table_name
from lake.replay import ReplayOptions, Selection, Target, checkpoint_path, replay
from lake.replay.handlers import rebuild_item
from lake.settings import Settings
from tests import replay_handlers as h
from tests.clock import ManualClock


class RecordingStore(MemoryObjectStore):
    """A MemoryObjectStore that remembers which prefixes were listed and which objects were read."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__(objects)
        self.listed: list[str] = []
        self.read: list[str] = []

    def list(self, prefix: str, delimiter: str | None = None) -> Iterator[str]:
        self.listed.append(prefix)
        return super().list(prefix, delimiter)

    def get(self, key: str) -> bytes:
        self.read.append(key)
        return super().get(key)


def archive(records: list[dict[str, Any]], batch: int = 7, store: RecordingStore | None = None) -> RecordingStore:
    """What the archiver would have written for these records delivered in ``batch``-sized events."""
    store = store or RecordingStore({})
    for event in h.batches(records, batch):
        plan = plan_batch(event["Records"])
        assert not plan.rejected
        for obj in plan.objects:
            store.objects[obj.key.render()] = obj.body
    return store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=str(tmp_path / "state"))


def run(settings: Settings, store: MemoryObjectStore, selection: Selection | None = None, **opts: Any) -> tuple[
        h.Collector, Any]:
    c = h.Collector()
    report = replay(settings, selection or Selection(), Target.python(c), ReplayOptions(**opts), store=store)
    return c, report


def test_replays_every_record_unaltered_in_stream_order(settings: Settings) -> None:
    records = h.history(items=6, changes=5)
    c, report = run(settings, archive(records), batch_size=4)
    assert c.records == records  # byte-for-byte in meaning: the archived record, unaltered
    assert [len(e["Records"]) for e in c.events] == [4] * 7 + [2]
    assert report.ok and report.events_sent == len(records) and report.batches == 8
    for event in c.events:
        DynamoDBStreamModel.model_validate(event)


def test_filter_by_table_and_event_names(settings: Settings) -> None:
    orders, users = h.history("orders", seed=1), h.history("users", seed=2, start_seq=10**20 + 7)
    store = archive(orders + users)
    c, _ = run(settings, store, Selection(tables=("users",)))
    assert c.records == users
    assert all(p.startswith("raw/table=users/") for p in store.listed)
    c, _ = run(settings, store, Selection(event_names=frozenset({"REMOVE", "INSERT"})))
    expected = [r for r in orders + users if r["eventName"] in ("REMOVE", "INSERT")]
    assert sorted(r["eventID"] for r in c.records) == sorted(r["eventID"] for r in expected)
    assert {r["eventName"] for r in c.records} == {"REMOVE", "INSERT"}


def test_filter_by_time_range_lists_only_needed_partitions(settings: Settings) -> None:
    records = h.history(items=10, changes=8, step_s=1800)  # 80 changes over ~40 hours
    store = archive(records)
    since, until = "2024-05-01T05:00:00Z", "2024-05-01T10:30:00Z"
    c, _ = run(settings, store, Selection.build(since=since, until=until))
    lo, hi = h.T0 + 5 * 3600, h.T0 + 10.5 * 3600
    assert c.records == [r for r in records if lo <= r["dynamodb"]["ApproximateCreationDateTime"] < hi]
    assert store.listed == ["raw/", "raw/table=orders/dt=2024-05-01/"]  # tables found, one day listed
    assert store.read and all(any(f"/hour={hh:02d}/" in k for hh in range(5, 11)) for k in store.read)
    # epoch input reads the same
    c2, _ = run(settings, store, Selection.build(since=str(int(lo)), until=str(hi)))
    assert c2.records == c.records


def test_filter_by_keys_and_keys_file(settings: Settings, tmp_path: Path) -> None:
    records = h.history(items=8, changes=4)
    store = archive(records)
    c, _ = run(settings, store, Selection.build(keys=["sk=v0|pk=item#003"]))
    assert c.records == [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"] == "item#003"]
    f = tmp_path / "keys"
    f.write_text("pk=item#001|sk=v0\n# comment\n{\"pk\":{\"S\":\"item#005\"},\"sk\":{\"S\":\"v0\"}}\n")
    c, _ = run(settings, store, Selection.build(keys_file=f, keys=["pk=item#007|sk=v0"]))
    wanted = {"item#001", "item#005", "item#007"}
    assert c.records == [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"] in wanted]


def test_filter_by_lambda_pattern(settings: Settings) -> None:
    records = h.history(items=8, changes=5)
    store = archive(records)
    pattern = {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["late", "paid"]}}}}
    removes = {"eventName": ["REMOVE"]}
    c, _ = run(settings, store, Selection.build(filters=[pattern, removes]))  # repeated = OR
    expected = [r for r in records if r["eventName"] == "REMOVE" or (
        r["eventName"] == "MODIFY" and r["dynamodb"]["NewImage"]["status"]["S"] in ("late", "paid"))]
    assert expected and c.records == expected


def test_order_across_shards_objects_and_batches_with_duplicates(settings: Settings) -> None:
    # table "orders" streamed under two labels (stream re-enabled), plus table "users"; the
    # archiver saw overlapping, re-delivered batches (at-least-once) written in random order.
    old = h.history("orders", items=5, changes=6, seed=3)
    t_new = old[-1]["dynamodb"]["ApproximateCreationDateTime"] + 60
    new = h.history("orders", items=5, changes=6, seed=4, start_seq=10**20, t0=t_new,
                    label="2024-05-02T00:00:00.000")
    users = h.history("users", items=4, changes=6, seed=5, start_seq=10**21)
    store = RecordingStore({})
    for recs in (old, new, users):
        archive(recs, batch=5, store=store)
        for start in (2, 11):  # a retried delivery with different batch boundaries
            archive(recs[start:start + 6], batch=6, store=store)
    shuffled = list(store.objects.items())
    random.Random(1).shuffle(shuffled)
    store.objects = dict(shuffled)

    c, report = run(settings, store, batch_size=7)
    got = c.records
    assert report.duplicates_dropped == 36
    assert sorted(r["eventID"] for r in got) == sorted(r["eventID"] for r in old + new + users)
    for stream in (old, new, users):  # each stream in sequence order (compared numerically)
        ids = {r["eventID"] for r in stream}
        seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in got if r["eventID"] in ids]
        assert seqs == sorted(seqs)
    # per item, across the two streams of "orders": the old stream's changes come first
    for key in {key_string(r["dynamodb"]["Keys"]) for r in old + new}:
        mine = [r["eventID"] for r in got if table_name(r) == "orders" and key_string(r["dynamodb"]["Keys"]) == key]
        assert mine == [r["eventID"] for r in old + new if key_string(r["dynamodb"]["Keys"]) == key]
    assert all(len(e["Records"]) <= 7 for e in c.events)


def test_powertools_partial_failures_are_retried_from_the_lowest_item(settings: Settings) -> None:
    records = h.history(items=4, changes=5)
    flaky, broken = records[5]["eventID"], records[13]["eventID"]
    consumer = h.PowertoolsConsumer(fail={flaky: 2, broken: 99})
    report = replay(settings, Selection(), Target.python(consumer), store=archive(records),
                    options=ReplayOptions(batch_size=10, max_retries=3, retry_backoff_s=0))
    # the flaky record succeeded on its third attempt; the broken one never did
    assert [f.event_id for f in report.failures] == [r["eventID"] for r in records[13:20]]
    f = report.failures[0]
    assert f.sequence_number == str(int(records[13]["dynamodb"]["SequenceNumber"])) and f.attempts == 4
    assert f.table == "orders" and f.key == key_string(records[13]["dynamodb"]["Keys"]) and f.shard
    assert "batchItemFailures" in f.reason
    # Powertools processes a whole batch, so items after a failed one ran and, as on Lambda,
    # run again when the batch is retried from the lowest failed item (at-least-once)
    assert consumer.processed[:5] == [r["eventID"] for r in records[:5]]
    assert consumer.processed.count(flaky) == 1
    assert {r["eventID"] for r in records[:13]} <= set(consumer.processed)
    assert broken not in consumer.processed
    assert consumer.responses[0]["batchItemFailures"] == [
        {"itemIdentifier": records[5]["dynamodb"]["SequenceNumber"]}]
    assert report.events_sent == 13 and report.retries == 2 + 3 and not report.ok


def test_handler_exception_fails_the_whole_batch_then_is_reported(settings: Settings) -> None:
    calls: list[int] = []

    def broken(event: dict[str, Any], context: Any) -> None:
        calls.append(len(event["Records"]))
        raise RuntimeError("downstream is down")

    records = h.history(items=2, changes=3)
    report = replay(settings, Selection(), Target.python(broken), store=archive(records),
                    options=ReplayOptions(batch_size=4, max_retries=1, retry_backoff_s=0))
    assert calls == [4, 4, 2, 2]
    assert len(report.failures) == 6 and report.events_sent == 0
    assert all(f.reason == "RuntimeError: downstream is down" for f in report.failures)


def test_resume_after_interruption_has_no_gaps_and_no_duplicates(settings: Settings) -> None:
    records = h.history(items=6, changes=6)
    store = archive(records)
    target = Target.python(h.InterruptAfter(3), "tests.replay_handlers:resume")
    first = target.handler
    assert isinstance(first, h.InterruptAfter)
    with pytest.raises(KeyboardInterrupt):
        replay(settings, Selection(), target, ReplayOptions(batch_size=5), store=store)
    assert len(first.records) == 15
    cp = orjson.loads(checkpoint_path(settings, Selection(), target).read_bytes())
    assert cp["events_sent"] == 15 and not cp["complete"]

    second = h.Collector()
    same_name = Target.python(second, "tests.replay_handlers:resume")  # same target: same checkpoint
    report = replay(settings, Selection(), same_name, ReplayOptions(batch_size=5, resume=True), store=store)
    assert first.records + second.records == records
    assert report.resumed_from == 15 and report.events_sent == len(records) - 15
    # resuming a finished replay sends nothing more; without --resume it starts over
    third = h.Collector()
    replay(settings, Selection(), Target.python(third, "tests.replay_handlers:resume"),
           ReplayOptions(resume=True), store=store)
    assert third.records == []
    replay(settings, Selection(), Target.python(third, "tests.replay_handlers:resume"), store=store)
    assert third.records == records


def test_dry_run_counts_and_samples_but_sends_nothing(settings: Settings, tmp_path: Path) -> None:
    records = h.history(items=5, changes=4)
    out = tmp_path / "events"
    report = replay(settings, Selection(event_names=frozenset({"INSERT"})), f"file:{out}",
                    ReplayOptions(dry_run=True, batch_size=2), store=archive(records))
    inserts = [r for r in records if r["eventName"] == "INSERT"]
    assert report.dry_run and report.events_sent == 0 and report.events_selected == len(inserts)
    assert report.batches == 3 and list(report.sample) == inserts[:3]
    assert not out.exists() and not Path(settings.state_dir).exists()


def test_file_targets_write_one_event_per_batch_or_per_line(settings: Settings, tmp_path: Path) -> None:
    records = h.history(items=3, changes=4)
    store = archive(records)
    replay(settings, Selection(), f"file:{tmp_path / 'dir'}", ReplayOptions(batch_size=5), store=store)
    files = sorted((tmp_path / "dir").iterdir())
    assert [f.name for f in files] == ["batch-000001.json", "batch-000002.json", "batch-000003.json"]
    assert [r for f in files for r in orjson.loads(f.read_bytes())["Records"]] == records
    replay(settings, Selection(), f"file:{tmp_path / 'out.jsonl'}", ReplayOptions(batch_size=5), store=store)
    lines = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert [r for line in lines for r in orjson.loads(line)["Records"]] == records


def test_module_handler_by_name_and_rate_limit(settings: Settings) -> None:
    records = h.history(items=3, changes=4)
    h.SEEN.clear()
    clock = ManualClock()
    report = replay(settings, Selection(), "python:tests.replay_handlers:module_handler",
                    ReplayOptions(batch_size=4, rate=2.0), store=archive(records), clock=clock)
    assert [r for e in h.SEEN for r in e["Records"]] == records
    # 3 batches of 4 at 2 events/s: the 2nd may start at 2 s, the 3rd at 4 s
    assert clock.slept == [2.0, 2.0] and report.elapsed_s == 4.0


def test_retries_back_off_exponentially_on_the_clock(settings: Settings) -> None:
    def broken(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("downstream is down")

    clock = ManualClock()
    report = replay(settings, Selection(), Target.python(broken), store=archive(h.history(items=2, changes=2)),
                    options=ReplayOptions(batch_size=10, max_retries=3, retry_backoff_s=0.5), clock=clock)
    assert clock.slept == [0.5, 1.0, 2.0] and report.retries == 3 and len(report.failures) == 4


def test_a_reply_that_is_not_an_object_is_a_success_but_a_malformed_list_is_not(settings: Settings) -> None:
    # replay cannot know if the function has ReportBatchItemFailures on: only an object speaks
    records = h.history(items=2, changes=2)
    replies = iter(["done", {"batchItemFailures": "all of them"}])
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        calls.append(len(event["Records"]))
        return next(replies, None)

    report = replay(settings, Selection(), Target.python(handler), store=archive(records),
                    options=ReplayOptions(batch_size=2, retry_backoff_s=0))
    # batch 1 "done": acknowledged; batch 2 malformed: whole batch retried, then acknowledged
    assert calls == [2, 2, 2] and report.ok and report.retries == 1 and report.events_sent == 4


def test_refuses_non_local_targets_without_confirmation(settings: Settings) -> None:
    store = archive(h.history(items=1, changes=1))
    assert not settings.is_local
    with pytest.raises(ConfigError, match="--yes"):
        replay(settings, Selection(), "lambda:prod-fn", store=store)
    asked: list[str] = []

    def decline(message: str) -> bool:
        asked.append(message)
        return False

    with pytest.raises(ConfigError, match="refusing"):
        replay(settings, Selection(), "sqs:q", ReplayOptions(confirm=decline), store=store)
    assert asked and "sqs:q" in asked[0]
    # confirmed: it goes ahead (to an injected sender, so no AWS is touched)
    from lake.replay.targets import NullSender

    sink = NullSender()
    report = replay(settings, Selection(), "kinesis:s", ReplayOptions(yes=True), store=store, sender=sink)
    assert report.events_sent == sink.events == 1


def test_rebuild_item_applies_the_history(settings: Settings) -> None:
    records = h.history(items=6, changes=5, seed=11)
    store = archive(records)
    final: dict[str, Any] = {}
    for r in records:
        key = key_string(r["dynamodb"]["Keys"])
        final[key] = r["dynamodb"].get("NewImage") if r["eventName"] != "REMOVE" else None
    assert None in final.values()  # the history removes at least one item
    for key, expected in final.items():
        item, report = rebuild_item(settings, "orders", key, store=store)
        assert item == expected and report.ok


def test_a_batch_never_mixes_two_streams() -> None:
    from lake.replay.engine import batch_chunks, iter_batches
    from lake.replay.source import Change

    def change(pos: str, seq: int) -> Change:
        return Change(seq, seq, f"{pos}-{seq}", "k", "INSERT", pos, "s", pos, b"{}")

    changes = [change("a", 1), change("a", 2), change("b", 1), change("b", 2), change("b", 3)]
    for batches in (list(iter_batches(changes, 10, None)), list(iter_batches(changes, 10, 10**6)),
                    list(batch_chunks([changes[:2], changes[2:]], 10, None))):
        assert [[c.id for c in b] for b in batches] == [["a-1", "a-2"], ["b-1", "b-2", "b-3"]]
