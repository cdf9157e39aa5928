"""``lake replay``: re-feed archived changes to a Lambda (or Kinesis, SQS, a file)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from lake.prompt import confirm_interactively
from lake.replay.engine import ProgressUpdate, ReplayOptions, ReplayReport, checkpoint_path, replay
from lake.replay.selection import Selection
from lake.replay.targets import LAMBDA_MAX_RECORDS, Target
from lake.settings import Settings

EPILOG = """\
targets:
  python:pkg.module:function  in-process, with a Lambda-like context
  lambda:NAME_OR_ARN          Invoke, RequestResponse (batches also kept under 6 MB)
  kinesis:STREAM              one record per change, partition key = table|item key
  sqs:QUEUE                   one message per change (FIFO: group = item, dedup = eventID)
  file:DIR                    one JSON event per batch (DIR/batch-000001.json ...)
  file:PATH.jsonl             one JSON event per line
  null:                       discard (measure the read side)

examples:
  lake replay file:/tmp/events --table orders --since 2024-05-01T00:00Z --until 2024-05-02
  lake replay lambda:my-fn --table orders --key 'pk=A|sk=1' --event-name MODIFY --yes
  lake replay python:my.module:handler --filter '{"eventName":["REMOVE"]}' --resume
"""


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "replay", parents=parents, help="re-feed archived changes as DynamoDB-stream events",
        description="Replay archived changes, in stream order, as Lambda DynamoDB-stream events.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", help="where to send: python:|lambda:|kinesis:|sqs:|file:|null: (see below)")
    s = p.add_argument_group("selection")
    s.add_argument("--table", action="append", default=[], dest="replay_tables",
                   help="source table (repeat for several; default every archived table)")
    s.add_argument("--since", help="from this event time, inclusive (ISO-8601 or epoch seconds)")
    s.add_argument("--until", help="up to this event time, exclusive (ISO-8601 or epoch seconds)")
    s.add_argument("--key", action="append", default=[], help="item key 'pk=A|sk=1' (repeatable)")
    s.add_argument("--keys-file", help="file of item keys, one per line ('pk=A|sk=1' or typed Keys JSON)")
    s.add_argument("--event-name", action="append", default=[], choices=["INSERT", "MODIFY", "REMOVE"],
                   help="only these event names (repeatable)")
    s.add_argument("--filter", action="append", default=[], dest="filters", metavar="JSON",
                   help="Lambda event-filtering pattern (repeat = OR)")
    o = p.add_argument_group("operation")
    o.add_argument("--batch-size", type=int, default=100, help=f"records per event, 1..{LAMBDA_MAX_RECORDS}")
    o.add_argument("--dry-run", action="store_true", help="count and show a sample; send nothing")
    o.add_argument("--rate", type=float, help="at most this many events per second")
    o.add_argument("--resume", action="store_true", help="continue an interrupted replay from its checkpoint")
    o.add_argument("--max-retries", type=int, default=3, help="retries of a failed batch (default 3)")
    o.add_argument("--yes", action="store_true", help="confirm sending to a non-local AWS target")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    o.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``lake replay``; 0 when every change was acknowledged, 1 with failures, 130 if interrupted."""
    selection = Selection.build(
        tables=args.replay_tables, since=args.since, until=args.until, keys=args.key,
        keys_file=args.keys_file, event_names=args.event_name, filters=args.filters,
    )
    target = Target.parse(args.target)
    options = ReplayOptions(
        batch_size=args.batch_size, dry_run=args.dry_run, rate=args.rate, resume=args.resume,
        max_retries=args.max_retries, yes=args.yes, confirm=confirm_interactively,
    )
    show_progress = not args.no_progress and sys.stderr.isatty() and not args.dry_run
    try:
        if show_progress:
            report = _with_progress(settings, selection, target, options)
        else:
            report = replay(settings, selection, target, options)
    except KeyboardInterrupt:
        where = checkpoint_path(settings, selection, target)
        print(f"lake replay: interrupted; what was acknowledged is checkpointed in {where}; "
              "run the same command with --resume to continue", file=sys.stderr)
        return 130
    _print_report(report, args.json)
    return 0 if report.ok else 1


def _with_progress(settings: Settings, selection: Selection, target: Target,
                   options: ReplayOptions) -> ReplayReport:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("objects"),
        TextColumn("{task.fields[events]} events, {task.fields[failures]} failed"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task("replay", total=None, events=0, failures=0)

        def update(u: ProgressUpdate) -> None:
            bar.update(task, total=u.objects_total or None, completed=u.objects_read,
                       events=u.events_sent, failures=u.failures)

        return replay(settings, selection, target, options, progress=update)


def _print_report(report: ReplayReport, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if report.dry_run:
        print(f"dry run: {report.events_selected} event(s) in {report.batches} batch(es) would go to "
              f"{report.target} ({report.objects_listed} object(s) listed, "
              f"{report.duplicates_dropped} duplicate(s) dropped); nothing sent")
        for record in report.sample:
            print("  sample:", orjson.dumps(record).decode()[:300])
        return
    print(f"replayed {report.events_sent} event(s) in {report.batches} batch(es) to {report.target} "
          f"in {report.elapsed_s:.1f}s ({report.retries} retr{'y' if report.retries == 1 else 'ies'}, "
          f"{report.duplicates_dropped} duplicate(s) dropped"
          + (f", resumed after {report.resumed_from} already sent" if report.resumed_from else "") + ")")
    if report.failures:
        print(f"{len(report.failures)} change(s) NOT acknowledged:")
        for f in report.failures[:50]:
            print(f"  {f.table} {f.key} {f.event_name} seq={f.sequence_number} id={f.event_id} "
                  f"shard={f.shard}: {f.reason} (after {f.attempts} attempts)")
        if len(report.failures) > 50:
            print(f"  ... and {len(report.failures) - 50} more (see {report.checkpoint_path})")
