"""The columnar conversion against the per-record reference, on random workloads."""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pytest

from lake.curate import parse as parsing
from lake.curate import pool
from lake.curate.arrays import Unsupported
from lake.curate.columnar import Converted, convert
from lake.curate.columns import ColumnType
from lake.curate.decode import Change, Coordinates, decode, unwrap
from lake.curate.history_columns import b64_binary
from lake.curate.tables import HistoryColumn, HistorySchema, changes_table, history_table

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/{t}/stream/2024-01-01T00:00:00.000"
TTL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
TEXT = string.ascii_letters + string.digits + ' "\\/\n\t\x01é€😀#|='


def _s(rng: random.Random) -> str:
    return "".join(rng.choice(TEXT) for _ in range(rng.randint(0, 8)))


def _n(rng: random.Random, kind: str) -> str:
    if kind == "int":
        return str(rng.randint(-10**6, 10**6))
    if kind == "big":
        return rng.choice(["9" * 38, "-" + "1" * 38, "12345678901234567890"])
    if kind == "dec":
        return f"{rng.randint(-999, 999)}.{rng.randint(0, 999):03d}".rstrip("0").rstrip(".") or "0"
    return rng.choice(["1e5", "-2.5E-3", "0.000001", "3"])  # exponent forms take the slow path


def _b(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(rng.randint(0, 7))).decode()


def value(rng: random.Random, tag: str, depth: int = 0) -> dict[str, Any]:
    """A typed value of one tag; M/L nest (keys in a fixed order, as one writer emits them)."""
    if tag == "S":
        return {"S": _s(rng)}
    if tag == "N":
        return {"N": _n(rng, rng.choice(["int", "big", "dec"]))}
    if tag == "B":
        return {"B": _b(rng)}
    if tag == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if tag == "NULL":
        return {"NULL": True}
    if tag == "SS":
        return {"SS": sorted({_s(rng) + "x" for _ in range(rng.randint(1, 3))})}
    if tag == "NS":
        return {"NS": [_n(rng, "dec") for _ in range(rng.randint(1, 3))]}
    if tag == "BS":
        return {"BS": [_b(rng) for _ in range(rng.randint(1, 3))]}
    inner = ["S", "N", "BOOL", "NULL", "SS", "B"] + (["M", "L"] if depth < 2 else [])
    if tag == "M":
        names = [f"f{i}" for i in range(4) if rng.random() < 0.7]
        return {"M": {name: value(rng, inner[int(name[1:]) % len(inner)], depth + 1) for name in names}}
    return {"L": [value(rng, rng.choice(inner), depth + 1) for _ in range(rng.randint(0, 3))]}


# attribute → the tags it takes (a second tag: a conflict that widens the column to string)
ATTRS: dict[str, list[str]] = {
    "s": ["S"], "n_int": ["N"], "n_big": ["N"], "n_dec": ["N"], "b": ["B"], "flag": ["BOOL"],
    "ss": ["SS"], "ns": ["NS"], "bs": ["BS"], "m": ["M"], "l": ["L"], "nothing": ["NULL"],
    "maybe_null": ["S", "NULL"], "mixed": ["N", "S", "BOOL", "SS", "M"], "late": ["S"], "Event_ID": ["S"],
}


def image(rng: random.Random, i: int, n: int, pk: str, sk: int) -> dict[str, Any]:
    img: dict[str, Any] = {"pk": {"S": pk}, "sk": {"N": str(sk)}}
    for attr, tags in ATTRS.items():
        if attr == "late" and i < n // 2:
            continue  # appears mid-batch
        if rng.random() < 0.25:
            continue
        tag = tags[0] if len(tags) == 1 or rng.random() < 0.6 else rng.choice(tags)
        if attr.startswith("n_"):
            img[attr] = {"N": _n(rng, attr[2:])}
        else:
            img[attr] = value(rng, tag)
    return img


