"""A real local lake for the dashboard's tests: `lake up`'s pipeline in process, fed a generated workload
(inserts, updates, user deletes, TTL expiries) and drained, with the workload as ground truth."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lake.local.demo import write_workload
from lake.local.embedded import EmbeddedAWS, sweep_ttl
from lake.local.up import EmbeddedLake
from lake.local.workload import Workload, generate
from lake.settings import Settings


@dataclass
class Lake:
    lake: EmbeddedLake
    settings: Settings
    workload: Workload
    ttl_expired: int

    def expected_status_counts(self) -> Counter[tuple[str, str | None]]:
        """Items that exist at the end, per (table, status): the current-state counts' truth."""
        expired = {id(item) for _, item in self.workload.ttl_due}
        return Counter((table, item.get("status", {}).get("S"))
                       for (table, _), item in self.workload.final.items() if id(item) not in expired)


@contextmanager
def running_lake(aws: EmbeddedAWS, tmp: Path, changes: int = 300, seed: int = 5,
                 bucket: str = "dashboard-lake") -> Iterator[Lake]:
    """``aws``: the session's embedded AWS, reset first: every embedded AWS of a process shares moto's
    backends, so this lake starts empty whatever the tests before it left."""
    aws.reset()
    settings = Settings.resolve({"state_dir": str(tmp / "state"), "bucket": bucket}, environ={}, config_path=None)
    lake = EmbeddedLake(settings, port=0, ttl_interval_s=None, status_interval_s=None)
    s = lake.start()
    try:
        assert lake.clients is not None
        now = time.time()
        wl = generate(s.tables, changes, seed=seed, now=now)
        write_workload(lake.clients, wl)
        expired = sum(r.expired for r in sweep_ttl(s.region, now=now))
        assert lake.wait_idle(120), "the pipeline did not drain"
        yield Lake(lake, s, wl, expired)
    finally:
        lake.stop()
