"""Latency of `lake up`: a plain boto3 put_item in this process → the record in a wired handler.

Starts `lake up --port 0` as a subprocess with a sink handler wired next to the lake's own,
writes items one at a time and measures put→handler latency. Target: every change within 2 s.

    .venv/bin/python benchmarks/bench_latency.py [--items 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 2.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sink = Path(tmp) / "sink.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
        env["LAKE_SINK_FILE"] = str(sink)
        proc = subprocess.Popen(
            [sys.executable, "-m", "lake.cli", "up", "--port", "0", "--state-dir", f"{tmp}/state",
             "--function", "tests.e2e.sink:handler"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        endpoint = None
        for line in proc.stdout:
            if line.startswith("LAKE_ENDPOINT="):
                endpoint = line.strip().split("=", 1)[1]
                break
        if endpoint is None:
            print("lake up did not start", file=sys.stderr)
            return 1
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        latencies = []
        try:
            for i in range(args.items):
                t0 = time.time()
                ddb.put_item(TableName="orders", Item={"pk": {"S": f"L#{i}"}, "sk": {"S": "1"}})
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    lines = sink.read_text().splitlines() if sink.exists() else []
                    if len(lines) > i:
                        latencies.append(json.loads(lines[i])["received_at"] - t0)
                        break
                    time.sleep(0.01)
                else:
                    print(f"item {i} never arrived", file=sys.stderr)
                    return 1
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    lat = sorted(latencies)
    p95 = lat[int(0.95 * (len(lat) - 1))]
    print(f"put_item -> handler latency over {len(lat)} items: p50 {statistics.median(lat) * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms (target <= {TARGET_S * 1000:.0f} ms, "
          f"max/target = {lat[-1] / TARGET_S:.2f})")
    return 0 if lat[-1] <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
