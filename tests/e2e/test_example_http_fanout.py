"""`lake example http_fanout` end to end: the lake's changes of the app's table reach a flaky
loopback endpoint, every one delivered (or refused and reported), in per-item order, repeated
only with the same idempotency key, and all of them in the lake's `changes` table."""

from __future__ import annotations

from tests.e2e.test_example_event_sourcing import run_example


def test_http_fanout_delivers_every_change_in_per_item_order_through_failures() -> None:
    code, o, counts, output = run_example("http_fanout")
    assert code == 0 and o["ok"] is True, output[-4000:]
    assert counts == {"shipments": o["changes_written"]}
    assert o["changes_in_lake"] == o["changes_written"] == o["delivered"] + o["refused"]
    assert o["undelivered"] == [] and o["unknown_deliveries"] == []
    assert o["order_regressions"] == [] and o["out_of_order_items"] == [] and o["incomplete_items"] == []
    assert o["conflicting_duplicates"] == []  # a repeat carries the same idempotency key and body
    # the endpoint's faults were met: retried requests, a refusal reported on the queue, and
    # an outage longer than one invocation's retries (the batch redelivered from its failure)
    assert o["failed_requests"] > 0 and o["refused"] >= 1 and o["refused_statuses"] == [422]
    assert o["redelivered_batches"] >= 1 and o["requests"] > o["delivered"] + o["refused"]
