"""The four jobs' arguments, declared once, and how a job runs: from ``lake glue <job>``'s
argparse namespace, or from an AWS Glue job's arguments (``glue_jobs/*.py``).

A Glue job gets its arguments as ``--name value`` pairs (``awsglue.utils.getResolvedOptions``,
which only knows required names: the optional ones are looked up when present); outside Glue
the same script parses them with argparse. Either way the names are the CLI's flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lake.errors import ConfigError
from lake.glue.report import JobReport, Progress, no_progress
from lake.replay.selection import parse_time
from lake.settings import Settings

log = logging.getLogger(__name__)

DAY_S = 86_400.0
MB = 1024 * 1024


@dataclass(frozen=True)
class Arg:
    """One job argument: the flag (``--target-mb``), its help, and how its text is read."""

    flag: str
    help: str
    kind: str = "str"  # str | int | float | time | flag | list
    default: Any = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


COMMON = (
    Arg("--dry-run", "plan and report; change nothing", "flag", False),
    Arg("--workgroup", "Athena workgroup of every Athena statement (default: the lake's, from the settings; "
        "the role running the job must be allowed to use it)"),
)
ENGINES = ("auto", "pyiceberg", "athena")
JOBS: dict[str, tuple[Arg, ...]] = {
    "compact": (
        Arg("--table", "catalog table to compact (repeatable, or comma-separated); default: every one", "list"),
        Arg("--target-mb", "target data file size in MB (default 128)", "float", 128.0),
        Arg("--retention-days", "expire snapshots older than this (default 7: the time-travel window)",
            "float", 7.0),
        Arg("--orphan-age-hours", "delete unreferenced files older than this (default 72)", "float", 72.0),
        Arg("--engine", "athena (OPTIMIZE and VACUUM: the default on AWS) or pyiceberg (this process, bounded "
            "memory: the default on the embedded AWS, which has no Athena)", "str", "auto"),
    ),
    "current_state": (
        Arg("--table", "source (DynamoDB) table (repeatable, or comma-separated); default: every one", "list"),
        Arg("--as-of", "materialise the state at this time (ISO-8601 or epoch) into a snapshot table", "time"),
        Arg("--into", "the --as-of table's name (default <stem>_current_at_<time>)"),
        Arg("--full", "rebuild from the whole history, not incrementally", "flag", False),
        Arg("--engine", "athena (incremental MERGE INTO, CREATE TABLE AS: the default on AWS) or pyiceberg (this "
            "process, incremental: the default on the embedded AWS)", "str", "auto"),
    ),
    "backfill": (
        Arg("--table", "source (DynamoDB) table to rebuild (required)"),
        Arg("--since", "start of the time range (ISO-8601 or epoch; inclusive)", "time"),
        Arg("--until", "end of the time range (exclusive)", "time"),
        Arg("--per-day", "one atomic swap per day of the range instead of one for the whole range", "flag", False),
        Arg("--chunk-rows", "changes built and written at a time (memory holds one chunk's rows; default 20000)",
            "int", 20_000),
    ),
    "bootstrap": (
        Arg("--table", "source (DynamoDB) table to export and load (required)"),
        Arg("--from", "load this existing export (s3://bucket/prefix) instead of starting one"),
        Arg("--incremental", "an incremental export (NEW_AND_OLD_IMAGES) of --since..--until", "flag", False),
        Arg("--since", "start of the incremental window (ISO-8601 or epoch)", "time"),
        Arg("--until", "end of the incremental window", "time"),
        Arg("--export-time", "the point in time of an export without manifest (ISO-8601 or epoch)", "time"),
        Arg("--timeout", "seconds to wait for the export (default 3600)", "float", 3600.0),
    ),
}
# the lake's own settings, accepted by the Glue scripts too (the CLI has them as common flags)
SETTINGS_ARGS = ("endpoint_url", "region", "bucket", "prefix", "glue_database")


def add_arguments(parser: argparse.ArgumentParser, job: str) -> None:
    for arg in (*JOBS[job], *COMMON):
        if arg.kind == "flag":
            parser.add_argument(arg.flag, action="store_true", help=arg.help)
        elif arg.kind == "list":
            parser.add_argument(arg.flag, action="append", dest=arg.dest, help=arg.help)
        else:
            parser.add_argument(arg.flag, dest=arg.dest, help=arg.help)


def _value(arg: Arg, raw: Any) -> Any:
    if raw is None or raw is False:
        return arg.default
    if arg.kind == "flag":
        return raw is True or str(raw).lower() in ("true", "1", "yes")
    if arg.kind == "list":
        items = raw if isinstance(raw, list) else [raw]
        return tuple(p.strip() for item in items for p in str(item).split(",") if p.strip())
    if arg.kind in ("int", "float"):
        try:
            return (int if arg.kind == "int" else float)(raw)
        except ValueError:
            raise ConfigError(f"{arg.flag}: {raw!r} is not a number") from None
    if arg.kind == "time":
        return parse_time(str(raw))
    return str(raw)


def values(job: str, given: dict[str, Any]) -> dict[str, Any]:
    """The job's arguments by dest, typed, defaults filled."""
    return {arg.dest: _value(arg, given.get(arg.dest)) for arg in (*JOBS[job], *COMMON)}


