"""upload_rows (article 000) end to end on the embedded stack, and its tables' changes in the lake.

S3 upload → SNS → log_rows → DynamoDB stream (filtered) → release → SQS FIFO → work, wired by
LocalApp from the example's declaration on a fresh EmbeddedLake; the scenario's outcome is
checked here against the plan (not against what the handlers report), and both tables'
changes are read back from the lake's ``changes`` table through the local query engine.
"""

from __future__ import annotations

from typing import Any

from examples.upload_rows.app import APP, BATCHES, PROCESSED
from examples.upload_rows.handlers import uploads_from_sns
from examples.upload_rows.scenario import ROUNDS, announced, expected, run
from lake.local.apps import LocalApp
from lake.local.up import EmbeddedLake
from lake.query.local import LocalEngine


def lake_changes(lake: EmbeddedLake, tables: list[str]) -> dict[str, dict[str, int]]:
    """Per table, the changes the lake holds per event name (as ``lake query`` reads them)."""
    engine = LocalEngine(lake.settings, lake.clients)
    names = ", ".join(f"'{t}'" for t in tables)
    rows = engine.query(f"SELECT table_name, event_name, count(*) AS n FROM changes WHERE table_name IN ({names}) "
                        "GROUP BY 1, 2").to_pylist()
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["table_name"], {})[r["event_name"]] = r["n"]
    return out


def test_upload_rows_fires_once_per_batch_in_fifo_order_and_feeds_the_lake(app_lake: EmbeddedLake) -> None:
    lake = app_lake
    said: list[str] = []
    with LocalApp(APP, lake) as app:
        outcome: dict[str, Any] = run(app, said.append)
        assert app.wait_idle(60)

        want = expected()
        assert outcome["checks"] == {k: True for k in outcome["checks"]}, (outcome, said)
        assert outcome["ok"]
        # exactly once: each released batch saw one release (one stream record let through by the
        # filter and acted on); the batches that never reached the threshold, none
        assert outcome["released"] == {b: (1 if b in want["released"] else 0) for b in want["logged"]}
        assert outcome["jobs_done"] == {b: len(v) for b, v in want["released"].items()}
        assert outcome["failed_once"] == {"alpha": 1, "echo site": 1}
        assert outcome["dead_letters"] == 0

        # the release function ran on the filtered stream: it only ever saw the crossing records
        release_events = app.events("release")
        seen = [r for e in release_events for r in e["Records"]]
        assert sorted(r["dynamodb"]["NewImage"]["batch"]["S"] for r in seen) == sorted(want["released"])
        # the worker saw the flaky rows twice and nothing else twice, each group in order
        work_bodies = [r["body"] for e in app.events("work") for r in e["Records"]]
        assert len(work_bodies) - len(set(work_bodies)) >= 2

        # SNS delivering a notification again logs nothing twice
        first = app.invocations("log_rows")[0]["event"]["Records"][0]["Sns"]
        key = {"batch": {"S": uploads_from_sns({"Records": [{"Sns": first}]})[0].batch}}
        before = app.clients.dynamodb.get_item(TableName=BATCHES, Key=key)["Item"]
        app.clients.sns.publish(TopicArn=first["TopicArn"], Message=first["Message"])
        assert app.wait_idle(60)
        assert app.invocations("log_rows")[-1]["result"] == {"logged": 0, "repeated": 1}
        after = app.clients.dynamodb.get_item(TableName=BATCHES, Key=key)["Item"]
        assert after == before

        uploads = sum(1 for round_ in ROUNDS for key, _ in round_ if announced(key))
        changes = lake_changes(lake, [BATCHES, PROCESSED])
        assert sum(changes[BATCHES].values()) == uploads  # one change per logged upload
        assert changes[BATCHES]["INSERT"] == len(want["logged"])
        # one change per job done, plus one per flaky row's first (failed) attempt
        assert sum(changes[PROCESSED].values()) == sum(map(len, want["released"].values())) + sum(
            want["flaky"].values())
