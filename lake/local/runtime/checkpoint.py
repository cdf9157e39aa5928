"""Per-mapping checkpoints: the last fully processed sequence number of each shard.

One JSON file per mapping, rewritten atomically (temp file + ``os.replace``) after
each completed batch, so a crash leaves the previous checkpoint or the new one,
never half of either. Delivery is at-least-once: a restart redelivers only what
came after the last checkpoint.

A checkpoint belongs to one instance of its stream: the file records the stream's
identity (its creation time), and :meth:`CheckpointStore.bind` drops the positions of
another instance. A fresh embedded AWS reuses stream ARNs and starts sequence numbers
again: applied to the new stream, an old position would skip its first records.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from lake.errors import ConfigError

log = logging.getLogger("lake.local.runtime")


class CheckpointStore:
    def __init__(self, path: Path, mapping_id: str, source_arn: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {"mapping": mapping_id, "eventSourceArn": source_arn, "shards": {}}
        if path.is_file():
            try:
                loaded = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise ConfigError(f"checkpoint file {path} is unreadable: {e}") from e
            if loaded.get("eventSourceArn") == source_arn:
                self.data = loaded
                self.data.setdefault("shards", {})
        self.existed = bool(self.data["shards"])

    def bind(self, identity: str) -> None:
        """Tie the checkpoints to the stream instance ``identity``: positions recorded for
        another instance (or for an unknown one) are dropped, and the mapping counts as
        having run before, so every shard of the new instance is read from its start."""
        with self._lock:
            if self.data.get("streamIdentity") == identity:
                return
            if self.data["shards"]:
                log.warning("checkpoints %s belong to another instance of %s (%s, now %s): not applied, "
                            "reading the new stream from its start", self.path, self.data["eventSourceArn"],
                            self.data.get("streamIdentity", "unknown"), identity)
                self.data["shards"] = {}
            self.data["streamIdentity"] = identity

    def shard(self, shard_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self.data["shards"].get(shard_id)
            return dict(entry) if entry else None

    def update(self, shard_id: str, **fields: Any) -> None:
        with self._lock:
            self.data["shards"].setdefault(shard_id, {}).update(fields)
            self._write()

    def _write(self) -> None:
        write_json(self.path, self.data, durable=True)


def write_json(path: Path, data: Any, durable: bool = False) -> None:
    """Replace ``path`` atomically (a reader never sees half a file); ``durable`` also waits
    for the disk, so a checkpoint survives a crash of the machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
