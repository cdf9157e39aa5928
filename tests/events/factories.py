"""Small factories for DynamoDB stream records in Lambda's shape (variants of the sample events)."""

from __future__ import annotations

import base64
import copy
from typing import Any

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-05-01T00:00:00.000"
T0 = 1714521600  # 2024-05-01T00:00:00Z
SEQ0 = 4421584500000000017450439091
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def stream_record(n: int = 0, *, event: str = "MODIFY", t: float | int | str = T0,
                  seq: str | None = None, arn: str = ARN, keys: dict[str, Any] | None = None,
                  new: dict[str, Any] | None = None, old: dict[str, Any] | None = None,
                  view: str = "NEW_AND_OLD_IMAGES", ttl: bool = False) -> dict[str, Any]:
    """One record as Lambda delivers it; images default to a small order item."""
    keys = keys or {"pk": {"S": f"ORDER#{n}"}, "sk": {"S": "v0"}}
    item = {**keys, "status": {"S": "PAID"}, "amount": {"N": f"{n}.5"}}
    if event == "INSERT":
        old = None
        new = new if new is not None else item
    elif event == "REMOVE":
        new = None
        old = old if old is not None else item
    else:
        new = new if new is not None else item
        old = old if old is not None else {**item, "status": {"S": "NEW"}}
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": t, "Keys": keys,
                           "SequenceNumber": seq or str(SEQ0 + n), "SizeBytes": 64, "StreamViewType": view}
    if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new is not None:
        ddb["NewImage"] = new
    if view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None:
        ddb["OldImage"] = old
    rec: dict[str, Any] = {"eventID": f"{n:032x}", "eventName": event, "eventVersion": "1.1",
                           "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": ddb,
                           "eventSourceARN": arn}
    if ttl:
        rec["userIdentity"] = dict(TTL_IDENTITY)
    return rec


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [copy.deepcopy(r) for r in records]}


def all_types_item() -> dict[str, Any]:
    """Every DynamoDB type, with a 38-digit number, binary and all three set types."""
    return {
        "pk": {"S": "ALL#1"}, "sk": {"N": "12345678901234567890123456789012345678"},
        "s": {"S": "héllo \"quoted\" \\ back\nslash \u2603 \U0001F600"},
        "n38": {"N": "12345678901234567890123456789012345678"},
        "nneg": {"N": "-0.000000000000000000000000000000000000012345678901234567890123456789012345678"},
        "nbig": {"N": "9.9999999999999999999999999999999999999E+125"},
        "b": {"B": base64.b64encode(bytes(range(256))).decode()},
        "ss": {"SS": ["a", "b", "ü"]},
        "ns": {"NS": ["1", "-2.5", "12345678901234567890123456789012345678"]},
        "bs": {"BS": [base64.b64encode(b"\x00\x01").decode(), base64.b64encode(b"\xff").decode()]},
        "m": {"M": {"inner": {"S": "x"}, "empty": {"M": {}}}},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"NULL": True}, {"BOOL": False}, {"L": []}]},
        "null": {"NULL": True},
        "t": {"BOOL": True}, "f": {"BOOL": False},
    }


def nested_item(depth: int = 31) -> dict[str, Any]:
    """An item whose attribute nests ``depth`` levels of M/L (DynamoDB allows 32)."""
    value: dict[str, Any] = {"N": "12345678901234567890123456789012345678"}
    for level in range(depth):
        value = {"M": {f"level{level}": value}} if level % 2 else {"L": [value]}
    return {"pk": {"S": "DEEP#1"}, "sk": {"S": "v0"}, "deep": value}


def large_item(size: int = 400 * 1024 - 512) -> dict[str, Any]:
    """An item near DynamoDB's 400 KB limit (one big string, one big binary, many small attrs)."""
    blob = base64.b64encode(bytes(i % 251 for i in range(size * 3 // 8))).decode()
    item: dict[str, Any] = {"pk": {"S": "BIG#1"}, "sk": {"S": "v0"}, "blob": {"B": blob}}
    item["text"] = {"S": "x" * (size * 45 // 100)}
    for i in range(200):
        item[f"a{i:03d}"] = {"N": str(i * 1_000_003)}
    return item
