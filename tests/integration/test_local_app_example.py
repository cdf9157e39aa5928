"""``lake example <name>``: a fresh embedded lake, the example's app wired, its scenario run, the
outcome printed with each archived table's changes as the lake's query engine counts them."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lake.apps import App, Table
from lake.cli import main
from lake.local.apps import LocalApp

APP = App("fake-demo", tables=(Table("fake-notes", hash_key="id"),))


def run(app: LocalApp, say: Callable[[str], None]) -> dict[str, Any]:
    ddb = app.clients.dynamodb
    for i in range(3):
        ddb.put_item(TableName="fake-notes", Item={"id": {"S": f"n{i}"}})
    ddb.delete_item(TableName="fake-notes", Key={"id": {"S": "n0"}})
    say("wrote 3 notes, deleted 1")
    return {"ok": app.wait_idle(60), "notes": 3}


@pytest.fixture
def fake_example() -> Iterator[str]:
    """``examples.fake_demo`` (app + scenario) as modules of this test."""
    app_module, scenario = types.ModuleType("examples.fake_demo.app"), types.ModuleType("examples.fake_demo.scenario")
    app_module.APP = APP  # type: ignore[attr-defined]
    app_module.__file__ = __file__
    scenario.run = run  # type: ignore[attr-defined]
    sys.modules[app_module.__name__], sys.modules[scenario.__name__] = app_module, scenario
    yield "fake_demo"
    del sys.modules[app_module.__name__], sys.modules[scenario.__name__]


def test_lake_example_runs_the_scenario_and_counts_the_tables_changes_in_the_lake(
        fake_example: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example", fake_example]) == 0
    out = capsys.readouterr().out
    assert "wrote 3 notes, deleted 1" in out and '"notes": 3' in out
    assert "lake: 4 change(s) of table fake-notes" in out


def test_an_unknown_example_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example", "no_such_example"]) == 2
    assert "no example 'no_such_example'" in capsys.readouterr().err
