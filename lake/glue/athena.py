"""The heavy step of ``compact`` and ``current_state`` on Athena (docs/adr/0004).

The job's own process only reads Iceberg *metadata* (which partitions hold small files,
which data files the history added since the last run) and writes table properties; every
row is read and written by Athena. ``lake glue compact|current_state --engine athena``, the
default on AWS.

Three layers, so each can be tested without an AWS account:

* the SQL, built by pure functions (:func:`compact_statements`, :func:`merge_current`,
  :func:`create_current`) and checked by :func:`validate` against Athena's grammar (sqlglot's
  Athena dialect; ``OPTIMIZE`` and ``VACUUM``, which sqlglot only knows as opaque commands,
  against Athena's documented syntax);
* the door, :class:`AthenaStatements`: ``StartQueryExecution`` in the given workgroup, then
  ``GetQueryExecution`` until the state leaves QUEUED/RUNNING; FAILED or CANCELLED is a
  :class:`~lake.errors.QueryError` carrying Athena's ``StateChangeReason``; a failure Athena
  marks retryable (an Iceberg commit conflict) is started again, a bounded number of times;
* the jobs (:func:`compact_on_athena`, :func:`current_on_athena`), which take any
  :class:`Statements` (the tests give one that runs the SQL on DuckDB).

compact: the target file size and the time-travel window as the table's properties (only
when they differ: a second run commits nothing), one ``OPTIMIZE … REWRITE DATA USING
BIN_PACK WHERE <partition>`` per partition that holds two small files (planned from the
metadata as the local path plans its bins), then ``VACUUM`` (expires snapshots past the
window and removes orphan files).

current_state: incremental as the local path is. The history snapshots since the watermark
name the data files they added, hence the day partitions (``dt``) they touched; Athena takes
the items with a change in those days (a superset of the items changed since the watermark:
``"$path"`` would be tighter, but Athena does not document it for Iceberg tables), reduces
each such item's *whole* history to its latest change (``row_number()`` over the key, ordered
by event time, sequence number, event id, as :mod:`lake.glue.state`) and ``MERGE``s that into
``<stem>_current`` (REMOVE deletes, the rest updates or inserts). Reducing an item's whole
history is what makes a statement exact whatever order changes arrived in (a late older
change never revives a deleted item), exact for any superset of the touched items, and
idempotent (a re-run after a crash before the watermark moved changes nothing). A new table,
``--full``, a watermark the history no longer has, or an unpartitioned history is the whole
history's reduction (``CREATE TABLE … AS`` or one ``MERGE``); ``--as-of`` is a
``CREATE TABLE … AS``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError

from lake.aws.catalog import KIND_PROPERTY, SOURCE_PROPERTY, IcebergMaintenance, IcebergTables
from lake.aws.clients import Clients
from lake.aws.errors import AWS_ERRORS, translate
from lake.curate import names
from lake.errors import QueryError
from lake.glue.compact import plan_bins
from lake.glue.current import AS_OF, COPIED, KIND, WATERMARK, as_of_table, snapshots_since
from lake.glue.current import sources as found_sources
from lake.glue.report import JobReport
from lake.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.table import Table, Transaction

log = logging.getLogger(__name__)

DAY_S = 86_400
MAX_STATEMENT_BYTES = 262_144  # Athena's limit on a QueryString
RUNNING = ("QUEUED", "RUNNING")


# -- the SQL (pure) ---------------------------------------------------------------------------------

def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def table_ref(settings: Settings, table: str) -> str:
    return f"{_q(settings.glue_database)}.{_q(table)}"


def table_properties(target_bytes: int, retention_s: float) -> dict[str, str]:
    """The Iceberg table properties Athena's OPTIMIZE and VACUUM read (Athena's names)."""
    return {"write_target_data_file_size_bytes": str(int(target_bytes)),
            "vacuum_max_snapshot_age_seconds": str(int(retention_s))}


def alter_properties(settings: Settings, table: str, properties: Mapping[str, str]) -> str:
    pairs = ", ".join(f"{_literal(k)}={_literal(v)}" for k, v in properties.items())
    return f"ALTER TABLE {table_ref(settings, table)} SET TBLPROPERTIES ({pairs})"


def optimize(settings: Settings, table: str, partition: Sequence[tuple[str, Any]] = ()) -> str:
    """Athena's bin-packing rewrite of one partition (``()``: the whole table)."""
    where = " AND ".join(f"{_q(column)} = {_literal(value)}" for column, value in partition)
    return f"OPTIMIZE {table_ref(settings, table)} REWRITE DATA USING BIN_PACK" + (f" WHERE {where}" if where else "")


