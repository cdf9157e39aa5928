"""Quarantine: where a record that can never be processed goes, with its reason.

An S3 object per record under ``quarantine/stage=<stage>/`` named by the sha256 of
its content, so a redelivered poison record overwrites itself, on any day. S3, not
SQS: a quarantined record may be a 400 KB item, over SQS's 256 KB message limit.
The local runtime's batch-level on-failure destination (SQS) is separate: it
carries batch coordinates, as AWS's does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from lake.aws.clients import Clients
from lake.settings import Settings


@dataclass(frozen=True)
class Quarantined:
    stage: str
    reason: str
    coordinates: Mapping[str, Any]
    record: Any  # the parsed record, or its raw text when it did not parse

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"stage": self.stage, "reason": self.reason, "coordinates": dict(self.coordinates),
             "record": self.record},
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
            default=_fallback,
        )


def _fallback(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "backslashreplace")
    return repr(value)


def _ascii(text: str) -> str:
    # S3 user metadata travels in HTTP headers: ASCII only.
    return text.encode("ascii", "replace").decode()


def quarantine_key(settings: Settings, item: Quarantined, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()
    return f"{settings.zone_prefix('quarantine')}stage={item.stage}/{digest}.json"


def quarantine(settings: Settings, clients: Clients, items: list[Quarantined]) -> list[str]:
    """Write each quarantined record to S3; return the keys. S3 errors are raised translated."""
    store = clients.store(settings.bucket)
    keys = []
    for item in items:
        body = item.to_json()
        key = quarantine_key(settings, item, body)
        store.put(key, body, content_type="application/json",
                  metadata={"stage": item.stage, "reason": _ascii(item.reason[:1024])})
        keys.append(key)
    return keys
