"""Per-mapping checkpoints: the last fully processed sequence number of each shard.

One JSON file per mapping, rewritten atomically (temp file + ``os.replace``) after
each completed batch, so a crash leaves the previous checkpoint or the new one,
never half of either. Delivery is at-least-once: a restart redelivers only what
came after the last checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from lake.errors import ConfigError


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

    def shard(self, shard_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self.data["shards"].get(shard_id)
            return dict(entry) if entry else None

    def update(self, shard_id: str, **fields: Any) -> None:
        with self._lock:
            self.data["shards"].setdefault(shard_id, {}).update(fields)
            self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