def vacuum(settings: Settings, table: str) -> str:
    return f"VACUUM {table_ref(settings, table)}"


def compact_statements(settings: Settings, table: str, target_bytes: int, retention_s: float,
                       partitions: Sequence[Sequence[tuple[str, Any]]] | None = None,
                       properties_needed: bool = True) -> list[str]:
    """Athena's compaction of one Iceberg table: its properties (when ``properties_needed``),
    OPTIMIZE per partition (``None``: the whole table in one statement), VACUUM."""
    out = []
    if properties_needed:
        out.append(alter_properties(settings, table, table_properties(target_bytes, retention_s)))
    if partitions is None:
        out.append(optimize(settings, table))
    else:
        out.extend(optimize(settings, table, p) for p in partitions)
    out.append(vacuum(settings, table))
    return out


def _latest(settings: Settings, history: str, columns: Sequence[str], as_of_us: int | None,
            days: Sequence[str] | None) -> str:
    """One row per item: its latest change (live or REMOVE); with ``days``, only the items with
    a change in those ``dt`` partitions, each reduced over its whole history."""
    conditions = []
    if as_of_us is not None:
        when = dt.datetime.fromtimestamp(as_of_us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        conditions.append(f"event_time <= TIMESTAMP '{when}'")
    if days is not None:
        listed = ", ".join(_literal(d) for d in days)
        conditions.append(f'"key" IN (SELECT "key" FROM {table_ref(settings, history)} WHERE "dt" IN ({listed}))')
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    cols = ", ".join(_q(c) for c in columns)
    return (f"SELECT {cols} FROM (SELECT {cols}, row_number() OVER (PARTITION BY \"key\" ORDER BY event_time DESC, "
            f"sequence_number DESC, event_id DESC) AS lake_rank FROM {table_ref(settings, history)}{where}) "
            f"WHERE lake_rank = 1")


def create_current(settings: Settings, history: str, target: str, columns: Sequence[str], location: str,
                   as_of_us: int | None = None) -> str:
    """``<stem>_current`` (or an as-of table) created from the history's latest live rows."""
    cols = ", ".join(_q(c) for c in columns)
    return (f"CREATE TABLE {table_ref(settings, target)} WITH (table_type = 'ICEBERG', location = '{location}', "
            f"is_external = false) AS SELECT {cols} FROM ({_latest(settings, history, columns, as_of_us, None)}) "
            f"WHERE event_name <> 'REMOVE'")


def merge_current(settings: Settings, history: str, target: str, columns: Sequence[str],
                  days: Sequence[str] | None = None) -> str:
    """The latest change per item merged into ``<stem>_current``: REMOVE deletes, the rest
    updates or inserts. ``days``: only the items with a change in those history partitions."""
    updates = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in columns if c != "key")
    cols = ", ".join(_q(c) for c in columns)
    values = ", ".join(f"s.{_q(c)}" for c in columns)
    return (f"MERGE INTO {table_ref(settings, target)} AS t "
            f"USING ({_latest(settings, history, columns, None, days)}) AS s "
            f'ON t."key" = s."key" '
            f"WHEN MATCHED AND s.event_name = 'REMOVE' THEN DELETE "
            f"WHEN MATCHED THEN UPDATE SET {updates} "
            f"WHEN NOT MATCHED AND s.event_name <> 'REMOVE' THEN INSERT ({cols}) VALUES ({values})")


