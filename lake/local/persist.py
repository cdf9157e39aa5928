"""The embedded AWS's memory kept on disk: snapshots of moto's backends plus a journal of DynamoDB writes.

``lake up --state-dir DIR`` keeps tables, items, streams, objects, queues, the catalog and the
runtime's checkpoints across a stop and a start, and comes back consistent after ``kill -9``:

* **Snapshots** (``DIR/aws/snapshot.pkl``): every few seconds, when something was written, the
  request gate is closed for an instant (no request in flight, none starting), the runtime's
  checkpoint files are read, and the process forks; the child pickles moto's backends from its
  copy-on-write image and exits, while the parent serves again (Redis's ``BGSAVE``). Checkpoints
  are read *before* the gate closes, so they never run ahead of the state they come with: after
  a restore the runtime redelivers what came after them, and the stages are idempotent.
* **A journal** (``DIR/aws/journal-<gen>.log``) of every DynamoDB write the embedded AWS
  acknowledged since the snapshot, appended before the response leaves (one ``write`` per
  entry, so it survives the process being killed; not the machine losing power). On restore
  the writes are applied again in order, and make their stream records again. The source
  tables therefore lose nothing a client was told was written; everything the lake derived
  from them (raw and curated zones, Kinesis, queues) is at the snapshot, and the runtime
  catches up from the snapshot's checkpoints.

What is not journaled (a client's own S3 uploads, SQS or SNS messages) is at its last
snapshot after a ``kill -9``: at most one snapshot interval old. A clean stop writes a
final snapshot, so it loses nothing. The files are pickles of moto's objects, tied to
the moto version (checked on restore) and trusted like any other file of the state
directory: never restore a state directory you did not write.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lake.errors import ConfigError
from lake.replay.source import gc_paused

log = logging.getLogger(__name__)

FORMAT = 1
SNAPSHOT = "snapshot.pkl"

# DynamoDB operations that change nothing: not journaled. Anything else that succeeds is.
_DDB_READS = ("Get", "BatchGet", "TransactGet", "Describe", "List", "Query", "Scan")
_DDB_TARGET = "DynamoDB_20120810."
# Requests that may wait long in moto (SQS long polling): they must not hold the gate shut.
_LONG_POLLS = ("AmazonSQS.ReceiveMessage",)


def _moto_version() -> str:
    import moto

    return str(moto.__version__)


class Gate:
    """Many requests at once, or one snapshot alone (a readers-writer lock preferring the writer,
    so a steady stream of requests cannot starve the snapshots)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inside = 0
        self._closed = False
        self._closing = 0

    @contextmanager
    def request(self) -> Iterator[None]:
        with self._cond:
            while self._closed or self._closing:
                self._cond.wait()
            self._inside += 1
        try:
            yield
        finally:
            with self._cond:
                self._inside -= 1
                if not self._inside:
                    self._cond.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._cond:
            self._closing += 1
            while self._closed or self._inside:
                self._cond.wait()
            self._closing -= 1
            self._closed = True
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


# -- what a snapshot holds ---------------------------------------------------------------------------
def _rebuild_dict(cls: Any, items: dict[str, Any], state: dict[str, Any] | None) -> Any:
    obj = cls.__new__(cls)
    dict.update(obj, items)  # not the subclass's __setitem__
    if state:
        obj.__dict__.update(state)
    return obj


def _reducers() -> dict[type, Any]:
    """What moto keeps that pickle refuses, or restores slowly.

    Locks pickle as new, released locks: a snapshot is taken with no request in flight, and a
    lock held by a thread of the parent means nothing to the process that restores it. Compiled
    patterns (IAM's) pickle as their source. A DynamoDB item's attributes (moto's
    ``LimitedSizeDict``) are restored without re-checking the item size limit on every
    attribute, which costs a sum over all the attributes each time (quadratic per item).
    """
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    return {
        type(threading.Lock()): lambda _: (threading.Lock, ()),
        type(threading.RLock()): lambda _: (threading.RLock, ()),
        threading.Condition: lambda _: (threading.Condition, ()),
        re.Pattern: lambda p: (re.compile, (p.pattern, p.flags)),
        LimitedSizeDict: lambda d: (_rebuild_dict, (LimitedSizeDict, dict(d), getattr(d, "__dict__", None))),
    }


