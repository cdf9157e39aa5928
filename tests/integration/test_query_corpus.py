"""The SQL corpus (tests/sql_corpus): every documented Trino example and every lake query gives
its documented answer locally, or the stated difference, or a refusal that names the function
and points at docs/SQL.md; and docs/SQL.md is what the corpus generates."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from lake.archive.writer import archive_records
from lake.aws.catalog import Append, IcebergTables
from lake.aws.clients import Clients
from lake.errors import QueryError
from lake.local.embedded import EmbeddedAWS
from lake.query.local import LocalEngine
from lake.settings import Settings
from tests.integration.test_query_views import build_lake
from tests.sql_corpus import corpus
from tests.synthetic import Delivered

CASES = corpus.load()


def lake_changes() -> tuple[list[Delivered], list[Delivered]]:
    """The corpus lake's changes, and the copies delivered twice."""
    data = json.loads((corpus.CORPUS / "lake_records.json").read_text())
    unique = [Delivered(c["record"], c["shard_id"], c["sequence_number"]) for c in data["changes"]]
    by_id = {d.record["eventID"]: d for d in unique}
    dupes = [Delivered(by_id[r["event_id"]].record, r["shard_id"], r["sequence_number"])
             for r in data["redelivered"]]
    return unique, dupes


THINGS = pa.schema([("event_id", pa.string()), ("event_time", pa.timestamp("us", tz="UTC")),
                    ("dt", pa.string()), ("n", pa.int64())])


def iceberg_things(settings: Settings, clients: Clients) -> dict[str, str]:
    """An Iceberg table ``things`` with three snapshots, one day of two rows each; the
    corpus placeholders naming them (``${first_snapshot}``, ``${second_snapshot_time}``)."""
    tables = IcebergTables(settings, clients)
    tables.ensure("things", THINGS, ["dt"], source=None, kind="test")
    snapshots = []
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        at = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        rows = pa.table({"event_id": [f"{day}-a", f"{day}-b"], "event_time": pa.array([at, at], THINGS.field(1).type),
                         "dt": [day, day], "n": pa.array([1, 2], pa.int64())})
        done = tables.commit("things", lambda t, rows=rows: Append(rows))
        assert done.snapshot_id is not None
        snapshots.append(done.snapshot_id)
        time.sleep(0.01)  # distinct snapshot times
    second = tables.load("things").snapshot_by_id(snapshots[1])
    assert second is not None
    at = dt.datetime.fromtimestamp(second.timestamp_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return {"first_snapshot": str(snapshots[0]), "second_snapshot_time": at}


def corpus_lake(embedded_aws: EmbeddedAWS, state: Path) -> tuple[LocalEngine, dict[str, str]]:
    """A fresh embedded AWS holding the corpus lake (curated changes with one redelivered
    copy, the raw zone, an Iceberg table with three snapshots), a local engine over it, and
    the values of the corpus placeholders."""
    embedded_aws.reset()
    settings = Settings.resolve({"endpoint_url": embedded_aws.endpoint_url, "state_dir": str(state)},
                                environ={}, config_path=None)
    clients = Clients(settings)
    unique, dupes = lake_changes()
    build_lake(settings, clients, unique, dupes)
    archive_records([d.record for d in unique], settings, clients)
    values = iceberg_things(settings, clients)
    return LocalEngine(settings, clients), values


@pytest.fixture(scope="module")
def lake(embedded_aws: EmbeddedAWS, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[LocalEngine, dict[str, str]]]:
    local, values = corpus_lake(embedded_aws, tmp_path_factory.mktemp("corpus-state"))
    yield local, values
    local.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_case(lake: tuple[LocalEngine, dict[str, str]], case: corpus.Case) -> None:
    engine, values = lake
    sql = corpus.render_placeholders(case.sql, values)
    if case.status == "unsupported":
        with pytest.raises(QueryError) as refused:
            engine.query(sql)
        message = str(refused.value)
        named = case.function.split(" (")[0].lower()
        assert named in message.lower() and "docs/SQL.md" in message, message
        return
    table = engine.query(sql)
    got = corpus.rows_text(table)
    if case.status == "difference":
        assert corpus.same(case.local, got, case.unordered), got
        # still a difference: once the local answer is Athena's, the case must say so
        assert not corpus.same(case.expect, got, case.unordered), got
    else:
        assert corpus.same(case.expect, got, case.unordered), got
    if case.columns:
        assert table.column_names == list(case.columns)


def test_the_corpus_covers_every_family() -> None:
    assert len(CASES) >= 150
    families = {c.family for c in CASES}
    for needed in ("Date and time", "JSON", "Array", "Map", "Aggregate", "Window", "String",
                   "Regular expression", "Math", "Conditional", "Type conversion", "UNNEST", "GROUPING SETS",
                   "Time travel", "lake's tables and views"):
        assert any(needed in f for f in families), needed
    assert {"supported", "difference", "unsupported"} <= {c.status for c in CASES}


def test_docs_sql_md_is_generated_from_the_corpus() -> None:
    doc: Path = corpus.DOC
    assert doc.read_text() == corpus.markdown(CASES), (
        "docs/SQL.md is out of date: run .venv/bin/python -m tests.sql_corpus.corpus")