_TABLE = r'"(?:[^"]|"")+"\."(?:[^"]|"")+"'
_OPTIMIZE = re.compile(rf"OPTIMIZE (?P<table>{_TABLE}) REWRITE DATA USING BIN_PACK(?: WHERE (?P<where>.+))?", re.S)
_VACUUM = re.compile(rf"VACUUM (?P<table>{_TABLE})")
_EXPECTED = (exp.Merge, exp.Insert, exp.Create, exp.Alter, exp.Select, exp.Delete)
_SQLGLOT_LOG = logging.getLogger("sqlglot")


def validate(sql: str) -> exp.Expression:
    """``sql`` parsed as Athena (Trino) SQL; :class:`QueryError` when it is not a statement
    Athena accepts. ``OPTIMIZE`` and ``VACUUM`` are matched against Athena's documented
    syntax (sqlglot parses them only as opaque commands), OPTIMIZE's WHERE as an Athena
    predicate on partition columns."""
    if len(sql.encode()) > MAX_STATEMENT_BYTES:
        raise QueryError(f"Athena statement of {len(sql.encode())} bytes: the limit is {MAX_STATEMENT_BYTES}")
    level = _SQLGLOT_LOG.level
    _SQLGLOT_LOG.setLevel(logging.ERROR)  # the opaque-command fallback is checked below
    try:
        parsed = [e for e in sqlglot.parse(sql, read="athena", error_level=ErrorLevel.RAISE) if e is not None]
    except (ParseError, TokenError) as e:
        raise QueryError(f"not Athena SQL: {e}: {sql[:120]}") from None
    finally:
        _SQLGLOT_LOG.setLevel(level)
    if len(parsed) != 1:
        raise QueryError(f"one Athena statement expected, got {len(parsed)}: {sql[:120]}")
    (statement,) = parsed
    if isinstance(statement, exp.Command):
        if m := _OPTIMIZE.fullmatch(sql):
            if m["where"] is not None:
                _validate_predicate(m["where"], sql)
            return statement
        if _VACUUM.fullmatch(sql):
            return statement
        raise QueryError(f"not a statement the Glue jobs send to Athena: {sql[:120]}")
    if not isinstance(statement, _EXPECTED):
        raise QueryError(f"unexpected Athena statement {type(statement).__name__}: {sql[:120]}")
    return statement


def _validate_predicate(where: str, sql: str) -> None:
    try:
        select = sqlglot.parse_one(f"SELECT 1 FROM t WHERE {where}", read="athena", error_level=ErrorLevel.RAISE)
    except (ParseError, TokenError) as e:
        raise QueryError(f"OPTIMIZE's WHERE is not an Athena predicate: {e}: {sql[:120]}") from None
    condition = select.args["where"].this
    allowed = (exp.EQ, exp.And, exp.Column, exp.Literal, exp.Identifier, exp.Paren)
    if any(not isinstance(node, allowed) for node in condition.walk()):
        raise QueryError(f"OPTIMIZE's WHERE must compare partition columns with literals: {sql[:120]}")


# -- the door -------------------------------------------------------------------------------------

class Statements(Protocol):
    """Something that runs one Athena statement to its end and returns its query id."""

    def run(self, sql: str) -> str: ...


