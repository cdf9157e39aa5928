"""``lake glue <job>`` (compact, current_state, backfill, bootstrap) and ``lake bootstrap``:
the Glue jobs run from the command line, on the embedded AWS or on AWS (docs/adr/0004)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from lake.errors import ConfigError
from lake.glue import jobs
from lake.glue.report import JobReport, Progress, no_progress
from lake.prompt import confirm_interactively
from lake.settings import Settings

EPILOG = """\
examples:
  lake glue compact --dry-run                         what would be rewritten, expired, deleted
  lake glue compact --table orders_history --target-mb 64
  lake glue current_state                              every <table>_current, incrementally
  lake glue current_state --table orders --as-of 2024-05-01T00:00:00Z
  lake glue backfill --table orders --since 2024-05-01 --until 2024-05-02
  lake bootstrap --table orders                        export the table and load it
  lake glue bootstrap --table orders --from s3://bucket/exports/orders/AWSDynamoDB/0170...-abcd/
"""
HELP = {
    "compact": "bin-pack small files, expire old snapshots, remove orphan files",
    "current_state": "keep <table>_current (one row per live item) up to date; --as-of for a past time",
    "backfill": "rebuild changes and <table>_history of a table and time range from the raw zone",
    "bootstrap": "load a DynamoDB export (items older than the stream) into history and current state",
}


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    # the common flags go on each job (after the job's name), not on the group as well: argparse
    # would let the job's defaults overwrite what was given before it
    glue = subparsers.add_parser("glue", help="the lake's Glue jobs: compact, current_state, "
                                 "backfill, bootstrap", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = glue.add_subparsers(dest="job", required=True, metavar="JOB")
    for job in jobs.JOBS:
        _job_parser(sub, job, parents)
    _job_parser(subparsers, "bootstrap", parents)


def _job_parser(sub: Any, job: str, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(job, parents=parents, help=HELP[job], description=HELP[job], epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    jobs.add_arguments(p, job)
    p.add_argument("--yes", action="store_true", help="confirm changing a lake that is not local")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run, job=job)


def run(args: argparse.Namespace, settings: Settings) -> int:
    job = args.job
    if not args.dry_run and not settings.is_local and not args.yes:
        message = (f"lake glue {job} changes the lake's tables in Glue database {settings.glue_database} "
                   f"(s3://{settings.bucket}, endpoint {settings.endpoint_url or 'AWS'})")
        if not confirm_interactively(message):
            raise ConfigError(f"refusing: {message}; pass --yes to confirm (not local, and no confirmation given)")
    given = {k: v for k, v in vars(args).items() if v is not None}
    if args.no_progress or not sys.stderr.isatty():
        report = jobs.run(job, settings, given, no_progress)
    else:
        report = _with_progress(job, settings, given)
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print("\n".join(report.lines()))
    return 0


def _with_progress(job: str, settings: Settings, given: dict[str, Any]) -> JobReport:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bars

    with Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
              console=Console(stderr=True), transient=True) as bars:
        tasks: dict[str, Any] = {}

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bars.add_task(what, total=total)
            bars.update(tasks[what], completed=done, total=total)

        progress: Progress = update
        return jobs.run(job, settings, given, progress)
