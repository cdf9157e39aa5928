"""``lake demo``: the whole pipeline on the embedded AWS, with a generated workload.

Starts the embedded AWS on a free port, writes inserts, updates, deletes and
TTL expiries with BatchWriteItem, runs the local runtime until every stream is
drained, then shows what each stage produced.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from lake.aws.clients import Clients
from lake.local.embedded import sweep_ttl
from lake.local.workload import Workload, generate, write_batches
from lake.settings import Settings


@dataclass
class DemoReport:
    produced: int = 0            # stream records in the source tables' streams
    expected: int = 0            # what the workload should have produced (ground truth)
    delivered: dict[str, int] = field(default_factory=dict)   # mapping name -> records delivered
    dlq: int = 0
    drained: bool = False
    seconds: float = 0.0
    stages: dict[str, Any] = field(default_factory=dict)


def write_workload(clients: Clients, wl: Workload, progress: Callable[[int], None] | None = None) -> int:
    """Send the workload with BatchWriteItem, retrying unprocessed items; return ops written."""
    ddb = clients.dynamodb
    written = 0
    for table, ops in write_batches(wl.ops):
        requests: list[dict[str, Any]] = [
            {"PutRequest": {"Item": op.item}} if op.kind == "put" else {"DeleteRequest": {"Key": op.key}}
            for op in ops
        ]
        pending = {table: requests}
        for attempt in range(10):
            resp = ddb.batch_write_item(RequestItems=pending)
            pending = resp.get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(min(2.0, 0.05 * 2**attempt))
        else:
            raise RuntimeError(f"DynamoDB kept {sum(len(v) for v in pending.values())} items unprocessed")
        written += len(ops)
        if progress:
            progress(len(ops))
    return written


def count_stream_records(clients: Clients, stream_arn: str) -> int:
    """Count every record in a DynamoDB stream (all shards, from the trim horizon)."""
    st = clients.dynamodbstreams
    desc = st.describe_stream(StreamArn=stream_arn)["StreamDescription"]
    total = 0
    for shard in desc.get("Shards", []):
        it = st.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"],
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            resp = st.get_records(ShardIterator=it, Limit=1000)
            total += len(resp["Records"])
            if not resp["Records"]:
                break
            it = resp.get("NextShardIterator")
    return total


def dlq_depth(clients: Clients, queue_url: str) -> int:
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0))


def run_demo(settings: Settings, changes: int, seed: int, console: Console,
             timeout_s: float = 120.0) -> DemoReport:
    from lake.local.up import EmbeddedLake

    report = DemoReport()
    t0 = time.perf_counter()
    lake = EmbeddedLake(settings, port=0, ttl_interval_s=None)
    with console.status("starting the embedded AWS…"):
        s = lake.start()
    assert lake.clients is not None and lake.provisioned is not None
    console.print(f"embedded AWS at [bold]{s.endpoint_url}[/]; wired: "
                  + ", ".join(sorted({m.name for m in lake.mappings})) or "nothing")
    try:
        now = time.time()
        wl = generate(s.tables, changes, seed=seed, now=now)
        report.expected = wl.expected_records
        t1 = time.perf_counter()
        with console.status(f"writing {len(wl.ops)} changes with BatchWriteItem…"):
            write_workload(lake.clients, wl)
            expired = sum(r.expired for r in sweep_ttl(s.region, now=now))
        console.print(f"wrote {len(wl.ops)} changes ({wl.inserts} inserts, {wl.updates} updates, "
                      f"{wl.deletes} deletes) and expired {expired} items by TTL "
                      f"in {time.perf_counter() - t1:.1f} s")
        report.produced = sum(count_stream_records(lake.clients, arn)
                              for arn in lake.provisioned.stream_arns.values())
        t1 = time.perf_counter()
        with console.status("running the pipeline until every stream is drained…"):
            report.drained = lake.wait_idle(timeout_s)
        console.print(f"pipeline drained in {time.perf_counter() - t1:.1f} s")
        if lake.runtime is not None:
            for name, st in lake.runtime.stats.items():
                report.delivered[name] = getattr(st, "records_delivered", 0)
        report.dlq = dlq_depth(lake.clients, lake.provisioned.dlq_url)
        _stages(console, s, lake.clients, wl, report)
        _glue_jobs(console, s, lake.clients, report)
        report.seconds = time.perf_counter() - t0
        _print_summary(console, report)
        from lake.dashboard.page import write_dashboard
        console.print(f"dashboard: {write_dashboard(s, 'out/dashboard', lake.clients).resolve()}")
    finally:
        lake.stop()
    return report


def _cell(value: Any, width: int = 24) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _arrow_table(console: Console, title: str, table: Any) -> None:
    t = Table(title=title)
    for name in table.column_names:
        t.add_column(name, no_wrap=True)
    for row in table.to_pylist():
        t.add_row(*(_cell(v) for v in row.values()))
    console.print(t)


def _stages(console: Console, s: Settings, clients: Clients, wl: Workload, report: DemoReport) -> None:
    """What each stage of the lake now holds: raw zone, curated zone, SQL views, replay."""
    from lake.archive.summary import raw_summary
    from lake.curate.summary import curated_summary
    from lake.query.local import demo_tables
    from lake.replay.handlers import rebuild_item

    raw = raw_summary(s, clients)
    report.stages["raw_objects"], report.stages["raw_records"] = raw.objects, raw.records
    cur = curated_summary(s, clients)
    report.stages["changes_rows"] = cur.changes_rows
    report.stages["history_rows"] = dict(cur.history_rows)
    report.stages["glue_tables"] = list(cur.glue_tables)
    report.stages["iceberg_files"] = dict(cur.files)
    report.stages["iceberg_snapshots"] = dict(cur.snapshots)

    views = demo_tables(s, clients, limit=8)
    audit = views["audit_trail"].select(["key", "event_name", "attribute", "old_value", "new_value", "actor"])
    _arrow_table(console, "audit_trail (latest changed attributes)", audit)
    volume = views["change_volume"]
    report.stages["change_volume_total"] = sum(volume.column("changes").to_pylist())
    _arrow_table(console, "change_volume (per table, hour and event)", volume)

    # Replay one item's whole history into a handler that rebuilds it, and compare with the live table.
    if wl.final:
        (table, _), item = max(wl.final.items(), key=lambda kv: int(kv[1]["version"]["N"]))
        spec = next(t for t in s.tables if t.name == table)
        key = {spec.hash_key: item[spec.hash_key]}
        if spec.range_key:
            key[spec.range_key] = item[spec.range_key]
        from lake.records import key_string

        kstr = key_string(key)
        rebuilt, rep = rebuild_item(s, table, kstr, clients=clients)
        live = clients.dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        report.stages["replayed_events"] = rep.events_sent
        report.stages["replay_matches_live"] = rebuilt == live
        console.print(f"replayed {rep.events_sent} archived changes of {table} {kstr} into "
                      f"lake.replay.handlers.ItemRebuilder: rebuilt item "
                      + ("[green]equals[/] the live table's" if rebuilt == live else "[red]differs from[/] the live"))


def _glue_jobs(console: Console, s: Settings, clients: Clients, report: DemoReport) -> None:
    """Issue 12's jobs on the drained lake: current_state, then compact (the demo's lake lives
    minutes, so its time-travel window and orphan grace are 0: keep only the current snapshot)."""
    from lake.curate.names import current_table
    from lake.glue.compact import CompactOptions, compact
    from lake.glue.current import CurrentOptions, current_state

    state = current_state(s, CurrentOptions(), clients)
    console.print("\n".join(state.lines()))
    for spec in s.tables:
        live = clients.dynamodb.scan(TableName=spec.name, Select="COUNT", ConsistentRead=True)["Count"]
        rows = sum(t.rows_out for t in state.tables if t.table == current_table(spec.name))
        report.stages.setdefault("current_rows", {})[spec.name] = (rows, live)
        console.print(f"{current_table(spec.name)}: {rows} rows; {spec.name} holds {live} items "
                      + ("[green](equal)[/]" if rows == live else "[red](differ)[/]"))
    compacted = compact(s, CompactOptions(retention_s=0, orphan_grace_s=0), clients)
    report.stages["compacted_files"] = (compacted.total("files_in"), compacted.total("files_out"))
    console.print("\n".join(compacted.lines()))


def _print_summary(console: Console, report: DemoReport) -> None:
    t = Table(title="lake demo", show_header=True)
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_row("changes produced (stream records)", str(report.produced))
    t.add_row("changes expected from the workload", str(report.expected))
    for name, n in sorted(report.delivered.items()):
        t.add_row(f"delivered to {name}", str(n))
    st = report.stages
    if "raw_objects" in st:
        t.add_row("raw zone: objects / records archived", f"{st['raw_objects']} / {st['raw_records']}")
        files, snaps = st.get("iceberg_files", {}), st.get("iceberg_snapshots", {})

        def iceberg(name: str) -> str:
            return f" ({files.get(name, 0)} files, {snaps.get(name, 0)} snapshots)"

        t.add_row("curated `changes` rows (Iceberg)" + iceberg("changes"), str(st["changes_rows"]))
        for name, n in sorted(st["history_rows"].items()):
            t.add_row(f"curated `{name}` rows" + iceberg(name), str(n))
        t.add_row("Glue tables", ", ".join(st["glue_tables"]))
        t.add_row("change_volume total (view)", str(st["change_volume_total"]))
    t.add_row("batches in the dead-letter queue", str(report.dlq))
    t.add_row("streams drained", "yes" if report.drained else "NO")
    t.add_row("seconds", f"{report.seconds:.1f}")
    console.print(t)


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", parents=parents, help="run the whole pipeline on the embedded AWS",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=2000, help="number of writes (default 2000)")
    p.add_argument("--seed", type=int, default=7, help="random seed of the workload (default 7)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the pipeline")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    console = Console(width=None if sys.stdout.isatty() else 140)
    # The demo's embedded AWS is new each time: so are its checkpoints.
    with tempfile.TemporaryDirectory(prefix="lake-demo-") as state:
        report = run_demo(settings.replace(endpoint_url=None, state_dir=state), args.changes, args.seed,
                          console, args.timeout)
    st = report.stages
    ok = (report.drained and report.produced == report.expected
          and all(n == report.produced for n in report.delivered.values())
          and st.get("raw_records", 0) >= report.produced and st.get("changes_rows", 0) == report.produced
          and st.get("replay_matches_live", True)
          and all(rows == live for rows, live in st.get("current_rows", {}).values()))
    if not ok:
        console.print("[red]the pipeline did not deliver everything it should have[/]")
    return 0 if ok else 1
