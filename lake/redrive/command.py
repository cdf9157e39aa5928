"""``lake redrive``: send dead-lettered records back through their stage, and say what was re-driven."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from lake.errors import ConfigError
from lake.prompt import confirm_interactively
from lake.redrive.engine import RedriveOptions, RedriveReport, redrive
from lake.redrive.sources import SOURCES
from lake.settings import Settings

EPILOG = """\
sources of a message's records (--from):
  auto     the message's own records (the local runtime's), else the raw zone, else the stream
           (a PoisonRecord's: the stream first, then the raw zone, then the message)
  message  the records the message carries (or its recordFile)
  raw      the raw zone, by the batch's stream and sequence range (DynamoDB stream stages)
  stream   the stream itself, while it still holds them (24 h for DynamoDB Streams)

A message is deleted only once all its records succeeded; the others stay in the queue.

examples:
  lake redrive --endpoint-url http://127.0.0.1:4566 --dry-run
  lake redrive --endpoint-url http://127.0.0.1:4566 --function stream-archiver --from stream
  lake redrive --yes            # on AWS: Invoke each message's function
"""


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "redrive", parents=parents, help="send dead-lettered records back through their stage",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--queue", help="the dead-letter queue: name, URL or ARN (default: the lake's, dlq setting)")
    p.add_argument("--from", dest="source", choices=SOURCES, default="auto", help="where records come from")
    p.add_argument("--function", action="append", default=[], dest="functions", metavar="NAME",
                   help="only messages of this function or stage (repeatable)")
    p.add_argument("--invoke", choices=("auto", "python", "lambda"), default="auto",
                   help="run the stage in this process (python) or Invoke its Lambda function; "
                        "auto: python when the lake is local")
    p.add_argument("--handler", action="append", default=[], metavar="NAME=MODULE:FUNCTION",
                   help="the in-process handler of a function the lake does not know (repeatable)")
    p.add_argument("--attempts", type=int, default=3, help="invocations of a batch before leaving it (default 3)")
    p.add_argument("--max-messages", type=int, help="read at most this many messages")
    p.add_argument("--dry-run", action="store_true", help="find each message's records; send and delete nothing")
    p.add_argument("--yes", action="store_true", help="confirm invoking functions on a non-local lake")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def _handlers(items: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or not name or ":" not in spec:
            raise ConfigError(f"--handler {item!r}: expected NAME=module:function")
        out.append((name, spec))
    return tuple(out)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """0 when nothing is still failing, 1 otherwise."""
    options = RedriveOptions(
        source=args.source, dry_run=args.dry_run, attempts=args.attempts, max_messages=args.max_messages,
        functions=tuple(args.functions), queue=args.queue, handlers=_handlers(args.handler), invoke=args.invoke,
        yes=args.yes, confirm=confirm_interactively,
    )
    report = redrive(settings, options)
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render(report))
    return 0 if report.ok else 1


def render(report: RedriveReport) -> str:
    """The report as a table, one row per function, and the errors of what still fails."""
    total = report.totals()
    head = (f"dry run: {total.messages} message(s) in {report.queue_url}, {total.records} record(s) would be "
            "re-driven; nothing sent or deleted" if report.dry_run else
            f"re-drove {total.records} record(s) of {total.messages} message(s) from {report.queue_url}: "
            f"{total.succeeded} succeeded, {total.failing} still failing, {total.deleted} message(s) deleted")
    lines = [head]
    cols = ("FUNCTION", "MESSAGES", "RECORDS", "SUCCEEDED", "STILL FAILING", "DELETED", "FROM")
    rows = [(f.function, str(f.messages), str(f.records), str(f.succeeded), str(f.failing), str(f.deleted),
             ",".join(f"{k}:{n}" for k, n in sorted(f.sources.items())) or "-")
            for f in sorted(report.functions.values(), key=lambda f: f.function)]
    if rows:
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        for row in (cols, *rows):
            lines.append("  ".join(v.ljust(w) if i in (0, 6) else v.rjust(w)
                                   for i, (v, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    for f in report.functions.values():
        for err in f.errors[:10]:
            lines.append(f"  {f.function}: {err}")
    if report.unreadable:
        lines.append(f"{report.unreadable} message(s) are not stream on-failure messages: left in the queue")
    if report.skipped:
        lines.append(f"{report.skipped} message(s) of other functions: left in the queue")
    return "\n".join(lines)
