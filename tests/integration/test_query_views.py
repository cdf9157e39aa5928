"""Every view of athena_queries/views, run locally by DuckDB on a curated lake in moto S3,
against a ground truth computed here, in Python, from the generated stream records."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from lake.aws.clients import Clients
from lake.aws.storage import s3_filesystem
from lake.query.local import LocalEngine
from lake.settings import Settings
from tests.synthetic import Delivered, curated_table, generate, redeliver, register_changes, write_lake

ABSENT = "<absent>"


# -- ground truth, straight from DynamoDB-typed records --------------------------------

def typed_value(value: Mapping[str, Any]) -> Any:
    (tag, inner), = value.items()
    if tag == "N":
        return Decimal(inner)
    if tag in ("SS", "BS"):
        return sorted(inner)
    if tag == "NS":
        return sorted(Decimal(v) for v in inner)
    if tag == "M":
        return {k: typed_value(v) for k, v in inner.items()}
    if tag == "L":
        return [typed_value(v) for v in inner]
    if tag == "NULL":
        return None
    if tag == "B":
        return inner if isinstance(inner, str) else base64.b64encode(inner).decode()
    return inner


def sorted_lists(value: Any) -> Any:
    """Sets have no order; compare every array as a sorted one, on both sides."""
    if isinstance(value, list):
        return sorted((sorted_lists(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {k: sorted_lists(v) for k, v in value.items()}
    return value


def expected_attr(image: Mapping[str, Any] | None, attr: str) -> Any:
    if not image or attr not in image:
        return ABSENT
    return sorted_lists(typed_value(image[attr]))


def json_value(text: str | None) -> Any:
    if text is None:
        return ABSENT
    return sorted_lists(json.loads(text, parse_float=Decimal, parse_int=Decimal))


def naive(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC).replace(tzinfo=None)


def key_of(record: Mapping[str, Any]) -> str:
    return "|".join(f"{k}={next(iter(v.values()))}" for k, v in sorted(record["dynamodb"]["Keys"].items()))


def table_of(record: Mapping[str, Any]) -> str:
    return str(record["eventSourceARN"].split("/")[1])


def time_of(record: Mapping[str, Any]) -> datetime:
    return naive(int(record["dynamodb"]["ApproximateCreationDateTime"]) * 1_000_000)


def truth_audit(changes: Sequence[Delivered], actor_attribute: str = "updated_by") -> Counter[tuple[Any, ...]]:
    rows: Counter[tuple[Any, ...]] = Counter()
    for d in changes:
        r = d.record
        old, new = r["dynamodb"].get("OldImage"), r["dynamodb"].get("NewImage")
        attrs = set(old or {}) | set(new or {})
        if r["eventName"] == "MODIFY":
            attrs = {a for a in attrs if (old or {}).get(a) != (new or {}).get(a)}
        ident = r.get("userIdentity")
        actor = (new or {}).get(actor_attribute, {}).get("S") or (ident["principalId"] if ident else None)
        ttl = r["eventName"] == "REMOVE" and (ident or {}).get("principalId") == "dynamodb.amazonaws.com"
        for a in attrs:
            rows[(table_of(r), key_of(r), time_of(r), r["eventName"], a,
                  repr(expected_attr(old, a)), repr(expected_attr(new, a)), ttl, actor)] += 1
    return rows


def truth_current(changes: Sequence[Delivered]) -> dict[tuple[str, str], Any]:
    state: dict[tuple[str, str], Any] = {}
    for d in changes:  # generation order is the true order of changes
        k = (table_of(d.record), key_of(d.record))
        new = d.record["dynamodb"].get("NewImage")
        if new is None:
            state.pop(k, None)
        else:
            state[k] = {a: sorted_lists(typed_value(v)) for a, v in new.items()}
    return state


def truth_volume(changes: Sequence[Delivered]) -> Counter[tuple[str, datetime, str]]:
    return Counter(
        (table_of(d.record), time_of(d.record).replace(minute=0, second=0), d.record["eventName"])
        for d in changes
    )


def truth_deletions(changes: Sequence[Delivered]) -> Counter[tuple[str, str, datetime, str]]:
    out: Counter[tuple[str, str, datetime, str]] = Counter()
    for d in changes:
        r = d.record
        if r["eventName"] == "REMOVE":
            ttl = (r.get("userIdentity") or {}).get("principalId") == "dynamodb.amazonaws.com"
            out[(table_of(r), key_of(r), time_of(r), "ttl" if ttl else "user")] += 1
    return out


# -- what the views say, in the same shapes ------------------------------------------

def view_audit(engine: LocalEngine) -> Counter[tuple[Any, ...]]:
    rows = engine.query(
        "SELECT table_name, key, event_time, event_name, attribute, old_value, new_value, is_ttl_delete, actor "
        "FROM audit_trail"
    ).to_pylist()
    return Counter(
        (r["table_name"], r["key"], r["event_time"], r["event_name"], r["attribute"],
         repr(json_value(r["old_value"])), repr(json_value(r["new_value"])), r["is_ttl_delete"], r["actor"])
        for r in rows
    )


def view_current(engine: LocalEngine) -> dict[tuple[str, str], Any]:
    rows = engine.query("SELECT table_name, key, item FROM current_state").to_pylist()
    assert len(rows) == len({(r["table_name"], r["key"]) for r in rows}), "one row per key"
    return {(r["table_name"], r["key"]): json_value(r["item"]) for r in rows}


def view_volume(engine: LocalEngine) -> Counter[tuple[str, datetime, str]]:
    out: Counter[tuple[str, datetime, str]] = Counter()
    for r in engine.query("SELECT table_name, hour, event_name, changes FROM change_volume").to_pylist():
        out[(r["table_name"], r["hour"], r["event_name"])] += r["changes"]
    return out


def view_deletions(engine: LocalEngine) -> Counter[tuple[str, str, datetime, str]]:
    rows = engine.query("SELECT table_name, key, event_time, deletion_kind FROM deletions").to_pylist()
    return Counter((r["table_name"], r["key"], r["event_time"], r["deletion_kind"]) for r in rows)


def assert_views_match(engine: LocalEngine, unique: Sequence[Delivered]) -> None:
    assert engine.view_errors == {}
    audit, expected_audit = view_audit(engine), truth_audit(unique)
    assert sum(expected_audit.values()) > len(unique)  # several attributes per change
    assert audit == expected_audit
    assert view_current(engine) == truth_current(unique)
    assert view_volume(engine) == truth_volume(unique)
    deletions = truth_deletions(unique)
    assert {k[3] for k in deletions} == {"ttl", "user"}
    assert view_deletions(engine) == deletions


# -- a curated lake in moto S3, built from the contract ----------------------------------

def build_lake(settings: Settings, clients: Clients, unique: Sequence[Delivered],
               dupes: Sequence[Delivered]) -> list[str]:
    clients.s3.create_bucket(Bucket=settings.bucket)
    fs = s3_filesystem(settings)
    base = f"{settings.bucket}/{settings.zone_prefix('curated')}changes"
    parts = write_lake(curated_table(unique), fs, base, "batch-a", rows_per_file=40)
    if dupes:
        parts += write_lake(curated_table(dupes), fs, base, "batch-b-redelivered")
    partitions = sorted({tuple(p.rsplit("/", 2)[-2:]) for p in parts})
    register_changes(clients.catalog(settings.glue_database), f"s3://{base}/",
                     [(t.split("=", 1)[1], d.split("=", 1)[1]) for t, d in partitions])
    return parts


@pytest.fixture
def workload() -> tuple[list[Delivered], list[Delivered]]:
    unique = generate(400, seed=11)
    return unique, redeliver(unique, fraction=0.15)


def test_views_match_ground_truth_with_duplicate_deliveries(
    settings: Settings, clients: Clients, workload: tuple[list[Delivered], list[Delivered]],
) -> None:
    unique, dupes = workload
    assert dupes
    build_lake(settings, clients, unique, dupes)
    engine = LocalEngine(settings, clients)
    raw_rows = engine.query("SELECT count(*) AS n FROM changes").column("n")[0].as_py()
    assert raw_rows == len(unique) + len(dupes)
    assert_views_match(engine, unique)


def test_exact_numbers_and_null_attributes(settings: Settings, clients: Clients,
                                           workload: tuple[list[Delivered], list[Delivered]]) -> None:
    unique, _ = workload
    build_lake(settings, clients, unique, [])
    engine = LocalEngine(settings, clients)
    long_decimal = "0.12345678901234567890123456789012345678"
    rows = engine.query(
        "SELECT new_value FROM audit_trail WHERE attribute = 'amount' AND new_value LIKE '0.1234%'"
    ).column("new_value").to_pylist()
    assert rows and set(rows) == {long_decimal}
    nulls = engine.query(
        "SELECT old_value, new_value FROM audit_trail WHERE attribute = 'note' AND event_name = 'INSERT'"
    ).to_pylist()
    assert nulls and all(r == {"old_value": None, "new_value": "null"} for r in nulls)


def count_object_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every object the embedded S3 serves (GetObject, ranged reads included).

    Counted on the server side: a Python filesystem wrapper on the client side would have
    pyarrow's I/O threads call back into Python while DuckDB holds the GIL (a deadlock).
    """
    from moto.s3.models import S3Backend

    served: list[str] = []
    original = S3Backend.get_object

    def spy(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        served.append(key_name)
        return original(self, bucket_name, key_name, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "get_object", spy)
    return served


@pytest.mark.parametrize("relation", ["changes", "changes_unique", "change_volume", "audit_trail", "deletions"])
def test_dt_predicate_prunes_partitions(settings: Settings, clients: Clients, relation: str,
                                        workload: tuple[list[Delivered], list[Delivered]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    unique, dupes = workload
    parts = build_lake(settings, clients, unique, dupes)
    days = sorted({p.rsplit("dt=", 1)[1] for p in parts})
    assert len(days) >= 3
    day = days[1]
    engine = LocalEngine(settings, clients)
    engine.query("SELECT 1")  # catalog and views loaded before counting
    served = count_object_reads(monkeypatch)
    n = engine.query(f"SELECT count(*) AS n FROM {relation} WHERE dt = '{day}'").column("n")[0].as_py()
    assert n > 0
    opened_days = {p.split("dt=", 1)[1].split("/", 1)[0] for p in served if "dt=" in p}
    assert opened_days == {day}
    full = LocalEngine(settings, clients).query(f"SELECT count(*) AS n FROM {relation}").column("n")[0].as_py()
    assert full > n
