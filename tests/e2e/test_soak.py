"""The fast variant of `make soak` (issue 11): fewer changes, the same faults, kill -9 and restart,
shard split, and the same checks from the lake itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lake.local.soak import DEFAULT_FAULTS, render, run_soak


@pytest.mark.timeout(1500)
def test_fast_soak_loses_nothing_doubles_nothing_and_keeps_every_key_in_order(tmp_path: Path) -> None:
    changes = int(os.environ.get("SOAK_FAST_CHANGES", 10_000))
    report = run_soak(changes, keys=1_000, faults=DEFAULT_FAULTS, poison=3, seed=5, workdir=tmp_path,
                      timeout_s=600, say=lambda _: None)
    table = render(report)
    assert report.changes_in == changes, table
    assert report.stream_records == changes, table
    assert report.kills == 1 and report.shard_split, table
    assert report.lost == 0 and report.duplicates == 0 and report.unexpected == 0, table
    assert report.raw_missing == 0 and report.order_violations == 0, table
    assert report.unexplained_dead_letters == 0, table
    assert report.poison_in_dlq == report.poison_written == 3, table
    assert report.replica_mismatches == 0, table
