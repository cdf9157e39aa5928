"""What a job did (the final report every job prints) and how it shows progress. Pure."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# (what, done, total): a job calls it as it goes; the CLI draws bars, a Glue job logs
Progress = Callable[[str, int, int], None]


def no_progress(what: str, done: int, total: int) -> None:
    """The default: report nothing."""


@dataclass
class TableReport:
    """One table's part of a job."""

    table: str
    files_in: int = 0
    files_out: int = 0
    rows_in: int = 0
    rows_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    snapshots_added: int = 0
    snapshots_expired: int = 0
    files_deleted: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.files_out or self.snapshots_added or self.snapshots_expired or self.files_deleted)


@dataclass
class JobReport:
    """A job's final report: per table what went in and out, and how long it took."""

    job: str
    dry_run: bool = False
    tables: list[TableReport] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def table(self, name: str) -> TableReport:
        report = TableReport(name)
        self.tables.append(report)
        return report

    def done(self) -> JobReport:
        self.seconds = time.perf_counter() - self.started
        return self

    @property
    def changed(self) -> bool:
        return any(t.changed for t in self.tables)

    def total(self, name: str) -> int:
        return sum(int(getattr(t, name)) for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("started")
        return out

    def lines(self) -> list[str]:
        """The report as text, one line per table and a total."""
        out = [f"{self.job}{' (dry run: what it would do)' if self.dry_run else ''}: per table, files in → out, "
               "rows in → out, bytes in → out, snapshots +added/-expired, files deleted"]
        for t in self.tables:
            out.append(f"  {t.table}: files {t.files_in} → {t.files_out}, rows {t.rows_in} → {t.rows_out}, "
                       f"bytes {_size(t.bytes_in)} → {_size(t.bytes_out)}, snapshots +{t.snapshots_added}"
                       f"/-{t.snapshots_expired}, files deleted {t.files_deleted}")
            out.extend(f"    {note}" for note in t.notes)
        out.append(f"  {'dry run: nothing changed; ' if self.dry_run else ''}"
                   f"{'no change needed; ' if not self.changed and not self.dry_run else ''}"
                   f"{self.seconds:.2f} s")
        return out


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