@dataclass
class AthenaStatements:
    """Athena's query API for statements whose result is their effect (DML, DDL, OPTIMIZE):
    one at a time, each waited for, in ``workgroup`` (the lake's, or ``--workgroup``: the
    role running the job must be allowed to use it)."""

    athena: Any  # a boto3 Athena client
    database: str
    workgroup: str
    output_location: str | None = None
    sleep: Callable[[float], None] = time.sleep
    timeout_s: float = 6 * 3600.0
    retries: int = 2  # starts again of a statement Athena reports as a retryable failure
    first_delay_s: float = 0.5
    max_delay_s: float = 10.0

    @classmethod
    def of(cls, settings: Settings, clients: Clients | None = None) -> AthenaStatements:
        clients = clients or Clients(settings)
        return cls(clients.athena, settings.glue_database, settings.athena_workgroup,
                   settings.athena_output_location)

    def run(self, sql: str) -> str:
        validate(sql)  # a syntax error costs nothing, not a query
        attempt = 0
        while True:
            qid = self._start(sql)
            status = self._wait(qid, sql)
            state = str(status["State"])
            if state == "SUCCEEDED":
                return qid
            error = status.get("AthenaError") or {}
            reason = str(status.get("StateChangeReason") or error.get("ErrorMessage") or "no reason given")
            if state == "FAILED" and error.get("Retryable") and attempt < self.retries:
                attempt += 1
                log.warning("Athena query %s failed (retryable): %s; starting it again (%d/%d)",
                            qid, reason, attempt, self.retries)
                continue
            raise QueryError(f"Athena query {qid} {state} in workgroup {self.workgroup}: {reason} "
                             f"(statement: {sql[:160]})")

    def _start(self, sql: str) -> str:
        request: dict[str, Any] = {"QueryString": sql, "QueryExecutionContext": {"Database": self.database},
                                   "WorkGroup": self.workgroup}
        if self.output_location:
            request["ResultConfiguration"] = {"OutputLocation": self.output_location}
        try:
            return str(self.athena.start_query_execution(**request)["QueryExecutionId"])
        except AWS_ERRORS as e:
            raise translate(e, "Athena workgroup", self.workgroup) from e

    def _wait(self, qid: str, sql: str) -> Mapping[str, Any]:
        waited, delay = 0.0, self.first_delay_s
        while True:
            try:
                status: Mapping[str, Any] = self.athena.get_query_execution(
                    QueryExecutionId=qid)["QueryExecution"]["Status"]
            except AWS_ERRORS as e:
                raise translate(e, "Athena query", qid) from e
            if status["State"] not in RUNNING:
                return status
            if waited >= self.timeout_s:
                try:
                    self.athena.stop_query_execution(QueryExecutionId=qid)
                except AWS_ERRORS as e:
                    log.warning("could not stop Athena query %s: %s", qid, e)
                raise QueryError(f"Athena query {qid} still {status['State']} after {self.timeout_s:.0f} s: "
                                 f"stopped (statement: {sql[:160]})")
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, self.max_delay_s)


# -- the jobs -------------------------------------------------------------------------------------

def compact_on_athena(settings: Settings, tables: Sequence[str], target_bytes: int, retention_s: float,
                      dry_run: bool, clients: Clients | None = None, runner: Statements | None = None,
                      small_fraction: float = 0.75) -> JobReport:
    """``compact --engine athena``: per table, the partitions to rewrite planned from the
    metadata, the statements run, the data files counted before and after."""
    clients = clients or Clients(settings)
    iceberg = IcebergTables(settings, clients)
    maintenance = IcebergMaintenance(iceberg)
    runner = runner or AthenaStatements.of(settings, clients)
    report = JobReport("compact (athena)", dry_run)
    for name in tables or iceberg.list():
        part = report.table(name)
        table = iceberg.load(name)
        before = maintenance.data_files(table)
        partitions: list[tuple[tuple[str, Any], ...]] = []
        for members in plan_bins(before, target_bytes, small_fraction):
            if members[0].partition not in partitions:
                partitions.append(members[0].partition)
        wanted = table_properties(target_bytes, retention_s)
        needed = any(table.properties.get(k) != v for k, v in wanted.items())
        statements = compact_statements(settings, name, target_bytes, retention_s, partitions, needed)
        part.files_in, part.bytes_in = len(before), sum(f.size for f in before)
        part.notes.append(f"{len(partitions)} partition(s) with small files to rewrite")
        if dry_run:
            part.notes.extend(statements)
            continue
        ids = [runner.run(sql) for sql in statements]
        after = maintenance.data_files(iceberg.load(name))
        part.files_out, part.bytes_out = len(after), sum(f.size for f in after)
        part.snapshots_added = len(partitions) if len(after) != len(before) else 0
        part.notes.append(f"Athena query ids: {', '.join(ids)}")
    return report.done()