def _dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=5)
    p.dispatch_table = _reducers()  # type: ignore[misc]  # copyreg-style per-pickler table
    p.dump(obj)
    return buf.getvalue()


def _backend_dicts() -> list[Any]:
    from moto.core.base_backend import BackendDict

    return list(BackendDict._instances)  # type: ignore[misc]  # moto's registry of services in use


def _key_of(bd: Any) -> tuple[str, str]:
    return bd.backend.__module__, bd.backend.__qualname__


def capture_backends() -> tuple[dict[tuple[str, str], bytes], dict[str, str]]:
    """Every backend moto has in use, pickled one service at a time; a service that cannot be
    pickled is left out (named in the second result) rather than failing the snapshot."""
    saved: dict[tuple[str, str], bytes] = {}
    skipped: dict[str, str] = {}
    for bd in _backend_dicts():
        accounts = {account: dict(per_region) for account, per_region in bd.items()}
        try:
            with gc_paused():
                saved[_key_of(bd)] = _dumps(accounts)
        except Exception as e:  # an unpicklable object inside moto: persist the rest
            skipped[bd.service_name] = f"{type(e).__name__}: {e}"
    return saved, skipped


def install_backends(saved: dict[tuple[str, str], bytes]) -> list[str]:
    """Put pickled backends in place of moto's current ones; return the services restored."""
    import importlib

    from moto.core.base_backend import BackendDict

    BackendDict.reset()
    restored = []
    for (module_name, qualname), blob in saved.items():
        module = importlib.import_module(module_name)
        bd = next((v for v in vars(module).values()
                   if isinstance(v, BackendDict) and v.backend.__qualname__ == qualname), None)
        if bd is None:
            raise ConfigError(f"the saved state names a moto backend this moto lacks: {module_name}.{qualname}")
        with gc_paused():  # millions of small objects, no garbage: collections would only walk them
            accounts = pickle.loads(blob)
        for account, per_region in accounts.items():
            holder = bd[account]  # creates the account's holder and registers the service as in use
            dict.clear(holder)
            dict.update(holder, per_region)
        restored.append(bd.service_name)
    return restored


def _read_dir(path: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if path.is_dir():
        for f in sorted(path.glob("*.json")):
            try:
                out[f.name] = f.read_bytes()
            except FileNotFoundError:
                continue  # replaced between listing and reading: the newer one is read next time
    return out


# -- the journal ---------------------------------------------------------------------------------------
def _journal_path(root: Path, gen: int) -> Path:
    return root / f"journal-{gen:08d}.log"


def _journal_gens(root: Path) -> list[int]:
    gens = []
    for f in root.glob("journal-*.log"):
        try:
            gens.append(int(f.stem.split("-", 1)[1]))
        except ValueError:
            continue
    return sorted(gens)


def read_journal(path: Path) -> Iterator[tuple[dict[str, str], bytes]]:
    """The entries of one journal file; a last entry cut short by a kill ends it (its request
    was never answered)."""
    with open(path, "rb") as f:
        while True:
            try:
                yield pickle.load(f)
            except EOFError:
                return
            except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError):
                log.warning("journal %s ends with an incomplete entry: ignored (never acknowledged)", path)
                return


def _is_dirty(environ: dict[str, Any], target: str) -> bool:
    """Whether a request may change state (then a snapshot is due)."""
    if target:
        op = target.rsplit(".", 1)[-1]
        return not op.startswith(_DDB_READS)
    return str(environ.get("REQUEST_METHOD", "GET")).upper() not in ("GET", "HEAD", "OPTIONS")


@dataclass
class SnapshotInfo:
    taken_at: float = 0.0
    seconds: float = 0.0
    size: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    journal_entries: int = 0


