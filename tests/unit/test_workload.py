from collections import Counter

from lake.local.workload import generate, write_batches
from lake.settings import TableSpec


def test_same_seed_same_workload_different_seed_different() -> None:
    tables = [TableSpec("orders")]
    a, b = generate(tables, 500, seed=1), generate(tables, 500, seed=1)
    assert a.ops == b.ops
    assert generate(tables, 500, seed=2).ops != a.ops


def test_workload_mixes_every_kind_of_change_and_counts_them() -> None:
    wl = generate([TableSpec("orders"), TableSpec("users", "id", None)], 2000, seed=3, now=1_700_000_000)
    kinds = Counter(op.kind for op in wl.ops)
    assert wl.inserts > 0 and wl.updates > 0 and wl.deletes == kinds["delete"] > 0
    assert kinds["put"] == wl.inserts + wl.updates
    assert len(wl.ttl_due) > 0
    assert wl.expected_records == len(wl.ops) + len(wl.ttl_due)
    assert {op.table for op in wl.ops} == {"orders", "users"}
    assert all("sk" not in op.key for op in wl.ops if op.table == "users")


def test_batches_keep_order_and_never_repeat_a_key() -> None:
    wl = generate([TableSpec("orders")], 1500, seed=4)
    flat = []
    for table, ops in write_batches(wl.ops):
        assert 0 < len(ops) <= 25 and {op.table for op in ops} == {table}
        keys = [tuple(sorted((k, str(v)) for k, v in op.key.items())) for op in ops]
        assert len(keys) == len(set(keys))
        flat.extend(ops)
    assert flat == wl.ops
