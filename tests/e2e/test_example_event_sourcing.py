"""`lake example event_sourcing` end to end: ordered, idempotent events, state rebuilt from the
events table and from the lake (through `lake replay`) equal to the live state, and the app's
archived tables' changes in the lake's `changes` table."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_example(name: str) -> tuple[int, dict[str, Any], dict[str, int], str]:
    """Run `lake example NAME`; (exit code, outcome, changes per table in the lake, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
    done = subprocess.run([sys.executable, "-m", "lake.cli", "example", name], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = done.stdout
    block = re.search(r"^\{\n.*?^\}$", out, re.S | re.M)
    assert block, f"no outcome printed:\n{out}\n{done.stderr[-3000:]}"
    counts = {t: int(n) for n, t in re.findall(r"^lake: (\d+) change\(s\) of table (\S+) in", out, re.M)}
    return done.returncode, json.loads(block.group(0))["outcome"], counts, out + done.stderr


def test_event_sourcing_keeps_one_ordered_event_per_request_and_rebuilds_the_same_state() -> None:
    code, o, counts, output = run_example("event_sourcing")
    assert code == 0 and o["ok"] is True, output[-4000:]
    # one event per request, at its first submission's sequence, in order; retries wrote nothing
    assert o["log_problems"] == [] and o["events"] == o["commands"] and o["retries_sent"] > 0
    assert o["invalid_request_status"] == 400
    # replaying the archived commands into the live processor writes no second event
    assert o["replayed"] == o["commands"] + o["retries_sent"] and o["replay_failures"] == 0
    assert o["events_after_replay"] == o["events"]
    # the three states agree: events table, lake replay, live snapshots
    assert o["state_from_events_equals_live"] and o["state_from_lake_equals_live"] and o["entities"] > 30
    assert o["lake_replay"] == o["replayed"] and o["duplicates_in_lake_rebuild"] == o["retries_sent"]
    assert o["rebuilt_event_count"] == o["events"]
    # the lake holds every change: each command (retries included) and each event
    assert counts == {"commands": o["commands"] + o["retries_sent"], "events": o["events"]}
    assert o["lake_changes"] == counts
