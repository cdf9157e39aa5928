"""Shared fixtures: one embedded AWS (moto server on a free loopback port) per session,
reset before each test that asks for it, and settings pointing at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lake.aws.clients import Clients
from lake.local.embedded import EmbeddedAWS
from lake.settings import Settings

EVENTS = Path(__file__).parent / "events"


def load_event(name: str) -> Any:
    """A real event shape from ``tests/events`` (as Powertools' ``load_event``)."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="session")
def embedded_aws() -> Iterator[EmbeddedAWS]:
    aws = EmbeddedAWS(port=0)
    aws.start()
    yield aws
    aws.stop()


@pytest.fixture
def settings(embedded_aws: EmbeddedAWS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on a freshly reset embedded AWS, with the process env pointing there too
    (handlers resolve their settings from the environment, as on Lambda)."""
    embedded_aws.reset()
    s = Settings.resolve(
        {"endpoint_url": embedded_aws.endpoint_url, "state_dir": str(tmp_path / "state")},
        environ={},
        config_path=None,
    )
    for k, v in s.env().items():
        monkeypatch.setenv(k, v)
    return s


@pytest.fixture
def clients(settings: Settings) -> Clients:
    return Clients(settings)