def run(job: str, settings: Settings, given: dict[str, Any], progress: Progress = no_progress,
        mapper: Any = None) -> JobReport:
    """Run ``job`` with its arguments (by dest, as text or typed). ``mapper``
    (:data:`lake.glue.distributed.Mapper`): workers for the jobs that can spread their work
    (``backfill``, ``bootstrap``); an AWS Glue job passes its Spark executors'."""
    v = values(job, given)
    if v["workgroup"]:
        settings = dataclasses.replace(settings, athena_workgroup=v["workgroup"])
    if engine(settings, v.get("engine")) == "athena":
        from lake.glue import athena

        if job == "compact":
            return athena.compact_on_athena(settings, v["table"] or (), int(v["target_mb"] * MB),
                                            v["retention_days"] * DAY_S, v["dry_run"])
        return athena.current_on_athena(settings, v["table"] or (), v["as_of"], v["into"], v["dry_run"],
                                        full=v["full"])
    if job == "compact":
        from lake.glue.compact import CompactOptions, compact

        return compact(settings, CompactOptions(
            tables=v["table"] or (), target_bytes=int(v["target_mb"] * MB), retention_s=v["retention_days"] * DAY_S,
            orphan_grace_s=v["orphan_age_hours"] * 3600, dry_run=v["dry_run"]), progress=progress)
    if job == "current_state":
        from lake.glue.current import CurrentOptions, current_state

        return current_state(settings, CurrentOptions(tables=v["table"] or (), as_of_us=v["as_of"], into=v["into"],
                                                      full=v["full"], dry_run=v["dry_run"]), progress=progress)
    if job == "backfill":
        from lake.glue.backfill import BackfillOptions, backfill

        return backfill(settings, BackfillOptions(v["table"] or "", v["since"], v["until"], v["dry_run"],
                                                  v["per_day"], v["chunk_rows"]), progress=progress, mapper=mapper)
    if job == "bootstrap":
        from lake.glue.bootstrap import BootstrapOptions, bootstrap

        return bootstrap(settings, BootstrapOptions(
            v["table"] or "", v["from"], v["incremental"], v["since"], v["until"], v["export_time"],
            v["timeout"], v["dry_run"]), progress=progress, mapper=mapper)
    raise ConfigError(f"unknown job {job!r} (known: {', '.join(JOBS)})")


def engine(settings: Settings, name: str | None) -> str | None:
    """The engine a job runs on: ``auto`` is Athena on AWS (the heavy step on a distributed
    engine, docs/adr/0004) and pyiceberg on an endpoint (the embedded AWS has no Athena).
    None for the jobs without a choice."""
    if name is None:
        return None
    if name not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {name!r}")
    if name == "auto":
        return "pyiceberg" if settings.endpoint_url else "athena"
    return name


def glue_arguments(job: str, argv: Sequence[str], resolve: Callable[[Sequence[str], list[str]], dict[str, str]]
                   ) -> dict[str, Any]:
    """A Glue job's arguments: ``resolve`` is ``awsglue.utils.getResolvedOptions``, asked only for
    the names present in ``argv`` (it fails on an absent one; ours are all optional)."""
    names = [a.dest for a in (*JOBS[job], *COMMON)] + list(SETTINGS_ARGS)
    present = [n for n in names if f"--{n}" in argv]
    return dict(resolve(argv, present)) if present else {}


def argparse_arguments(job: str, argv: Sequence[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog=f"glue_jobs/{job}.py", description=f"the lake's {job} job")
    add_arguments(parser, job)
    for name in SETTINGS_ARGS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name)
    return vars(parser.parse_args(list(argv)))


def script_main(job: str, argv: Sequence[str] | None = None) -> int:
    """A ``glue_jobs/`` script's body: arguments from Glue (or argparse), settings, run, report."""
    argv = list(sys.argv if argv is None else argv)
    mapper = None
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        given = argparse_arguments(job, argv[1:])
    else:  # pragma: no cover - only inside AWS Glue
        given = glue_arguments(job, argv, getResolvedOptions)
        from pyspark.context import SparkContext  # type: ignore[import-not-found]

        from lake.glue.distributed import spark_map

        mapper = spark_map(SparkContext.getOrCreate())
    settings = Settings.resolve({k: given.get(k) for k in SETTINGS_ARGS})

    def log_progress(what: str, done: int, total: int) -> None:
        log.info("%s: %d/%d", what, done, total)

    report = run(job, settings, given, log_progress, mapper)
    print("\n".join(report.lines()))
    return 0
