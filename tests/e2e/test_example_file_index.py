"""`lake example file_index`: uploads indexed by the article's state machine, re-uploads updating
their row, and the index table's changes in the lake."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from examples.file_index.app import BUCKET, TABLE
from examples.file_index.scenario import EDIT, FILES, REUPLOADED
from tests.e2e.conftest import REPO

pytestmark = pytest.mark.e2e


def outcome_of(stdout: str) -> dict[str, Any]:
    """The ``{"outcome": …}`` document ``lake example`` prints after the scenario's narration."""
    start = re.search(r"^\{$", stdout, re.MULTILINE)
    assert start, stdout
    doc, _ = json.JSONDecoder().raw_decode(stdout[start.start():])
    return dict(doc["outcome"])


def test_lake_example_file_index() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
    proc = subprocess.run([sys.executable, "-m", "lake.cli", "example", "file_index", "--timeout", "60"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    report = proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0, report
    outcome = outcome_of(proc.stdout)

    index = outcome["index"]
    assert sorted(index) == sorted(FILES), report  # keys as uploaded: not URL-encoded
    for key, body in FILES.items():
        again = key in REUPLOADED
        content = body + EDIT if again else body
        row = index[key]
        assert (row["bucket"], row["size"], row["etag"]) == (BUCKET, str(len(content)),
                                                             hashlib.md5(content).hexdigest()), key
        assert row["version"] == ("2" if again else "1"), key
        if again:  # the same row, updated: lastModified moved, firstSeen kept
            assert row["lastModified"] > row["firstSeen"], row
        else:
            assert row["lastModified"] == row["firstSeen"], row

    assert outcome["executions"] == len(FILES) + len(REUPLOADED)
    assert outcome["executions_succeeded"] and outcome["executions_named_once"]
    # the lake: one INSERT per file, one MODIFY per re-upload, in `changes` (the scenario's query)
    # and counted again by `lake example` itself
    assert outcome["lake_changes"] == {"INSERT": len(FILES), "MODIFY": len(REUPLOADED)}
    counted = re.search(rf"^lake: (\d+) change\(s\) of table {re.escape(TABLE)}\b", proc.stdout, re.MULTILINE)
    assert counted and int(counted[1]) == len(FILES) + len(REUPLOADED), report
    assert outcome["ok"] is True
