"""The file index at work: uploads become index rows, uploads of a known key update its row, and
the index table's changes reach the lake (``lake example file_index``).

Keys are varied on purpose: nested prefixes, spaces, ``+`` and ``=``, accents and non-Latin
scripts. EventBridge carries them as they are (S3's notifications to SQS, SNS and Lambda
URL-encode them, ``quote_plus``), so the index holds the real key, the one ``GetObject`` takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from examples.file_index.app import BUCKET, MACHINE, TABLE

if TYPE_CHECKING:
    from lake.local.apps import LocalApp

FILES: dict[str, bytes] = {
    "reports/2026/03/summary.pdf": b"%PDF-1.7 quarterly summary",
    "photos/Été 2026/plage (1).jpg": b"\xff\xd8\xff\xe0 a beach",
    "inbox/invoice #42 + VAT=20%.csv": b"item,amount\nsupport,120.00\n",
    "研究/データ/結果.json": b'{"result": 42}',
    "deep/nested/prefix/with spaces/notes.txt": b"first draft",
}
REUPLOADED = ("deep/nested/prefix/with spaces/notes.txt", "photos/Été 2026/plage (1).jpg")
EDIT = b" (edited)"  # appended to a re-uploaded file's content


def run(app: LocalApp, say: Callable[[str], None]) -> dict[str, Any]:
    """Upload, upload again, and check the index, the executions and the lake; ``ok`` when all hold."""
    s3, ddb = app.clients.s3, app.clients.dynamodb
    bucket, table = app.resolve("${bucket:" + BUCKET + "}"), app.resolve("${table:" + TABLE + "}")
    facts: dict[str, Any] = {}

    say(f"uploading {len(FILES)} files to s3://{bucket}/")
    for key, body in FILES.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        say(f"  put {key!r}")
    _settle(app, say, executions=len(FILES))
    first = _index(ddb, table)
    facts["indexed"] = sorted(first) == sorted(FILES)
    facts["new_rows_version_1"] = all(r.get("version") == "1" for r in first.values())
    facts["sizes_match"] = all(first.get(k, {}).get("size") == str(len(b)) for k, b in FILES.items())
    say(f"index: {len(first)} rows, every one at version 1: {facts['new_rows_version_1']}")

    # S3's event time has second precision: the re-uploads are in a later second, so lastModified moves.
    _next_second(max((r["lastModified"] for r in first.values()), default=""))
    say(f"uploading {len(REUPLOADED)} known keys again, with new content")
    for key in REUPLOADED:
        s3.put_object(Bucket=bucket, Key=key, Body=FILES[key] + EDIT)
    _settle(app, say, executions=len(FILES) + len(REUPLOADED))
    second = _index(ddb, table)
    facts["no_new_rows"] = sorted(second) == sorted(FILES)
    facts["reuploads_updated"] = all(_updated(first.get(k), second.get(k), len(FILES[k] + EDIT)) for k in REUPLOADED)
    facts["others_untouched"] = all(k in first and second.get(k) == first[k] for k in FILES if k not in REUPLOADED)
    for key in REUPLOADED:
        before, after = first.get(key, {}), second.get(key, {})
        say(f"  {key!r}: version {after.get('version')}, lastModified "
            f"{before.get('lastModified')} -> {after.get('lastModified')}")

    executions = _executions(app)
    facts["executions"] = len(executions)
    facts["executions_succeeded"] = len(executions) == len(FILES) + len(REUPLOADED) and all(
        e["status"] == "SUCCEEDED" for e in executions)
    facts["executions_named_once"] = len({e["name"] for e in executions}) == len(executions)
    say(f"state machine {MACHINE}: {len(executions)} executions, "
        f"{sum(e['status'] == 'SUCCEEDED' for e in executions)} succeeded")

    lake = _lake_changes(app, table, want={"INSERT": len(FILES), "MODIFY": len(REUPLOADED)})
    facts["lake_changes"] = lake
    facts["in_the_lake"] = lake == {"INSERT": len(FILES), "MODIFY": len(REUPLOADED)}
    say(f"lake: changes of {table}: {lake}")
    facts["index"] = {k: {a: v for a, v in r.items() if a != "fileName"} for k, r in sorted(second.items())}
    facts["ok"] = all(facts[f] for f in ("indexed", "new_rows_version_1", "sizes_match", "no_new_rows",
                                         "reuploads_updated", "others_untouched", "executions_succeeded",
                                         "executions_named_once", "in_the_lake"))
    return facts


def _updated(before: dict[str, str] | None, after: dict[str, str] | None, size: int) -> bool:
    """The same row after a second upload: one version on, lastModified later, firstSeen kept, the new content's
    size and ETag."""
    return before is not None and after is not None and after["version"] == "2" \
        and after["lastModified"] > before["lastModified"] and after["firstSeen"] == before["firstSeen"] \
        and after["etag"] != before["etag"] and after["size"] == str(size)


def _settle(app: LocalApp, say: Callable[[str], None], executions: int, timeout_s: float = 30.0) -> None:
    """Wait until ``executions`` executions have ended (one per upload: the rule starts them)."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = _executions(app)
        if (len(listed) >= executions and all(e["status"] != "RUNNING" for e in listed)) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if len(listed) < executions:
        say(f"(only {len(listed)} of {executions} executions after {timeout_s:.0f} s)")


def _next_second(latest: str) -> None:
    """Wait until the wall clock's second (S3's event time, ``…T10:00:00Z``) is past ``latest``."""
    while time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) <= latest:
        time.sleep(0.05)


def _index(ddb: Any, table: str) -> dict[str, dict[str, str]]:
    """The index table's rows by key, attribute values as text."""
    rows: dict[str, dict[str, str]] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            row = {name: str(next(iter(value.values()))) for name, value in item.items()}
            rows[row["fileName"]] = row
    return rows


def _executions(app: LocalApp) -> list[dict[str, Any]]:
    sfn = app.clients.stepfunctions
    arn = app.resolve("${state-machine:" + MACHINE + "}")
    return [e for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
            for e in page["executions"]]


def _lake_changes(app: LocalApp, table: str, want: dict[str, int], timeout_s: float = 60.0) -> dict[str, int]:
    """The index table's changes by event name in the lake's ``changes`` table, through the local
    query engine (as ``lake query`` runs it), once they are all there or at the timeout."""
    from lake.errors import QueryError
    from lake.query.engine import engine_for

    sql = ("SELECT event_name, count(DISTINCT event_id) AS n FROM changes WHERE table_name = ? "
           "GROUP BY event_name ORDER BY event_name")  # DISTINCT: the lake delivers at least once
    deadline = time.monotonic() + timeout_s
    got: dict[str, int] = {}
    while True:
        engine = engine_for(app.settings, "local", app.clients)
        try:
            got = {r["event_name"]: int(r["n"]) for r in engine.query(sql, [table]).to_pylist()}
        except QueryError:
            got = {}  # the curated zone is empty so far
        finally:
            engine.close()
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(1.0)

