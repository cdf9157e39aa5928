"""The bad-input corpus (tests/events/bad): no crash; every record archived or quarantined with a reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lake.aws.clients import Clients
from lake.aws.provision import ensure_bucket
from lake.settings import Settings
from lambdas import stream_archiver
from tests.conftest import EVENTS
from tests.integration.test_archiver import quarantined, raw_objects

BAD = EVENTS / "bad"

# file → (eventIDs archived, reason fragments of the quarantined items, in batch order)
EXPECTED: dict[str, tuple[list[str], list[str]]] = {
    "truncated.json": ([], ["event is not valid JSON"]),
    "emptyBatch.json": ([], []),
    "noRecords.json": ([], ["event has no Records array"]),
    "eventNotObject.json": ([], ["event is a list, not a JSON object"]),
    # an unknown tag in Keys leaves no key to render: quarantined; inside an image it is the
    # record as delivered: archived verbatim (the curated consumer quarantines it)
    "unknownTypeTag.json": ([f"{101:032x}", f"{103:032x}"], ["dynamodb.Keys.pk: unknown DynamoDB type tag 'X'"]),
    "missingSequenceNumber.json": ([f"{103:032x}"], ["SequenceNumber None is missing",
                                                    "SequenceNumber '12ab' is missing or not a decimal"]),
    "creationTimeAsString.json": ([f"{110:032x}", f"{111:032x}"],
                                  ["'yesterday' is not an epoch number", "not a usable time",
                                   "is a boolean"]),
    # no creation time: placed by arrival time (envelope tsrc=arrival); a negative one is refused
    "badCreationTime.json": ([f"{115:032x}"], ["outside 1970..9999"]),
    "recordNotObject.json": ([f"{121:032x}"], ["record is a str", "record is a int", "record is a NoneType",
                                               "record is a list"]),
    # without a usable stream ARN the change is still archived: table=_unknown, or the
    # table with a "no-stream" shard token
    "missingEventSourceARN.json": ([f"{130:032x}", f"{131:032x}", f"{132:032x}", f"{133:032x}"], []),
    "badFields.json": ([], ["eventName 'UPSERT'", "no eventID", "no dynamodb object", "no dynamodb.Keys"]),
    "hugeInteger.json": ([f"{161:032x}"], ["cannot be serialised verbatim"]),
}


@pytest.fixture
def lake(settings: Settings, clients: Clients) -> Iterator[tuple[Settings, Clients]]:
    ensure_bucket(clients, settings.bucket, settings.region)
    stream_archiver.configure(settings, clients)
    yield settings, clients
    stream_archiver.configure()


def load_any(path: Path) -> Any:
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # what a runtime holding undecodable bytes would pass on


def test_corpus_is_covered() -> None:
    assert sorted(p.name for p in BAD.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_archived_or_quarantined(lake: tuple[Settings, Clients], name: str) -> None:
    settings, clients = lake
    archived_ids, reasons = EXPECTED[name]
    event = load_any(BAD / name)
    response = stream_archiver.lambda_handler(event, None)
    assert response == {"batchItemFailures": []}  # malformed is terminal: nothing to retry
    lines = [ln for o in raw_objects(settings, clients).values() for ln in o["lines"]]
    assert sorted(env["id"] for env, _ in lines) == sorted(archived_ids)
    got = sorted(quarantined(settings, clients), key=lambda q: q["coordinates"]["index"])
    assert len(got) == len(reasons), [q["reason"] for q in got]
    for item, fragment in zip(got, reasons, strict=True):
        assert fragment in item["reason"], (fragment, item["reason"])
        assert item["stage"] == "archive"
    # nothing lost: each input record is archived or quarantined with its content
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list):
        assert len(lines) + len(got) == len(records)
        for env, rec in lines:  # archived ones: verbatim, under their own envelope
            (source,) = [r for r in records if isinstance(r, dict) and r.get("eventID") == env["id"]]
            assert rec == source
            assert env["seq"] == rec["dynamodb"]["SequenceNumber"]
        kept = [q["record"] for q in got]
        for index, rec in enumerate(records):
            if not (isinstance(rec, dict) and rec.get("eventID") in archived_ids):
                q = next(q for q in got if q["coordinates"]["index"] == index)
                assert q["record"] == rec or q["record"] == repr(rec), (index, kept)
    elif event not in ({"Records": []},):
        assert got[0]["record"] == event
