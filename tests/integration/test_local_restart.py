"""Issue 11, "restart skips data": a checkpoint belongs to one stream instance and is never
applied to another (a fresh embedded AWS reuses the stream ARNs, and its sequence numbers
start again)."""

from __future__ import annotations

from pathlib import Path

from lake.aws.clients import Clients
from lake.local.runtime import EventSourceMapping, LocalRuntime
from lake.local.up import EmbeddedLake
from lake.settings import Settings
from tests.runtime_helpers import Recorder, fresh_moto, make_kinesis, put_items, put_kinesis


def test_a_checkpoint_of_an_earlier_stream_instance_is_not_applied(clients: Clients, tmp_path: Path) -> None:
    arn = make_kinesis(clients)
    put_kinesis(clients, 5)
    first = Recorder()
    rt1 = LocalRuntime(clients, [EventSourceMapping(first, arn, name="kin")], tmp_path, poll_interval_s=0.02)
    assert rt1.run_until_idle(10)
    rt1.stop()
    assert len(first.delivered()) == 5
    fresh_moto()  # a new embedded AWS: the same stream ARN, sequence numbers from the start again
    assert make_kinesis(clients) == arn
    seqs = put_kinesis(clients, 8)
    second = Recorder()
    rt2 = LocalRuntime(clients, [EventSourceMapping(second, arn, name="kin")], tmp_path, poll_interval_s=0.02)
    try:
        assert rt2.run_until_idle(10)
    finally:
        rt2.stop()
    assert second.delivered() == seqs  # all of the new stream's records, none skipped


def test_the_same_stream_instance_resumes_from_its_checkpoint(clients: Clients, tmp_path: Path) -> None:
    arn = make_kinesis(clients)
    seqs = put_kinesis(clients, 3)
    first = Recorder()
    rt1 = LocalRuntime(clients, [EventSourceMapping(first, arn, name="kin")], tmp_path, poll_interval_s=0.02)
    assert rt1.run_until_idle(10)
    rt1.stop()
    seqs += put_kinesis(clients, 2, start=3)
    second = Recorder()
    rt2 = LocalRuntime(clients, [EventSourceMapping(second, arn, name="kin")], tmp_path, poll_interval_s=0.02)
    try:
        assert rt2.run_until_idle(10)
    finally:
        rt2.stop()
    assert first.delivered() == seqs[:3] and second.delivered() == seqs[3:]


def test_embedded_lake_restarted_on_the_same_port_and_state_dir_delivers_everything(
        settings: Settings, tmp_path: Path) -> None:
    """Stop `lake up` and start it again (a fresh embedded AWS, the same port and state dir):
    every change of the new session reaches the lake's Kinesis consumer."""
    state = tmp_path / "lake-state"
    base = settings.replace(state_dir=str(state), endpoint_url=None)
    from lake.local.embedded import free_port

    port = free_port()
    delivered: list[list[str]] = []
    for session, n in enumerate((6, 9)):
        if session:
            fresh_moto()
        rec = Recorder()
        with EmbeddedLake(base, port=port, ttl_interval_s=None, poll_interval_s=0.02) as lake:
            assert lake.clients is not None and lake.provisioned is not None
            lake.runtime.add_mapping(EventSourceMapping(rec, lake.provisioned.kinesis_arn, name="kinesis-sink"))
            put_items(lake.clients, n, start=100 * session)
            assert lake.wait_idle(30)
        delivered.append([r["kinesis"]["partitionKey"] for e in rec.events for r in e["Records"]])
    assert len(delivered[0]) == 6
    assert len(delivered[1]) == 9  # before the fix: the first 6 were skipped