class StateStore:
    """Snapshots and journal of one embedded AWS, in ``root`` (``<state-dir>/aws``), together with
    the files of ``co_saved`` directories (the runtime's checkpoints) taken at the same instant."""

    def __init__(self, root: Path, co_saved: Sequence[Path] = (), interval_s: float = 2.0) -> None:
        self.root = Path(root)
        self.co_saved = [Path(p) for p in co_saved]
        self.interval_s = interval_s
        self.gate = Gate()
        self._write_lock = threading.Lock()  # DynamoDB writes: applied and journaled in one order
        self._journal: Any = None
        self.gen = 0
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last = SnapshotInfo()
        self.entries = 0  # journal entries since the last snapshot

    # -- restore ----------------------------------------------------------------------------------
    def restore(self, app: Any, endpoint_host: str) -> dict[str, Any]:
        """Load the snapshot (if any) into moto and apply the journal after it; put the
        co-saved files back as they were at the snapshot. Returns what was restored."""
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        self.root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        snap = self.root / SNAPSHOT
        start_gen = 0
        services: list[str] = []
        if snap.is_file():
            try:
                with open(snap, "rb") as f, gc_paused():
                    state = pickle.load(f)
            except Exception as e:
                raise ConfigError(f"the saved lake {snap} cannot be read ({type(e).__name__}: {e}); "
                                  "move it away, or start with --ephemeral") from e
            if state.get("format") != FORMAT or state.get("moto") != _moto_version():
                raise ConfigError(f"the saved lake {snap} was written by moto {state.get('moto')} "
                                  f"(format {state.get('format')}); this lake runs moto {_moto_version()}: "
                                  "start with a new --state-dir, or with --ephemeral")
            services = install_backends(state["services"])
            for directory, files in zip(self.co_saved, state["co_saved"], strict=False):
                self._put_back(directory, files)
            start_gen = int(state["journal_from"])
        else:
            from moto.core.base_backend import BackendDict

            BackendDict.reset()  # a new lake starts empty, whatever this process held before
            for directory in self.co_saved:
                self._put_back(directory, {})  # checkpoints without their state would skip records
        replayed = 0
        gens = [g for g in _journal_gens(self.root) if g >= start_gen]
        for gen in gens:
            for headers, body in read_journal(_journal_path(self.root, gen)):
                path, method = headers.pop(":path", "/"), headers.pop(":method", "POST")
                query = headers.pop(":query", "")
                headers["Host"] = endpoint_host
                env = EnvironBuilder(path=path, method=method, query_string=query, headers=list(headers.items()),
                                     data=body).get_environ()
                _, status, _ = run_wsgi_app(app, env, buffered=True)
                if not status.startswith("2"):
                    log.warning("journaled write %s was refused on restore: %s",
                                headers.get("X-Amz-Target"), status)
                replayed += 1
        self.gen = (max(gens) + 1) if gens else start_gen
        for old in _journal_gens(self.root):
            if old < start_gen:
                _journal_path(self.root, old).unlink(missing_ok=True)
        self._open_journal()
        if replayed:
            self._dirty.set()
        seconds = time.perf_counter() - t0
        if services or replayed:
            log.info("restored the lake from %s in %.2f s: %d service(s), %d journaled write(s)",
                     self.root, seconds, len(services), replayed)
        return {"services": services, "journaled_writes": replayed, "seconds": round(seconds, 3),
                "from_snapshot": snap.is_file()}

    @staticmethod
    def _put_back(directory: Path, files: dict[str, bytes]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for f in directory.glob("*.json"):
            if f.name not in files:
                f.unlink()
        for name, data in files.items():
            tmp = directory / f".{name}.restore"
            tmp.write_bytes(data)
            os.replace(tmp, directory / name)

    def touch(self) -> None:
        """Something changed outside a request (the TTL sweeper, inside :attr:`gate`): a snapshot is due."""
        self._dirty.set()

    # -- the middleware ---------------------------------------------------------------------------
    def wrap(self, app: Any) -> Any:
        """WSGI middleware: every request inside the gate; DynamoDB writes journaled."""

        def middleware(environ: dict[str, Any], start_response: Any) -> Any:
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            if target in _LONG_POLLS:
                return app(environ, start_response)
            dirty = _is_dirty(environ, target)
            with self.gate.request():
                if not (dirty and target.startswith(_DDB_TARGET)):
                    out = app(environ, start_response)
                    if dirty:
                        self._dirty.set()
                    return out
                return self._journaled(app, environ, start_response)

        return middleware

    def _journaled(self, app: Any, environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        status: list[str] = []

        def start(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(s)
            return start_response(s, headers, exc_info) if exc_info else start_response(s, headers)

        with self._write_lock:
            out = app(environ, start)
            if not isinstance(out, list):
                out = list(out)  # the write is done once the body exists
            if status and status[0].startswith("2"):
                headers = {k[5:].replace("_", "-").title(): str(v) for k, v in environ.items()
                           if k.startswith("HTTP_") and k not in ("HTTP_HOST", "HTTP_CONTENT_LENGTH")}
                headers["Content-Type"] = str(environ.get("CONTENT_TYPE", "application/x-amz-json-1.0"))
                headers[":path"] = str(environ.get("PATH_INFO") or "/")
                headers[":method"] = str(environ.get("REQUEST_METHOD", "POST"))
                headers[":query"] = str(environ.get("QUERY_STRING", ""))
                os.write(self._journal.fileno(), pickle.dumps((headers, body), protocol=5))
                self.entries += 1
                self._dirty.set()
        return out

    # -- snapshots --------------------------------------------------------------------------------
    def _open_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
        self._journal = open(_journal_path(self.root, self.gen), "ab", buffering=0)  # noqa: SIM115

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lake-snapshots", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(max(self.interval_s, 2 * self.last.seconds)):
            if not self._dirty.is_set():
                continue
            try:
                self.snapshot(background=True)
            except Exception:  # a failed snapshot keeps the journal: the next one tries again
                log.exception("snapshot of the embedded AWS failed")

    def snapshot(self, background: bool = False) -> SnapshotInfo:
        """Write a snapshot now: in a forked child (``background``) or in this process."""
        co_saved = [_read_dir(d) for d in self.co_saved]  # before the gate: never ahead of the state
        with self.gate.alone():
            self._dirty.clear()
            journal_from = self.gen + 1
            entries = self.entries
            pid = os.fork() if background and hasattr(os, "fork") else None
            if pid == 0:  # the child: the parent's memory as of this instant
                code = 0
                try:
                    self._write_snapshot(co_saved, journal_from)
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            if pid is None:
                info = self._write_snapshot(co_saved, journal_from)
            # the writes that follow go to the next journal, applied after this snapshot
            self.gen = journal_from
            self._open_journal()
            self.entries = 0
        if pid is not None:
            t0 = time.perf_counter()
            _, status = os.waitpid(pid, 0)
            if status != 0:
                self._dirty.set()
                raise RuntimeError(f"the snapshot process failed (status {status}); the journal is kept")
            info = self._read_info(time.perf_counter() - t0)
        info.journal_entries = entries
        for old in _journal_gens(self.root):
            if old < journal_from:
                _journal_path(self.root, old).unlink(missing_ok=True)
        if info.skipped and info.skipped != self.last.skipped:
            log.warning("not saved (moto cannot pickle them): %s", info.skipped)
        self.last = info
        return info

    def _write_snapshot(self, co_saved: list[dict[str, bytes]], journal_from: int) -> SnapshotInfo:
        t0 = time.perf_counter()
        services, skipped = capture_backends()
        taken_at = time.time()
        state = {"format": FORMAT, "moto": _moto_version(), "python": sys.version.split()[0],
                 "services": services, "co_saved": co_saved, "journal_from": journal_from,
                 "taken_at": taken_at}
        tmp = self.root / (SNAPSHOT + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(state, f, protocol=5)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / SNAPSHOT)
        info = SnapshotInfo(taken_at=taken_at, seconds=time.perf_counter() - t0,
                            size=(self.root / SNAPSHOT).stat().st_size, skipped=skipped)
        (self.root / "snapshot.json").write_text(json.dumps(
            {"taken_at": info.taken_at, "seconds": info.seconds, "size": info.size, "skipped": skipped}))
        return info

    def _read_info(self, waited: float) -> SnapshotInfo:
        try:
            d = json.loads((self.root / "snapshot.json").read_text())
            return SnapshotInfo(taken_at=d["taken_at"], seconds=d["seconds"], size=d["size"], skipped=d["skipped"])
        except (OSError, ValueError, KeyError):
            return SnapshotInfo(taken_at=time.time(), seconds=waited)

    def stop(self, final: bool = True) -> None:
        """Stop the snapshot thread; ``final`` writes a last snapshot (a clean stop loses nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None
        if final:
            self.snapshot(background=False)
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def describe(self) -> dict[str, Any]:
        return {"dir": str(self.root), "snapshot_at": self.last.taken_at or None,
                "snapshot_seconds": round(self.last.seconds, 3), "snapshot_bytes": self.last.size,
                "journal_entries": self.entries, "not_saved": self.last.skipped}


def remove_state(root: Path) -> None:
    """Forget a saved lake (used by tests and by ``lake up --fresh``)."""
    shutil.rmtree(root, ignore_errors=True)
