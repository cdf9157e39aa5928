"""The Lambda invocation contract shared by replay and the local runtime: the context object,
``module:function`` loading, and AWS's rules for a handler's ``batchItemFailures`` reply."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from lake.errors import ConfigError
from lake.invocation import LambdaContext, Outcome, interpret, resolve_handler
from tests.clock import ManualClock

IDS = ["101", "102", "103", "104"]


def failures(*ids: Any) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}


@pytest.mark.parametrize("reply", [None, {}, {"statusCode": 200}, {"batchItemFailures": None},
                                   {"batchItemFailures": []}])
def test_complete_success_replies(reply: Any) -> None:
    out = interpret(reply, IDS)
    assert out == Outcome(True) and out.resume_index(IDS) is None


def test_without_report_batch_item_failures_any_reply_is_a_success() -> None:
    assert interpret("nonsense", IDS, report_batch_item_failures=False).ok
    assert interpret(failures("103"), IDS, report_batch_item_failures=False).ok


@pytest.mark.parametrize(("reply", "why"), [
    ("nonsense", "not an object"),
    (["103"], "not an object"),
    ({"batchItemFailures": {"itemIdentifier": "103"}}, "not a list"),
    (failures(""), "malformed batchItemFailures entry"),
    (failures(None), "malformed batchItemFailures entry"),
    (failures(103), "malformed batchItemFailures entry"),  # a number is not an identifier
    ({"batchItemFailures": [{"ItemIdentifier": "103"}]}, "malformed batchItemFailures entry"),
    (failures("103", "999"), "'999', which is not in the batch"),
])
def test_whole_batch_failures(reply: Any, why: str) -> None:
    out = interpret(reply, IDS)
    assert not out.ok and out.failed_items == () and why in (out.error or "")
    assert out.resume_index(IDS) == 0


def test_partial_failure_resumes_at_the_lowest_reported_item() -> None:
    out = interpret(failures("104", "102"), IDS)
    assert not out.ok and out.failed_items == ("104", "102")
    assert out.resume_index(IDS) == 1


def test_context_counts_down_on_its_clock() -> None:
    clock = ManualClock(start=1_714_521_600.0)  # 2024-05-01T00:00:00Z
    ctx = LambdaContext("orders-consumer", region="eu-west-1", timeout_s=3.0, clock=clock)
    assert ctx.get_remaining_time_in_millis() == 3000
    clock.advance(1.25)
    assert ctx.get_remaining_time_in_millis() == 1750
    clock.advance(5)
    assert ctx.get_remaining_time_in_millis() == 0
    assert ctx.invoked_function_arn == "arn:aws:lambda:eu-west-1:123456789012:function:orders-consumer"
    assert ctx.log_group_name == "/aws/lambda/orders-consumer" and ctx.function_version == "$LATEST"
    assert ctx.log_stream_name.startswith("2024/05/01/[$LATEST]") and ctx.memory_limit_in_mb == 128
    assert ctx.aws_request_id != LambdaContext("orders-consumer", clock=clock).aws_request_id


def test_resolve_handler_imports_module_function_or_passes_a_callable() -> None:
    assert resolve_handler("json:dumps") is json.dumps
    assert resolve_handler("json:JSONEncoder.encode") is json.JSONEncoder.encode  # a dotted attribute path

    def mine(event: dict[str, Any], context: Any) -> None:
        return None

    assert resolve_handler(mine) is mine


@pytest.mark.parametrize(("spec", "why"), [
    ("json", "expected 'module:function'"),
    ("json:", "expected 'module:function'"),
    ("no_such_module_xyz:handler", "cannot import module 'no_such_module_xyz'"),
    ("json:no_such_function", "has no attribute 'no_such_function'"),
    ("json:__name__", "is not callable"),
])
def test_resolve_handler_says_what_is_wrong(spec: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        resolve_handler(spec)


def test_resolve_handler_imports_from_the_task_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "task_root_handler_mod.py").write_text("def handle(event, context):\n    return 'from task root'\n")
    monkeypatch.setattr(sys, "path", list(sys.path))  # undo the insertion after the test
    monkeypatch.delitem(sys.modules, "task_root_handler_mod", raising=False)
    with pytest.raises(ConfigError, match="cannot import"):
        resolve_handler("task_root_handler_mod:handle")  # not importable without the task root
    handler = resolve_handler("task_root_handler_mod:handle", task_root=str(tmp_path))
    assert handler({}, None) == "from task root" and sys.path[0] == str(tmp_path)
    resolve_handler("task_root_handler_mod:handle", task_root=str(tmp_path))
    assert sys.path.count(str(tmp_path)) == 1
