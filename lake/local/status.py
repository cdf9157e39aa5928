"""``lake status``: what a running ``lake up`` is doing, read from its state directory.

``lake up`` refreshes ``<state-dir>/status.json`` every few seconds (:class:`StatusReporter`)
with each mapping's state, lag (iterator age), last error and counters, and the depth
of the dead-letter queue, and logs a one-line summary whenever one of them changed.
``lake status`` prints that file as a table (``--json``: as it is), and says so when
the ``lake up`` that wrote it is no longer running.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lake.aws.clients import Clients, translate
from lake.aws.errors import AWS_ERRORS
from lake.clock import SYSTEM_CLOCK, Clock
from lake.errors import LakeError
from lake.local.runtime.checkpoint import write_json
from lake.settings import Settings

log = logging.getLogger("lake.local.status")

STATUS_FILE = "status.json"


def status_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / STATUS_FILE


def queue_depth(clients: Clients, url: str) -> int:
    """Messages in the queue, visible or in flight; a :class:`LakeError` if it cannot be asked."""
    try:
        attrs = clients.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    except AWS_ERRORS as e:
        raise translate(e, "SQS queue", url) from e
    return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))


def write_status(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically, so a reader never sees half a status."""
    write_json(path, data)


def _changes(data: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a summary worth logging again (lag alone does not)."""
    return (data.get("dlq_depth"), tuple(
        (m["name"], m["state"], m["records_succeeded"], m["records_to_destination"], m["records_discarded"],
         m["worker_restarts"], (m["last_error"] or {}).get("error"))
        for m in data.get("mappings", [])))


def summary_line(data: dict[str, Any]) -> str:
    """One line for the log: mappings by state, records done, the worst lag, dead letters, restarts."""
    mappings = data.get("mappings", [])
    states: dict[str, int] = {}
    for m in mappings:
        states[m["state"]] = states.get(m["state"], 0) + 1
    state_text = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) or "none"
    lag = max((m["lag_s"] for m in mappings), default=0.0)
    line = (f"status: {len(mappings)} mapping(s) ({state_text}) · "
            f"{sum(m['records_succeeded'] for m in mappings)} record(s) delivered · max lag {lag:.1f} s · "
            f"dead-lettered {sum(m['records_to_destination'] for m in mappings)} "
            f"(queue depth {data.get('dlq_depth', '?')}) · restarts {sum(m['worker_restarts'] for m in mappings)}")
    errors = [(m["last_error"]["at"], m["name"], m["last_error"]["error"]) for m in mappings if m["last_error"]]
    if errors:
        _, name, text = max(errors)
        line += f" · last error ({name}): {text.splitlines()[0][:200] if text else ''}"
    return line


class StatusReporter:
    """Writes the status of a running lake every ``interval_s`` seconds and logs what changed.

    ``snapshot`` returns the status (a dict with ``mappings``); the reporter adds when and by
    whom it was written.
    """

    def __init__(self, path: Path, snapshot: Callable[[], dict[str, Any]], interval_s: float = 2.0,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.path, self.snapshot, self.interval_s, self.clock = path, snapshot, interval_s, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-reporter", daemon=True)
        self._last: tuple[Any, ...] | None = None

    def start(self) -> None:
        self.report()
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing, and write a last status saying the lake stopped."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self.report(running=False)
        except (LakeError, OSError) as e:
            log.warning("could not write the last status to %s: %s", self.path, e)

    def report(self, running: bool = True) -> dict[str, Any]:
        """Write the status now (and log a summary if something changed); return it."""
        data = self.snapshot()
        data.update(updated_at=self.clock.now(), interval_s=self.interval_s, pid=os.getpid(), running=running)
        write_status(self.path, data)
        key = _changes(data)
        if key != self._last:
            self._last = key
            log.info("%s", summary_line(data))
        return data

    def _run(self) -> None:
        while not self.clock.wait(self._stop, self.interval_s):
            try:
                self.report()
            except (LakeError, OSError) as e:  # the status is for people: never stop the lake over it
                log.warning("could not refresh the status in %s: %s", self.path, e)


# -- lake status ------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_running(data: dict[str, Any], now: float) -> bool:
    """Whether the lake that wrote ``data`` still runs: it said so, recently, and its process is alive."""
    fresh = now - float(data.get("updated_at", 0)) <= max(3 * float(data.get("interval_s", 2.0)), 10.0)
    return bool(data.get("running")) and fresh and _alive(int(data.get("pid", 0)))


def _age(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else f"{seconds / 60:.0f}m" if seconds < 3600 else f"{seconds / 3600:.1f}h"


def render(data: dict[str, Any], now: float) -> str:
    """The status as a table, with a line on whether the lake still runs."""
    running = is_running(data, now)
    when = time.strftime("%H:%M:%S", time.localtime(float(data.get("updated_at", 0))))
    ago = _age(max(0.0, now - float(data.get("updated_at", 0))))
    head = (f"lake up at {data.get('endpoint', '?')} (pid {data.get('pid', '?')}): status of {when} ({ago} ago)"
            if running else f"lake up is not running (its last status is of {when}, {ago} ago)")
    lines = [head, f"dead-letter queue: {data.get('dlq_depth', '?')} message(s)  {data.get('dlq_url', '')}".rstrip()]
    cols = ("MAPPING", "STATE", "LAG", "DELIVERED", "DEAD-LETTERED", "RESTARTS", "LAST ERROR")
    rows = []
    for m in data.get("mappings", []):
        err = m.get("last_error")
        err_text = (f"{_age(max(0.0, now - err['at']))} ago: {err['error'].splitlines()[0][:80]}"
                    if err and err.get("error") else "-")
        state = m["state"] + (f" ({m['state_reason']})" if m.get("state_reason") else "")
        rows.append((m["name"], state, _age(m["lag_s"]), str(m["records_succeeded"]),
                     str(m["records_to_destination"] + m["records_discarded"]), str(m["worker_restarts"]), err_text))
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    for row in (cols, *rows):
        lines.append("  ".join(v.ljust(w) if i in (0, 1, 6) else v.rjust(w)
                               for i, (v, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    if not rows:
        lines.append("(no mappings)")
    saved = data.get("saved")
    if saved:
        at = saved.get("snapshot_at")
        lines.append(f"saved in {saved.get('dir')}: " + (
            f"last snapshot {_age(max(0.0, now - float(at)))} ago ({saved.get('snapshot_bytes', 0) / 2**20:.1f} MiB "
            f"in {saved.get('snapshot_seconds', 0):.2f} s), {saved.get('journal_entries', 0)} journaled write(s) since"
            if at else f"no snapshot yet, {saved.get('journal_entries', 0)} journaled write(s)"))
        if saved.get("not_saved"):
            lines.append(f"  not saved (moto cannot pickle them): {', '.join(sorted(saved['not_saved']))}")
    else:
        lines.append("ephemeral: nothing is kept when lake up stops")
    faults = data.get("faults")
    if faults:
        injected = {k: v for k, v in (faults.get("injected") or {}).items() if v}
        lines.append(f"faults ({faults.get('spec', '')}): {faults.get('total_injected', sum(injected.values()))} "
                     "injected" + (" — " + ", ".join(f"{k} {v}" for k, v in sorted(injected.items()))
                                   if injected else ""))
    return "\n".join(lines)


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", parents=parents, help="what a running `lake up` is doing",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the status file as it is")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """0 if the lake runs, 1 if it stopped or never ran with this state directory."""
    path = status_path(settings.state_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        print(f"no status in {path}: no `lake up` has run with --state-dir {settings.state_dir}")
        return 1
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}")
        return 1
    now = SYSTEM_CLOCK.now()
    print(json.dumps(data, indent=1, sort_keys=True) if args.json else render(data, now))
    return 0 if is_running(data, now) else 1
