"""The replay checkpoint: per stream (table + shard token) the last sequence number the
target acknowledged, written atomically after every acknowledged batch.

Acknowledgements are always a prefix of the replay order, and the replay order keeps each
stream in sequence order, so "everything up to this sequence number, per stream" names
exactly what was delivered: a resumed replay skips those and sends the rest, with no gap
and no duplicate, even if the archive grew in between.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lake.errors import ConfigError

VERSION = 1


@dataclass
class Checkpoint:
    path: Path
    selection: dict[str, Any] = field(default_factory=dict)
    target: str = ""
    positions: dict[str, int] = field(default_factory=dict)
    events_sent: int = 0
    batches: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        """The checkpoint at ``path``, or None when there is none."""
        try:
            doc = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as e:
            raise ConfigError(f"checkpoint {path} is unreadable ({e}); delete it to start over") from None
        if doc.get("version") != VERSION:
            raise ConfigError(f"checkpoint {path} has version {doc.get('version')!r}, expected {VERSION}")
        return cls(
            path=path, selection=doc.get("selection", {}), target=doc.get("target", ""),
            positions={k: int(v) for k, v in doc.get("positions", {}).items()},
            events_sent=int(doc.get("events_sent", 0)), batches=int(doc.get("batches", 0)),
            failures=list(doc.get("failures", [])), complete=bool(doc.get("complete", False)),
        )

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "version": VERSION, "selection": self.selection, "target": self.target,
            # sequence numbers can exceed 64 bits: keep them as strings in JSON
            "positions": {k: str(v) for k, v in sorted(self.positions.items())},
            "events_sent": self.events_sent, "batches": self.batches,
            "failures": self.failures, "complete": self.complete,
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.path)  # atomic: an interruption leaves the old or the new, never half
