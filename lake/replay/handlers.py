"""Sample replay consumers usable outside tests: rebuild an item from its history.

``rebuild_item`` replays one key's archived changes into :class:`ItemRebuilder`
(INSERT/MODIFY → NewImage, REMOVE → gone) and returns the rebuilt item in DynamoDB
JSON, the same shape ``GetItem`` returns, so it compares equal to the live table's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lake.aws.storage import ObjectReader
from lake.errors import LakeError, TerminalError
from lake.records import key_string, table_name
from lake.replay.engine import ReplayOptions, ReplayReport, replay
from lake.replay.selection import Selection, normalise_key, parse_time
from lake.replay.targets import Target
from lake.settings import Settings


class ItemRebuilder:
    """A Lambda-style handler that folds replayed changes into current item states.

    ``items`` maps ``(table, key string)`` → the item's attributes (DynamoDB JSON);
    a removed item is absent. Needs NewImage, so the stream must have been
    ``NEW_IMAGE`` or ``NEW_AND_OLD_IMAGES``.
    """

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.applied = 0

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        for record in event["Records"]:
            ddb = record["dynamodb"]
            ident = (table_name(record), key_string(ddb["Keys"]))
            if record["eventName"] == "REMOVE":
                self.items.pop(ident, None)
            elif "NewImage" in ddb:
                self.items[ident] = ddb["NewImage"]
            else:
                raise TerminalError(f"{ident}: {record['eventName']} without NewImage "
                                    f"(stream view {ddb.get('StreamViewType')}): cannot rebuild")
            self.applied += 1
        return {"batchItemFailures": []}

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        return self.items.get((table, normalise_key(key)))


def rebuild_item(
    settings: Settings,
    table: str,
    key: str,
    clients: Any = None,
    until: str | int | float | datetime | None = None,
    store: ObjectReader | None = None,
) -> tuple[dict[str, Any] | None, ReplayReport]:
    """Replay one item's archived history (up to ``until``, exclusive) and return its rebuilt
    state (DynamoDB JSON, or None if its last change removed it) with the replay report."""
    if isinstance(until, datetime):
        until = until.isoformat()
    selection = Selection(tables=(table,), keys=frozenset({key}),
                          until_us=None if until is None else parse_time(until))
    rebuilder = ItemRebuilder()
    report = replay(settings, selection, Target.python(rebuilder, "lake.replay.handlers:ItemRebuilder"),
                    ReplayOptions(batch_size=1000, checkpoint=False, max_retries=0),
                    clients=clients, store=store)
    if report.failures:
        raise LakeError(f"rebuilding {table} {key}: {report.failures[0].reason}")
    return rebuilder.get(table, key), report