def record(rng: random.Random, i: int, n: int, table: str) -> dict[str, Any]:
    pk, sk = f"P#{rng.randint(0, 5)}", rng.randint(0, 3)
    keys = {"pk": {"S": pk}, "sk": {"N": str(sk)}}
    kind = rng.choice(["INSERT", "MODIFY", "MODIFY", "REMOVE", "TTL", "KEYS"])
    ddb: dict[str, Any] = {"Keys": keys, "SizeBytes": rng.randint(10, 400)}
    name = {"TTL": "REMOVE", "KEYS": rng.choice(["INSERT", "MODIFY", "REMOVE"])}.get(kind, kind)
    if kind in ("INSERT", "MODIFY"):
        ddb["NewImage"] = image(rng, i, n, pk, sk)
    if kind in ("MODIFY", "REMOVE", "TTL"):
        old = image(rng, i, n, pk, sk)
        if kind == "MODIFY":  # mostly the same item: a few attributes change
            old = {k: (v if rng.random() < 0.7 else value(rng, "S")) for k, v in ddb["NewImage"].items()}
        ddb["OldImage"] = old
    rec: dict[str, Any] = {"eventID": f"ev-{i:06d}", "eventName": name, "awsRegion": "us-east-1",
                           "eventSource": "aws:dynamodb", "dynamodb": ddb}
    if kind == "TTL":
        rec["userIdentity"] = TTL
    elif rng.random() < 0.1:
        rec["userIdentity"] = {"type": "User", "principalId": "someone"}
    if table == "native":  # Kinesis Data Streams for DynamoDB: ms or µs, no SequenceNumber
        rec["tableName"] = table
        rec["recordFormat"] = "application/json"
        if rng.random() < 0.5:
            ddb["ApproximateCreationDateTime"] = 1_721_011_165_891_550 + i * 1_000_003_000
            ddb["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
        else:
            ddb["ApproximateCreationDateTime"] = 1_721_011_222_526 + i * 86_400_00
    else:
        rec["eventSourceARN"] = ARN.format(t=table)
        # Lambda's DynamoDB Streams records: whole seconds, or seconds with a fraction
        ddb["ApproximateCreationDateTime"] = 1_700_000_000 + i * 3_000 + rng.choice([0, 0, 0.5, 0.123457])
        ddb["SequenceNumber"] = str(10**20 + i)
    return rec


def workload(seed: int, n: int) -> list[tuple[bytes, str | None]]:
    """(payload, envelope table) per Kinesis record: fan-out envelopes, bare DynamoDB Streams
    records and native KDS-for-DynamoDB records, with some redeliveries."""
    rng = random.Random(seed)
    out: list[tuple[bytes, str | None]] = []
    for i in range(n):
        table = rng.choice(["orders", "orders", "users", "native"])
        rec = record(rng, i, n, table)
        enveloped = table != "native" and rng.random() < 0.5
        out.append((orjson.dumps(rec), table if enveloped else None))
    for j in rng.sample(range(n), n // 20):  # redelivered copies
        out.append(out[j])
    return out


def reference(payloads: Sequence[tuple[bytes, str | None]]) -> dict[str, list[Change]]:
    seen: set[str] = set()
    by_table: dict[str, list[Change]] = {}
    for i, (body, table) in enumerate(payloads):
        coords = Coordinates("shardId-000000000001", str(1000 + i))
        doc = orjson.loads(body)
        got = unwrap({"lake": {"v": 1, "table": table}, "record": doc} if table else doc, coords)
        assert isinstance(got, tuple)
        change = decode(got[0], got[1], coords)
        if change.event_id not in seen:
            seen.add(change.event_id)
            by_table.setdefault(change.table, []).append(change)
    return by_table


def columnar(payloads: Sequence[tuple[bytes, str | None]]) -> Converted:
    n = len(payloads)
    return convert([b for b, _ in payloads], [t for _, t in payloads], ["shardId-000000000001"] * n,
                   [str(1000 + i) for i in range(n)])


def _json(values: list[Any]) -> list[Any]:
    def load(v: str | None) -> Any:
        try:
            return None if v is None else json.loads(v, parse_float=Decimal)
        except ValueError:
            return v  # a widened column's plain text

    return [load(v) for v in values]


def assert_tables_equal(want: pa.Table, got: pa.Table, json_columns: Collection[str] = ()) -> None:
    """Equal tables; ``json_columns`` equal as JSON values (member order may differ: the
    columnar path writes members in the batch's first-appearance order)."""
    assert got.schema == want.schema
    for name in want.column_names:
        a, b = got.column(name).to_pylist(), want.column(name).to_pylist()
        if name in json_columns:
            a, b = _json(a), _json(b)
        assert a == b, name


IMAGES = ("old_image", "new_image")
TEXT_ATTRS = ("m", "l", "mixed")  # M/L typed JSON text (mixed: widened, holds M text too)


@pytest.mark.parametrize("parallel", [False, True], ids=["one-thread", "threads"])
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_columnar_equals_reference_on_random_workloads(seed: int, parallel: bool,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``threads``: parsed in two halves and built on the pool, as large batches are."""
    monkeypatch.setattr(parsing, "_split_parse", lambda n: parallel)
    monkeypatch.setattr(pool, "POOL_MIN", 0 if parallel else 10**9)
    payloads = workload(seed, 300)
    want = reference(payloads)
    got = columnar(payloads)
    assert [t.source for t in got.tables] == list(want)
    assert got.duplicates == len(payloads) - sum(len(v) for v in want.values())
    schemas: dict[str, HistorySchema] = {}
    for part in got.tables:
        rows = want[part.source]
        assert_tables_equal(changes_table(rows), part.changes(), IMAGES)
        ref = history_table(rows, HistorySchema())
        mine = part.history(HistorySchema())
        assert_tables_equal(ref.table, mine.table, TEXT_ATTRS)
        assert mine.schema == ref.schema and mine.added == ref.added
        schemas[part.source] = ref.schema
        assert [c for _, _, c in part.coordinates()] == [c.event_id for c in rows]
    # a second batch against the evolved schemas: fixed decimal scales, widening, known columns
    later = workload(seed + 100, 200)
    want2, got2 = reference(later), columnar(later)
    for part in got2.tables:
        existing = schemas.get(part.source, HistorySchema())
        ref = history_table(want2[part.source], existing)
        mine = part.history(existing)
        assert_tables_equal(ref.table, mine.table, TEXT_ATTRS)
        assert mine.schema == ref.schema and mine.widened == ref.widened and mine.added == ref.added


def test_parsing_in_two_halves_gives_the_batch_parse() -> None:
    """Halves whose inferences differ (a field missing or all null in one, a struct's members
    appearing late) merge into what one parse gives; halves that disagree on a kind (int
    here, double there) are parsed again as one batch."""
    bodies = [b for b, _ in workload(11, 300)]
    assert parsing.parse(bodies, split=True).equals(parsing.parse(bodies, split=False))
    recs = [{"a": i, "s": None if i < 5 else "x", "m": {"p": 1} if i < 5 else {"q": [1.5]}} for i in range(10)]
    mixed = [orjson.dumps(r) for r in recs] + [orjson.dumps({"a": 0.5})]
    for batch in ([orjson.dumps(r) for r in recs], mixed):
        whole = parsing.parse(batch, split=False)
        halves = parsing.parse(batch, split=True)
        assert halves.type == whole.type and halves.to_pylist() == whole.to_pylist()
    assert parsing.parse(mixed, split=False).type.field("a").type == pa.float64()


def test_known_column_types_are_kept_or_widened_as_the_reference_does() -> None:
    payloads = workload(7, 120)
    existing = HistorySchema({
        "n_dec": HistoryColumn("n_dec", "n_dec", ColumnType("decimal(38,1)", "N")),  # too few digits
        "n_int": HistoryColumn("n_int", "n_int", ColumnType("decimal(38,0)", "N")),
        "s": HistoryColumn("s", "s", ColumnType("bigint", "N")),  # S in an N column
        "gone": HistoryColumn("gone", "gone", ColumnType("boolean", "BOOL")),
        "ns": HistoryColumn("ns", "ns", ColumnType("array<decimal(38,3)>", "NS")),
    })
    want = reference(payloads)
    for part in columnar(payloads).tables:
        ref = history_table(want[part.source], existing)
        mine = part.history(existing)
        assert_tables_equal(ref.table, mine.table, TEXT_ATTRS)
        assert mine.widened == ref.widened and set(ref.widened) >= {"s"}


def test_attribute_order_differing_between_records_keeps_the_json_value() -> None:
    rng = random.Random(5)
    payloads = workload(5, 100)
    shuffled = []
    for body, table in payloads:
        rec = orjson.loads(body)
        for side in ("NewImage", "OldImage"):
            img = rec["dynamodb"].get(side)
            if img:
                items = list(img.items())
                rng.shuffle(items)
                rec["dynamodb"][side] = dict(items)
        shuffled.append((orjson.dumps(rec), table))
    want = reference(shuffled)
    for part in columnar(shuffled).tables:
        assert_tables_equal(changes_table(want[part.source]), part.changes(), IMAGES)


def test_one_writers_order_is_kept_byte_for_byte() -> None:
    """Records listing their attributes in one order (all present): the same text."""
    rng = random.Random(3)
    recs = []
    for i in range(50):
        img = {"pk": {"S": f"k{i}"}, "z": {"N": str(i)}, "a": {"M": {"y": {"S": "é\"\n"}, "b": {"NULL": True}}},
               "m": {"L": [{"N": "1.50"}, {"SS": ["x"]}]}, "s": {"S": _s(rng)}}
        recs.append((orjson.dumps({**BASE, "eventID": f"e{i}", "dynamodb": {**BASE["dynamodb"], "NewImage": img}}),
                     None))
    want = reference(recs)["orders"]
    (part,) = columnar(recs).tables
    assert part.changes().column("new_image").to_pylist() == changes_table(want).column("new_image").to_pylist()
    ref = history_table(want, HistorySchema()).table
    assert part.history(HistorySchema()).table.equals(ref)


def _one(rec: Mapping[str, Any]) -> list[tuple[bytes, str | None]]:
    good = [(orjson.dumps(r), None) for r in (record(random.Random(i), i, 10, "orders") for i in range(10))]
    return [*good, (orjson.dumps(rec), None)]


BASE: dict[str, Any] = {"eventID": "x", "eventName": "INSERT", "eventSourceARN": ARN.format(t="orders"),
        "dynamodb": {"ApproximateCreationDateTime": 1_700_000_000, "Keys": {"pk": {"S": "a"}}}}


@pytest.mark.parametrize("bad", [
    {**BASE, "dynamodb": {**BASE["dynamodb"], "NewImage": {"a": {"X": "1"}}}},  # unknown tag
    {**BASE, "dynamodb": {**BASE["dynamodb"], "NewImage": {"a": {"N": "12abc"}}}},  # not a number
    {**BASE, "dynamodb": {**BASE["dynamodb"], "NewImage": {"a": {"N": 5}}}},  # kind conflict
    {**BASE, "dynamodb": {**BASE["dynamodb"], "NewImage": {"a": "plain"}}},  # not typed JSON
    {**BASE, "dynamodb": {**BASE["dynamodb"], "NewImage": {"a": {"S": "x", "N": "1"}}}},  # two tags
    {**BASE, "dynamodb": {**BASE["dynamodb"], "Keys": {"pk": {"BOOL": True}}}},  # key of another type
    {**BASE, "dynamodb": {**BASE["dynamodb"], "NewImage": {"a": {"B": "abc"}}}},  # no base64 decoder takes it
    {**BASE, "dynamodb": {**BASE["dynamodb"], "NewImage": {"a": {"BS": ["AAE=", "x"]}}}},
    {**BASE, "dynamodb": {**BASE["dynamodb"], "Keys": {"pk": {"B": "a|b"}}}},  # keys-only: the item's B key
    {**BASE, "eventName": "UPSERT"},
    {**BASE, "dynamodb": {"Keys": {"pk": {"S": "a"}}}},  # no time
    {"hello": "world"},
])
def test_what_the_reference_would_reject_takes_the_reference_path(bad: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        columnar(_one(bad))


def test_a_payload_that_is_not_one_json_line_takes_the_reference_path() -> None:
    good = _one(BASE)[:-1]
    for body in (b"not json", b'{"a":\n1}', b"[1,2]", orjson.dumps(BASE) + b"\n" + orjson.dumps(BASE)):
        with pytest.raises(Unsupported):
            columnar([*good, (body, None)])


def test_base64_is_decoded_for_the_whole_column_at_once() -> None:
    values = [base64.b64encode(bytes(range(k))).decode() for k in range(12)] + [None, ""]
    got = b64_binary(pa.array(values, pa.string()))
    assert got.to_pylist() == [None if v is None else base64.b64decode(v) for v in values]


def test_keys_with_separators_are_escaped_as_key_string() -> None:
    from lake.records import key_string

    ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
    keys = [{"pk": {"S": "a|sk=c"}, "sk": {"S": "d"}}, {"pk": {"S": "a"}, "sk": {"S": "c|sk=d"}},
            {"pk": {"S": "back\\slash"}, "sk": {"S": "x"}}]
    payloads = [(orjson.dumps({"eventID": f"e{i}", "eventName": "INSERT", "eventSource": "aws:dynamodb",
                               "awsRegion": "us-east-1", "eventSourceARN": ARN,
                               "dynamodb": {"ApproximateCreationDateTime": 1700000000, "Keys": k, "NewImage": k,
                                            "SequenceNumber": str(100 + i), "SizeBytes": 10,
                                            "StreamViewType": "NEW_IMAGE"}}), None)
                for i, k in enumerate(keys)]
    (part,) = columnar(payloads).tables
    got = part.changes().column("key").to_pylist()
    assert got == [key_string(k) for k in keys] == [c.key for c in reference(payloads)["orders"]]
    assert len(set(got)) == 3


def test_a_binary_key_that_is_not_base64_is_escaped_as_the_reference_does() -> None:
    # (B keys are not checked for base64 where an image is the history's item: "a|b" must
    # still render escaped; a keys-only record with such a key is quarantined, see below)
    payloads = [(orjson.dumps({**BASE, "eventID": f"e{i}", "dynamodb": {
        **BASE["dynamodb"], "Keys": {"pk": {"B": v}}, "NewImage": {"x": {"S": v}}}}), None)
        for i, v in enumerate(["a|b", "c\\d", "AAE="])]
    (part,) = columnar(payloads).tables
    assert part.changes().column("key").to_pylist() == [c.key for c in reference(payloads)["orders"]] \
        == ["pk=a\\|b", "pk=c\\\\d", "pk=AAE="]


def _own_attributes(payloads: list[tuple[bytes, str | None]]) -> list[tuple[bytes, str | None]]:
    """Each table's images renamed to attributes of its own (``users`` → ``users_s``...)."""
    out = []
    for body, table in payloads:
        rec = orjson.loads(body)
        prefix = table or rec.get("tableName") or rec["eventSourceARN"].split("/")[1]
        for side in ("NewImage", "OldImage"):
            img = rec["dynamodb"].get(side)
            if img:
                rec["dynamodb"][side] = {(k if k in ("pk", "sk") else f"{prefix}_{k}"): v for k, v in img.items()}
        out.append((orjson.dumps(rec), table))
    return out


@pytest.mark.parametrize("enveloped", [False, True])
def test_each_source_table_gets_only_its_own_history_columns(enveloped: bool) -> None:
    """A batch of several tables with different attributes: a table's history holds only the
    attributes its own records have (bare records share one parse, split afterwards)."""
    payloads = _own_attributes(workload(21, 300))
    if not enveloped:
        payloads = [(b, None) for b, _ in payloads]
    want = reference(payloads)
    got = columnar(payloads)
    assert [t.source for t in got.tables] == list(want)
    for part in got.tables:
        ref = history_table(want[part.source], HistorySchema())
        mine = part.history(HistorySchema())
        assert mine.schema == ref.schema and mine.added == ref.added and mine.widened == ref.widened
        assert_tables_equal(ref.table, mine.table, tuple(a for a in ref.table.column_names if a.endswith(TEXT_ATTRS)))
        assert_tables_equal(changes_table(want[part.source]), part.changes(), IMAGES)


def kinesis_records(payloads: Sequence[tuple[bytes, str | None]]) -> list[dict[str, Any]]:
    """Lambda Kinesis event records: the fan-out envelope where a table is given, else bare."""
    from lake.fanout import wire

    out = []
    for i, (body, table) in enumerate(payloads):
        data = wire.envelope(orjson.loads(body), table) if table else body
        seq = str(1000 + i)
        out.append({"kinesis": {"sequenceNumber": seq, "data": base64.b64encode(data).decode()},
                    "eventID": f"shardId-000000000001:{seq}"})
    return out


def _rows(monkeypatch: pytest.MonkeyPatch, records: list[dict[str, Any]], min_records: int
          ) -> tuple[list[Any], Any]:
    from lake.curate import consumer
    from lake.settings import Settings

    monkeypatch.setattr(consumer, "COLUMNAR_MIN_RECORDS", min_records)
    result = consumer.CurateResult()
    parts = consumer.convert_batch(Settings.resolve({}, environ={}, config_path=None), None,  # type: ignore[arg-type]
                                   records, result)
    return parts, result


@pytest.mark.parametrize("columnar_groups", [1, 3])
@pytest.mark.parametrize("seed", [31, 32])
def test_convert_batch_by_groups_equals_the_per_record_path(seed: int, columnar_groups: int,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Envelope groups above the threshold go columnar (the next one parsed on the pool
    meanwhile), the others record by record: the same parts, in the same order, as the
    per-record path gives the whole batch."""
    payloads = [(b, None if t is None and b"tableName" in b else t or orjson.loads(b)["eventSourceARN"].split("/")[1])
                for b, t in _own_attributes(workload(seed, 400))]  # orders, users: enveloped; native: bare
    records = kinesis_records(payloads)
    want, want_result = _rows(monkeypatch, records, 10**9)
    sizes = sorted(sum(1 for _, t in payloads if t == table) for table in ("orders", "users", None))
    got, got_result = _rows(monkeypatch, records, sizes[-columnar_groups])  # the largest groups: columnar
    assert sorted(type(p).__name__ for p in got) == sorted(
        ["RecordRows"] * (3 - columnar_groups) + ["TableSlice"] * columnar_groups)
    assert [p.source for p in got] == [p.source for p in want]
    assert got_result.duplicates == want_result.duplicates > 0
    for mine, ref in zip(got, want, strict=True):
        assert_tables_equal(ref.changes(), mine.changes(), IMAGES)
        r, m = ref.history(HistorySchema()), mine.history(HistorySchema())
        assert m.schema == r.schema
        assert_tables_equal(r.table, m.table, tuple(a for a in r.table.column_names if a.endswith(TEXT_ATTRS)))
        assert mine.coordinates() == ref.coordinates()


def test_an_event_in_two_groups_takes_the_per_record_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same change enveloped and bare (a replay beside the fan-out): the reference keeps
    its first copy only, so the batch is converted record by record."""
    payloads: list[tuple[bytes, str | None]] = [
        (b, "orders") for b, _ in workload(41, 150)
        if orjson.loads(b).get("eventSourceARN", "").endswith("/orders/stream/2024-01-01T00:00:00.000")]
    payloads.append((payloads[0][0], None))
    got, result = _rows(monkeypatch, kinesis_records(payloads), 10)
    assert [type(p).__name__ for p in got] == ["RecordRows"]
    assert result.duplicates == 1 + len(payloads) - 1 - len(got[0].rows)


def test_children_tags_are_remembered_per_array_within_a_conversion() -> None:
    from lake.curate import tags

    struct = pa.array([{"a": {"N": "1"}}, {"a": {"S": "x"}}])
    twin = pa.array([{"a": {"N": "1"}}, {"a": {"S": "x"}}])
    assert tags.children_tags(struct) is not tags.children_tags(struct)  # outside: nothing kept
    with tags.remembered():
        first = tags.children_tags(struct)
        assert tags.children_tags(struct) is first
        assert tags.children_tags(twin) is not first and tags.children_tags(twin) == first
    assert not tags._remembered
    bad = pa.array([{"a": {"N": "x1"}}])
    with tags.remembered(), pytest.raises(Unsupported):
        tags.children_tags(bad)


def _kinesis_one(rec: dict[str, Any], seq: int) -> dict[str, Any]:
    from lake.fanout import wire

    return {"kinesis": {"sequenceNumber": str(seq), "data": base64.b64encode(wire.envelope(rec, "orders")).decode()},
            "eventID": f"shardId-000000000001:{seq}"}


@pytest.mark.parametrize("bad", [
    {"a": {"N": "12abc"}},  # not a number: the image text refuses it
    {"a": {"S": 5}},  # a string column cannot hold it
    {"a": {"BOOL": "yes"}},
    {"a": {"B": "abc"}},  # no base64 decoder takes it
    {"a": {"BS": ["AAE=", "x"]}},
    {"a": {"SS": ["x", 1]}},
    {"a": {"S": "x", "N": "1"}},  # two tags
    {"a": {"X": "1"}},  # an unknown tag
    {"a": "plain"},
])
def test_a_value_no_table_can_hold_quarantines_its_record_alone(bad: dict[str, Any]) -> None:
    """The per-record path refuses the record at decoding (its reason kept), so its
    neighbours' tables build; before, the whole table's part failed (or crashed) later."""
    from lake.curate import consumer
    from lake.curate.decode import Change
    from lake.settings import Settings

    good = [record(random.Random(i), i, 10, "orders") for i in range(10)]
    broken = {**BASE, "eventID": "bad", "dynamodb": {**BASE["dynamodb"], "NewImage": {"pk": {"S": "a"}, **bad}}}
    records = [_kinesis_one(r, i) for i, r in enumerate([*good[:5], broken, *good[5:]])]
    result = consumer.CurateResult()
    rejected: list[Any] = []
    changes = consumer.decode_batch(Settings.resolve({}, environ={}, config_path=None), None,  # type: ignore[arg-type]
                                    records, result, rejected)
    assert [q.coordinates["sequence_number"] for q in rejected] == ["5"] and rejected[0].reason
    assert all(isinstance(c, Change) for c in changes) and "bad" not in {c.event_id for c in changes}
    changes_table(changes)
    history_table(changes, HistorySchema())


def test_a_group_the_columnar_path_refuses_is_left_to_the_per_record_path_alone() -> None:
    """Three envelope groups; the second's (prefetched) parse fails: its records, and only
    they, are left for the per-record path."""
    from lake.curate.columnar import convert_grouped

    bodies: list[bytes] = []
    tables: list[str | None] = []
    for i, (body, _) in enumerate(workload(51, 90)):
        bodies.append(b'{"oops' if i == 40 else body)
        tables.append(("a", "b", "c")[i % 3])
    n = len(bodies)
    got = convert_grouped(bodies, tables, ["shardId-000000000001"] * n, [str(1000 + i) for i in range(n)], 10)
    assert got.rest == [i for i in range(n) if tables[i] == "b"]
    assert sorted(s.first for s in got.slices) == [s.first for s in got.slices] and got.slices
    assert {tables[s.first] for s in got.slices} <= {"a", "c"}
