"""The pure parts of the Glue jobs: the compaction plan, the latest change per item, the
jobs' arguments as the CLI and AWS Glue give them, the report."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lake.aws.catalog import DataFileRef
from lake.errors import ConfigError
from lake.glue import jobs
from lake.glue.compact import plan_bins
from lake.glue.report import JobReport
from lake.glue.state import fold, latest, live

MB = 1024 * 1024


def _file(path: str, size_mb: float, day: str = "2024-01-01", deletes: bool = False) -> DataFileRef:
    return DataFileRef(path, (("dt", day),), 10, int(size_mb * MB), deletes, None)


def test_plan_bins_packs_small_files_per_partition_and_leaves_singles_and_big_files() -> None:
    files = [_file(f"a{i}", 30) for i in range(5)] + [_file("big", 120), _file("lone", 1, "2024-01-02"),
                                                      _file("del", 1, deletes=True)]
    bins = plan_bins(files, 128 * MB)
    assert sorted(sorted(f.path for f in b) for b in bins) == [["a0", "a1", "a2", "a3"]]  # a4 alone: left
    day2 = [_file(f"b{i}", 1, "2024-01-02") for i in range(3)]
    assert [len(b) for b in plan_bins(files + day2, 128 * MB)] == [4, 4]  # lone + b0..b2 in their own day
    assert plan_bins([_file("x", 100), _file("y", 100)], 128 * MB) == []  # not small (75% of the target)


T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _rows(*rows: tuple[str, int, str, str, str]) -> pa.Table:
    key, secs, seq, event_id, name = zip(*rows, strict=True)
    return pa.table({"key": list(key), "event_time": pa.array([T0 + dt.timedelta(seconds=s) for s in secs],
                                                             pa.timestamp("us", "UTC")),
                     "sequence_number": list(seq), "event_id": list(event_id), "event_name": list(name)})


def test_latest_orders_by_time_then_sequence_and_fold_matches_one_pass() -> None:
    rows = _rows(("A", 1, "002", "e2", "MODIFY"), ("A", 1, "003", "e3", "MODIFY"), ("A", 0, "009", "e1", "INSERT"),
                 ("B", 5, "001", "e4", "INSERT"), ("B", 6, "000", "e5", "REMOVE"), ("C", 2, "001", "e6", "INSERT"))
    got = latest(rows)
    assert got.column("event_id").to_pylist() == ["e3", "e5", "e6"]
    assert live(got).column("key").to_pylist() == ["A", "C"]
    folded = None
    for i in range(rows.num_rows):  # one row at a time, as files arrive
        folded = fold(folded, rows.slice(i, 1))
    assert folded is not None and folded.sort_by("key").equals(got)


def test_job_arguments_from_argparse_and_from_glue() -> None:
    given = jobs.argparse_arguments("compact", ["--table", "a,b", "--table", "c", "--target-mb", "64", "--dry-run"])
    v = jobs.values("compact", given)
    assert (v["table"], v["target_mb"], v["dry_run"], v["retention_days"]) == (("a", "b", "c"), 64.0, True, 7.0)

    asked: list[list[str]] = []

    def resolve(argv: list[str], names: list[str]) -> dict[str, str]:  # getResolvedOptions' contract
        asked.append(names)
        return {n: argv[argv.index(f"--{n}") + 1] for n in names}

    argv = ["script.py", "--JOB_NAME", "j", "--as_of", "2024-01-01T00:00:00Z", "--bucket", "lake"]
    given = jobs.glue_arguments("current_state", argv, resolve)
    assert asked == [["as_of", "bucket"]]  # only what is there: the others are optional
    assert jobs.values("current_state", given)["as_of"] == 1_704_067_200_000_000
    with pytest.raises(ConfigError, match="not a number"):
        jobs.values("compact", {"target_mb": "big"})


def test_the_report_says_what_changed() -> None:
    report = JobReport("compact")
    t = report.table("changes")
    t.files_in, t.files_out, t.bytes_in = 12, 1, 3 * MB
    text = "\n".join(report.done().lines())
    assert "changes: files 12 → 1" in text and "3.0 MB" in text and report.changed
    assert not JobReport("compact").done().changed


def test_two_units_needs_for_one_new_column_meet_in_the_wider_type() -> None:
    import pyarrow as pa

    from lake.glue.distributed import wider_type

    dec = pa.decimal128(38, 18)
    assert wider_type(pa.int64(), dec) == dec and wider_type(dec, pa.int64()) == dec
    assert wider_type(pa.decimal128(20, 2), pa.decimal128(30, 2)) == pa.decimal128(30, 2)
    assert wider_type(pa.int64(), pa.decimal128(20, 2)) is None  # 18 integer digits cannot hold every int64
    assert wider_type(pa.int64(), pa.string()) is None and wider_type(pa.string(), pa.string()) == pa.string()
