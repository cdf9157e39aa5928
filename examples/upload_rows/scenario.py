"""The scenario of ``lake example upload_rows``: batches of CSV files uploaded in rounds.

Each round uploads at most one file per batch and waits until the app is idle, so the
order in which rows reach a batch's list is the upload order, and the expected outcome
follows from the plan alone (:func:`expected`), not from what the handlers did:

* ``alpha`` reaches 12 rows in one file (released: 12 jobs, row 6 flaky), then 16 (not again);
* ``bravo`` reaches 12 rows over two files of 6 (released at the second);
* ``charlie`` stops at 8 rows over two files (never released);
* ``delta`` goes 9 → 10 rows (released at exactly 10);
* ``echo site`` is one file of 10 rows whose key needs URL-encoding (released; row 4 flaky);
* a ``.txt`` file and a file outside ``incoming/`` are not announced (the notification's filter).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from examples.upload_rows.app import BATCHES, BUCKET, JOBS_DLQ, PROCESSED
from examples.upload_rows.handlers import THRESHOLD, Upload

if TYPE_CHECKING:
    from lake.local.apps import LocalApp

Row = dict[str, str]


def _rows(batch: str, first: int, count: int, flaky: tuple[int, ...] = ()) -> list[Row]:
    """Image-processing jobs (the article's use): one image per row; ``flaky`` rows fail once."""
    sizes = [(640, 480), (1024, 768), (1920, 1080), (800, 800), (3024, 4032)]
    out = []
    for n in range(first, first + count):
        w, h = sizes[n % len(sizes)]
        out.append({"image": f"{batch}/img_{n:03d}.jpg", "width": str(w), "height": str(h),
                    "status": "flaky" if n in flaky else "ok"})
    return out


ROUNDS: list[list[tuple[str, list[Row]]]] = [
    [
        ("incoming/alpha/part-1.csv", _rows("alpha", 0, 12, flaky=(6,))),
        ("incoming/bravo/part-1.csv", _rows("bravo", 0, 6)),
        ("incoming/charlie/part-1.csv", _rows("charlie", 0, 3)),
        ("incoming/delta/part-1.csv", _rows("delta", 0, 9)),
        ("incoming/echo site/scans 1+2.csv", _rows("echo site", 0, 10, flaky=(4,))),
        ("incoming/alpha/notes.txt", []),  # not a .csv: never announced
        ("elsewhere/zulu.csv", _rows("zulu", 0, 12)),  # outside incoming/: never announced
    ],
    [
        ("incoming/alpha/part-2.csv", _rows("alpha", 12, 4)),  # 12 -> 16: released already, not again
        ("incoming/bravo/part-2.csv", _rows("bravo", 6, 6)),  # 6 -> 12: released now
        ("incoming/charlie/part-2.csv", _rows("charlie", 3, 5)),  # 3 -> 8: still not
        ("incoming/delta/part-2.csv", _rows("delta", 9, 1)),  # 9 -> 10: released now
    ],
]


def csv_text(rows: list[Row]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["image", "width", "height", "status"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def announced(key: str) -> bool:
    """What the bucket's notification lets through (prefix ``incoming/``, suffix ``.csv``)."""
    return key.startswith("incoming/") and key.endswith(".csv")


def expected(rounds: list[list[tuple[str, list[Row]]]] = ROUNDS) -> dict[str, Any]:
    """From the plan alone: rows logged per batch, and for each released batch its jobs in order
    and how many of them are flaky (each fails once)."""
    logged: dict[str, list[tuple[str, Row]]] = {}
    released: dict[str, list[tuple[str, Row]]] = {}
    for round_ in rounds:
        for key, rows in round_:
            if not announced(key):
                continue
            batch = Upload("", key, "").batch
            before = len(logged.get(batch, []))
            logged.setdefault(batch, []).extend((f"{key}:{line}", row) for line, row in enumerate(rows, start=2))
            if before < THRESHOLD <= len(logged[batch]):
                released[batch] = list(logged[batch])
    return {
        "logged": {b: [label for label, _ in v] for b, v in logged.items()},
        "released": {b: [label for label, _ in v] for b, v in released.items()},
        "flaky": {b: n for b, v in released.items() if (n := sum(r["status"] == "flaky" for _, r in v))},
    }


def _scan(app: LocalApp, table: str) -> dict[str, dict[str, Any]]:
    ddb = app.clients.dynamodb
    items: dict[str, dict[str, Any]] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=app.resolve(f"${{table:{table}}}"), ConsistentRead=True):
        for item in page["Items"]:
            items[item["batch"]["S"]] = item
    return items


def run(app: LocalApp, say: Callable[[str], None]) -> dict[str, Any]:
    """Upload the rounds, wait for the chain to settle, and compare what happened with :func:`expected`."""
    s3 = app.clients.s3
    bucket = app.resolve(f"${{bucket:{BUCKET}}}")
    idle = True
    for n, round_ in enumerate(ROUNDS, start=1):
        for key, rows in round_:
            s3.put_object(Bucket=bucket, Key=key, Body=csv_text(rows).encode())
        say(f"round {n}: uploaded {len(round_)} files to s3://{bucket}/")
        idle = app.wait_idle() and idle
    want = expected()
    batches = _scan(app, BATCHES)
    processed = _scan(app, PROCESSED)

    logged = {b: [f"{e['M']['file']['S']}:{e['M']['line']['S']}" for e in item["rows"]["L"]]
              for b, item in batches.items()}
    done = {b: [e["S"] for e in item.get("done", {}).get("L", [])] for b, item in processed.items()
            if "done" in item}
    releases = {b: len(item.get("releases", {}).get("SS", [])) for b, item in processed.items()}
    failed = {b: len(item.get("failed", {}).get("NS", [])) for b, item in processed.items()}
    dlq_url = app.resolve(f"${{queue:{JOBS_DLQ}}}")
    dead = int(app.clients.sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])

    for batch in sorted(logged):
        n = releases.get(batch, 0)
        say(f"batch {batch!r}: {len(logged[batch])} rows logged; "
            + (f"released once, {len(done.get(batch, []))} jobs done" if n == 1 else
               f"not released (fewer than {THRESHOLD} rows)" if n == 0 else f"released {n} times!"))
    checks = {
        "idle": idle,
        "rows_logged": logged == want["logged"],
        "released_exactly_once": {b for b, n in releases.items() if n == 1} == set(want["released"])
        and all(n == 1 for n in releases.values()),
        "fifo_order": done == want["released"],
        "flaky_retried": {b: n for b, n in failed.items() if n} == want["flaky"],
        "nothing_dead": dead == 0,
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "logged_rows": {b: len(v) for b, v in logged.items()},
        "released": {b: releases.get(b, 0) for b in sorted(set(logged) | set(releases))},
        "jobs_done": {b: len(v) for b, v in done.items()},
        "failed_once": {b: n for b, n in failed.items() if n},
        "dead_letters": dead,
        "tables": [BATCHES, PROCESSED],
    }