def current_on_athena(settings: Settings, sources: Sequence[str], as_of_us: int | None, into: str | None,
                      dry_run: bool, clients: Clients | None = None, runner: Statements | None = None,
                      full: bool = False) -> JobReport:
    """``current_state --engine athena`` (see the module doc)."""
    clients = clients or Clients(settings)
    iceberg = IcebergTables(settings, clients)
    maintenance = IcebergMaintenance(iceberg)
    runner = runner or AthenaStatements.of(settings, clients)
    report = JobReport("current_state (athena)" + (" --as-of" if as_of_us is not None else ""), dry_run)
    for source in sources or found_sources(iceberg):
        history = names.history_table(source)
        target = (into or as_of_table(source, as_of_us)) if as_of_us is not None else names.current_table(source)
        part = report.table(target)
        h = iceberg.find(history)
        head = h.current_snapshot() if h is not None else None
        if h is None or head is None:
            part.notes.append(f"{history} holds no change yet: nothing to do")
            continue
        columns = [f.name for f in h.schema().fields if f.name != "dt"]
        properties = {k: v for k, v in h.properties.items() if k.startswith(COPIED)}
        properties.update({WATERMARK: str(head.snapshot_id), SOURCE_PROPERTY: source, KIND_PROPERTY: KIND})
        existing = iceberg.find(target)
        statements: list[str]
        if as_of_us is not None:
            if existing is not None:
                part.notes.append(f"{target} exists: an as-of table is written once")
                continue
            properties[AS_OF] = str(as_of_us)
            statements = [create_current(settings, history, target, columns, _fresh_location(iceberg, target),
                                         as_of_us)]
            part.notes.append("full: CREATE TABLE AS over the history up to the as-of time")
        elif existing is None:
            statements = [create_current(settings, history, target, columns, _fresh_location(iceberg, target))]
            part.notes.append("full: CREATE TABLE AS over the whole history")
        else:
            mark = existing.properties.get(WATERMARK)
            if mark == str(head.snapshot_id) and not full:
                part.notes.append(f"up to date with {history} snapshot {mark}")
                continue
            since = snapshots_since(h, int(mark)) if mark is not None and not full else None
            if since is None:
                statements = [merge_current(settings, history, target, columns)]
                part.notes.append("full: MERGE of the whole history's reduction")
            else:
                added = [f for s in since for f in maintenance.added_files(h, s)]
                days = sorted({str(dict(f.partition)["dt"]) for f in added if "dt" in dict(f.partition)})
                part.files_in = len(added)
                if any("dt" not in dict(f.partition) for f in added):  # an unpartitioned file: no day to name
                    statements = [merge_current(settings, history, target, columns)]
                    part.notes.append(f"full: {len(added)} new history file(s), not all in a day partition")
                elif added:
                    statements = [merge_current(settings, history, target, columns, days)]
                    part.notes.append(f"incremental: {len(added)} new history file(s); the items changed "
                                      f"on {len(days)} day(s) merged")
                else:
                    statements = []
                    part.notes.append("no new change (only compactions): the watermark moves")
        if dry_run:
            part.notes.extend(statements)
            continue
        if existing is not None and as_of_us is None:
            _evolve(iceberg, target, h)  # the history's new columns, before the MERGE names them
        ids = [runner.run(sql) for sql in statements]
        _set_properties(iceberg, target, properties)  # the watermark moves only after Athena succeeded
        part.snapshots_added = len(ids)
        if ids:
            part.notes.append(f"Athena query ids: {', '.join(ids)}")
    return report.done()


def _fresh_location(iceberg: IcebergTables, target: str) -> str:
    """A location of its own for a table Athena creates: a CTAS refuses a non-empty one, and a
    table dropped before may have left files at the usual place."""
    return f"{iceberg.location(target)}/{uuid.uuid4().hex[:12]}"


def _evolve(iceberg: IcebergTables, target: str, h: Table) -> None:
    have = set(iceberg.load(target).schema().column_names)
    wanted = [f for f in h.schema().as_arrow() if f.name != "dt"]
    if all(f.name in have for f in wanted):
        return
    import pyarrow as pa

    def stage(c: Table, tx: Transaction) -> bool:
        with tx.update_schema() as update:
            update.union_by_name(pa.schema(wanted))
        return True

    iceberg.transact(target, stage)


def _set_properties(iceberg: IcebergTables, target: str, properties: Mapping[str, str]) -> None:
    def stage(c: Table, tx: Transaction) -> bool:
        if all(c.properties.get(k) == v for k, v in properties.items()):
            return False
        tx.set_properties(dict(properties))
        return True

    iceberg.transact(target, stage)
