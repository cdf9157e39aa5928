"""Pure fan-out planning: waves keep one record per key, chunks respect Kinesis limits."""

from __future__ import annotations

from lake.fanout.plan import MAX_REQUEST_BYTES, Entry, SendPlan, chunks


def entry(i: int, key: str, size: int = 10) -> Entry:
    return Entry(i, str(100 + i), key, b"x" * size, "orders", f"e{i}")


def test_a_wave_holds_the_head_of_each_key_in_batch_order() -> None:
    plan = SendPlan.of([entry(0, "A"), entry(1, "B"), entry(2, "A"), entry(3, "C")])
    assert [e.index for e in plan.wave()] == [0, 1, 3]
    plan.succeeded(plan.queues["A"][0])
    assert [e.index for e in plan.wave()] == [1, 2, 3]


def test_giving_up_blocks_the_key_and_everything_after_it() -> None:
    plan = SendPlan.of([entry(0, "A"), entry(1, "B"), entry(2, "A"), entry(3, "C")])
    b = plan.queues["B"][0]
    assert not plan.failed(b, max_attempts=2)
    assert plan.failed(b, max_attempts=2)
    assert [e.index for e in plan.wave()] == [0]  # C (index 3) waits: it comes after the give-up
    plan.succeeded(plan.queues["A"][0])
    assert plan.wave() == []  # A's next record (index 2) is after the give-up too
    plan.abandon_rest()
    assert plan.failure_identifiers() == ["101", "102", "103"]


def test_chunks_respect_count_and_bytes() -> None:
    many = [entry(i, f"K{i}") for i in range(1201)]
    assert [len(c) for c in chunks(many)] == [500, 500, 201]
    big = [entry(i, f"K{i}", size=1_000_000) for i in range(11)]
    assert all(sum(e.size for e in c) <= MAX_REQUEST_BYTES for c in chunks(big))
    assert sum(len(c) for c in chunks(big)) == 11
