"""DynamoDB table exports (``ExportTableToPointInTime``, DynamoDB JSON) as stream records. Pure.

AWS writes ``<S3Prefix>/AWSDynamoDB/<export id>/manifest-summary.json`` (``exportTime``,
``exportType``, ``manifestFilesS3Key``…), ``manifest-files.json`` (one JSON line per data
file: ``dataFileS3Key``, ``itemCount``…) and ``data/*.json.gz``. A full export's lines are
``{"Item": {...}}``; an incremental export's (``NEW_AND_OLD_IMAGES``) are
``{"Metadata": {"WriteTimestampMicros": {"N": ...}}, "Keys": ..., "NewImage": ..., "OldImage": ...}``
(no ``NewImage``: the item was deleted). The embedded DynamoDB (moto) writes only one
``data/<uuid>.gz`` of full-export lines, without manifests: both are read.

Each exported item becomes the stream record the consumer would have seen, so the curated
rows are built by the streaming path's own code: its event id ``export:<export id>:<key>``
(a second load adds nothing: the tables keep one row per event id), its shard
``export:full`` or ``export:incremental``, its sequence number 0 (at an equal time a
streamed change, which has a real one, is the later), and its time the export's point in
time (full) or the item's last write (incremental). An incremental export keeps only an
item's last change in its window: those rows are net changes, not every change.
"""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from lake.errors import MalformedRecordError
from lake.records import key_string

ExportType = Literal["FULL_EXPORT", "INCREMENTAL_EXPORT"]
FULL_SHARD = "export:full"
INCREMENTAL_SHARD = "export:incremental"
EXPORT_SEQUENCE = "0"


@dataclass(frozen=True)
class ExportLayout:
    """Where an export's data files are, and what its manifest says (when it has one)."""

    export_id: str
    data_keys: tuple[str, ...]
    export_type: ExportType = "FULL_EXPORT"
    export_time_us: int | None = None  # the point in time (full) or the window's end
    items: int | None = None  # the manifest's item count


def parse_time(text: str) -> int:
    """An export manifest's ISO time → epoch µs."""
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedRecordError(f"export manifest: {text!r} is not a time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return round(t.timestamp() * 1_000_000)


def layout(root: str, keys: Sequence[str], read: Any) -> ExportLayout:
    """The export under ``root`` (``…/AWSDynamoDB/<export id>/`` or a prefix holding one)
    from the keys listed there; ``read(key) -> bytes`` reads a manifest."""
    summaries = [k for k in keys if k.endswith("/manifest-summary.json")]
    if len(summaries) > 1:
        raise MalformedRecordError(f"{root}: {len(summaries)} exports under this prefix; name one "
                                   f"(…/AWSDynamoDB/<export id>/)")
    if summaries:
        summary = orjson.loads(read(summaries[0]))
        folder = summaries[0].rsplit("/", 1)[0]
        files_key = summary.get("manifestFilesS3Key") or f"{folder}/manifest-files.json"
        data = []
        for line in read(files_key).splitlines():
            if line.strip():
                data.append(str(orjson.loads(line)["dataFileS3Key"]))
        kind = str(summary.get("exportType") or "FULL_EXPORT")
        if kind not in ("FULL_EXPORT", "INCREMENTAL_EXPORT"):
            raise MalformedRecordError(f"{summaries[0]}: unknown exportType {kind!r}")
        when = summary.get("exportTime") or summary.get("exportToTime") or summary.get("endTime")
        return ExportLayout(str(summary.get("exportArn") or folder).rsplit("/", 1)[-1], tuple(data),
                            kind,  # type: ignore[arg-type]
                            parse_time(str(when)) if when else None,
                            int(summary["itemCount"]) if "itemCount" in summary else None)
    data = sorted(k for k in keys if "/data/" in k and (k.endswith(".gz") or k.endswith(".json")))
    if not data:
        raise MalformedRecordError(f"{root}: no DynamoDB export here (neither manifest-summary.json nor data/*.gz)")
    folders = {k.split("/data/", 1)[0] for k in data}
    if len(folders) > 1:
        raise MalformedRecordError(f"{root}: {len(folders)} exports under this prefix; name one")
    return ExportLayout(folders.pop().rsplit("/", 1)[-1], tuple(data))


def lines(body: bytes) -> Iterator[Mapping[str, Any]]:
    """The JSON lines of a data file (gzip or not)."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    for n, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise MalformedRecordError(f"export line {n}: not JSON: {e}") from None
        if not isinstance(doc, dict):
            raise MalformedRecordError(f"export line {n}: not an object")
        yield doc


def stream_record(doc: Mapping[str, Any], key_names: Sequence[str], export: ExportLayout,
                  table_arn: str) -> tuple[dict[str, Any], str]:
    """One export line as the DynamoDB stream record of the change it stands for, and the
    shard its row names (:data:`FULL_SHARD` or :data:`INCREMENTAL_SHARD`)."""
    if "Item" in doc:
        item = doc["Item"]
        if not isinstance(item, dict):
            raise MalformedRecordError("export line: Item is not an object")
        missing = [k for k in key_names if k not in item]
        if missing:
            raise MalformedRecordError(f"export item lacks key attribute(s) {missing}")
        keys: Any = {k: item[k] for k in key_names}
        new: Any = item
        old: Any = None
        name = "INSERT"
        if export.export_time_us is None:
            raise MalformedRecordError("a full export without its export time")
        when, shard = export.export_time_us, FULL_SHARD
    else:
        keys, new, old = doc.get("Keys"), doc.get("NewImage"), doc.get("OldImage")
        if not isinstance(keys, dict) or not keys:
            raise MalformedRecordError("export line has neither Item nor Keys")
        name = "REMOVE" if new is None else "INSERT" if old is None else "MODIFY"
        stamp = ((doc.get("Metadata") or {}).get("WriteTimestampMicros") or {})
        raw = stamp.get("N") if isinstance(stamp, dict) else stamp
        if raw is None:
            raise MalformedRecordError("incremental export line without Metadata.WriteTimestampMicros")
        when, shard = int(raw), INCREMENTAL_SHARD
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": when, "ApproximateCreationDateTimePrecision": "MICROSECOND",
                           "Keys": keys, "SequenceNumber": EXPORT_SEQUENCE, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        ddb["NewImage"] = new
    if old is not None:
        ddb["OldImage"] = old
    event_id = f"export:{export.export_id}:{key_string(keys)}"
    if shard == INCREMENTAL_SHARD:
        event_id += f":{when}"
    return {"eventID": event_id, "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "dynamodb": ddb, "eventSourceARN": table_arn}, shard
