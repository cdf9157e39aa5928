"""``lake migrate``: turn a curated zone written by the previous version into Iceberg tables.

Existing Parquet files are registered as they are (no row is read or rewritten) where their
types allow; the others are rewritten through the consumer's rules, and what cannot be
registered is listed with the reason. The old Hive tables are kept as ``<name>_hive_backup``
(see ``lake.curate.migrate``). Running it again changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from lake.curate.migrate import MigrationReport, TableReport, migrate
from lake.errors import ConfigError
from lake.prompt import confirm_interactively
from lake.settings import Settings

EPILOG = """\
examples:
  lake migrate --dry-run                     what would be registered, rewritten, refused
  lake migrate --endpoint-url http://127.0.0.1:4566
  lake migrate --profile prod --bucket my-lake --yes
"""
SHOWN = 20  # files listed per table and kind of outcome


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "migrate", parents=parents, help="turn the previous version's curated zone into Iceberg tables",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dry-run", action="store_true", help="read and print the plan; change nothing")
    p.add_argument("--yes", action="store_true", help="confirm migrating a lake that is not local")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """0 when every file was registered (or on a dry run), 1 when some could not be."""
    if not args.dry_run and not settings.is_local and not args.yes:
        message = (f"lake migrate replaces the Hive tables of Glue database {settings.glue_database} "
                   f"with Iceberg tables over s3://{settings.bucket}/{settings.zone_prefix('curated')} "
                   f"(endpoint {settings.endpoint_url or 'AWS'})")
        if not confirm_interactively(message):
            raise ConfigError(f"refusing: {message}; pass --yes to confirm (not local, and no confirmation given)")
    show_progress = not args.no_progress and sys.stderr.isatty()
    report = _with_progress(settings, args.dry_run) if show_progress else migrate(settings, dry_run=args.dry_run)
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_report(report)
    return 0 if report.dry_run or report.ok else 1


def _with_progress(settings: Settings, dry_run: bool) -> MigrationReport:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        return migrate(settings, dry_run=dry_run, progress=update)


def print_report(report: MigrationReport) -> None:
    if not report.tables:
        print("nothing to migrate: no Hive table of the previous version (changes, <table>_history) "
              "and no backup of an earlier run in the catalog")
        return
    verb = "would be" if report.dry_run else "were"
    for t in report.tables:
        print(_headline(t))
        if t.status == "already migrated":
            continue
        print(f"  {t.files} file(s) found: {t.registered} {verb} registered as they are ({t.registered_rows} rows), "
              f"{t.rewritten} {verb} rewritten ({t.rewritten_rows} rows"
              + (f", {t.duplicates_dropped} rows already held dropped" if t.duplicates_dropped else "") + ")"
              + (f", {t.already} registered by an earlier run" if t.already else "")
              + f", {len(t.unregistered)} could not be registered")
        if t.added_columns:
            print(f"  columns {'to add' if report.dry_run else 'added'}: {', '.join(t.added_columns)}")
        _listed("rewritten" if not report.dry_run else "to rewrite", [(u.key, u.reason) for u in t.rewrites])
        _listed("NOT registered (left untouched)", [(u.key, u.reason) for u in t.unregistered])
        for note in t.notes[:SHOWN]:
            print(f"  note: {note}")
        if len(t.notes) > SHOWN:
            print(f"  note: ... and {len(t.notes) - SHOWN} more")
    if report.dry_run:
        print("dry run: nothing was changed")
    else:
        print(f"done in {report.elapsed_s:.1f}s" + ("" if report.ok else "; some files could not be registered "
                                                     "(above): they are untouched"))


def _headline(t: TableReport) -> str:
    into = ", ".join(t.targets) or "?"
    source = f" (source {', '.join(t.sources)})" if t.sources and t.kind == "history" else ""
    kept = "to be kept" if t.status == "planned" else "kept"
    backup = f"; old definition {kept} as {t.backup}" if t.backup and t.status != "not migrated" else ""
    return f"{t.old} → Iceberg {into}{source}: {t.status}{backup}"


def _listed(title: str, items: list[tuple[str, str]]) -> None:
    if not items:
        return
    print(f"  {title}:")
    for key, reason in items[:SHOWN]:
        print(f"    {key}: {reason}")
    if len(items) > SHOWN:
        print(f"    ... and {len(items) - SHOWN} more (--json lists them all)")
