"""RSS of an idle embedded AWS being polled, before and after the stream-memory patches.

Each mode runs in its own process: the embedded AWS with the lake's resources (three DynamoDB
tables with streams, the lake's Kinesis stream), polled as `lake up`'s runtime does when idle —
GetShardIterator + GetRecords on every shard every 100 ms — for ``--seconds``. ``before`` runs
moto's streams as moto ships them (every iterator kept forever); ``after`` with
``lake.local.embedded``'s patches. Reports RSS growth (MB, and MB/hour extrapolated from the
second half of the run) and the iterators moto holds. Target: after < 10 MB/hour.

    .venv/bin/python benchmarks/bench_idle.py [--seconds 120] [--mode both|before|after]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_MB_PER_HOUR = 10.0
WARMUP_S = 15.0  # before the first sample


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(mode: str, seconds: float) -> dict[str, Any]:
    from lake.local import embedded

    if mode == "before":
        embedded._patch_stream_memory = lambda: None  # moto's streams as moto ships them
    from lake.aws.clients import Clients
    from lake.aws.provision import provision
    from lake.settings import Settings

    with tempfile.TemporaryDirectory() as tmp, embedded.EmbeddedAWS(port=0) as aws:
        settings = Settings.resolve({"endpoint_url": aws.endpoint_url, "state_dir": tmp}, environ={},
                                    config_path=None)
        settings = settings.replace(source_tables=("orders", "users:user_id:-", "events"))
        clients = Clients(settings)
        prov = provision(settings, clients)
        st, kin = clients.dynamodbstreams, clients.kinesis
        ddb_shards = [(arn, st.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"])
                      for arn in prov.stream_arns.values()]
        kin_shards = [s["ShardId"] for s in kin.list_shards(StreamName=settings.kinesis_stream)["Shards"]]
        stop = threading.Event()
        polls = [0]

        def poll() -> None:
            while not stop.is_set():
                t0 = time.monotonic()
                for arn, shard in ddb_shards:
                    it = st.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")
                    st.get_records(ShardIterator=it["ShardIterator"], Limit=100)
                for shard in kin_shards:
                    it = kin.get_shard_iterator(StreamName=settings.kinesis_stream, ShardId=shard,
                                                ShardIteratorType="LATEST")
                    kin.get_records(ShardIterator=it["ShardIterator"], Limit=100)
                polls[0] += 1
                stop.wait(max(0.0, 0.1 - (time.monotonic() - t0)))

        thread = threading.Thread(target=poll, daemon=True)
        start_rss = rss_mb()
        thread.start()
        t0 = time.monotonic()
        time.sleep(min(WARMUP_S, seconds / 4))
        samples = []
        while time.monotonic() - t0 < seconds:
            time.sleep(min(10.0, max(0.0, seconds - (time.monotonic() - t0))))
            samples.append((round(time.monotonic() - t0), round(rss_mb(), 1)))
        stop.set()
        thread.join()
        end_rss, end_t = rss_mb(), time.monotonic()
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        iterators = len(dynamodbstreams_backends[embedded.ACCOUNT_ID][settings.region].shard_iterators)
    # the rate over the second half of the run: after moto's and the stores' working sets settled
    half = [x for x in samples if x[0] >= seconds / 2] or samples
    (t_a, rss_a), (t_b, rss_b) = half[0], (end_t - t0, end_rss)
    per_hour = (rss_b - rss_a) / max(1e-9, t_b - t_a) * 3600 if t_b > t_a else 0.0
    return {"mode": mode, "seconds": round(end_t - t0), "polls": polls[0],
            "shards": len(ddb_shards) + len(kin_shards), "rss_start_mb": round(start_rss, 1),
            "rss_end_mb": round(end_rss, 1), "growth_mb": round(end_rss - start_rss, 1),
            "mb_per_hour": round(per_hour, 1), "iterators_held": iterators, "samples": samples}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--mode", choices=("both", "before", "after"), default="both")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one mode, as JSON (child)
    args = ap.parse_args()
    if args.json:
        print(json.dumps(run(args.mode, args.seconds)))
        return 0
    modes = ("before", "after") if args.mode == "both" else (args.mode,)
    results = []
    for mode in modes:  # a fresh process each: RSS is per process
        out = subprocess.run([sys.executable, __file__, "--json", "--mode", mode, "--seconds", str(args.seconds)],
                             cwd=REPO, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'mode':>7} {'secs':>5} {'polls':>6} {'shards':>6} {'RSS start':>10} {'RSS end':>8} {'growth':>7} "
          f"{'MB/hour':>8} {'iterators held':>15}")
    for r in results:
        print(f"{r['mode']:>7} {r['seconds']:>5} {r['polls']:>6} {r['shards']:>6} {r['rss_start_mb']:>8.1f}MB "
              f"{r['rss_end_mb']:>6.1f}MB {r['growth_mb']:>5.1f}MB {r['mb_per_hour']:>8.1f} {r['iterators_held']:>15}")
    for r in results:
        print(f"{r['mode']} RSS samples (s, MB): {r['samples']}")
    after = [r for r in results if r["mode"] == "after"]
    return 0 if not after or after[0]["mb_per_hour"] < TARGET_MB_PER_HOUR else 1


if __name__ == "__main__":
    sys.exit(main())
