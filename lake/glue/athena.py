"""The heavy step of ``compact`` and ``current_state`` on Athena (docs/adr/0004): the SQL is
built here (pure) and run by :func:`run_statements` in the lake's workgroup, one statement
after the other. ``lake glue compact --engine athena`` / ``current_state --engine athena``.

* compact: per table, the target file size and the time-travel window as the table's
  properties, ``OPTIMIZE … REWRITE DATA USING BIN_PACK`` (per partition when ``--since`` limits
  it), then ``VACUUM`` (expires snapshots past the window and removes orphan files).
* current_state: the latest change per item (``row_number()`` over the key, ordered by event
  time, then sequence number, then event id, as :mod:`lake.glue.state`) ``MERGE``d into
  ``<stem>_current``, or ``CREATE TABLE … AS`` when it does not exist yet, or for ``--as-of``.
  Athena cannot read an Iceberg table incrementally, so each run reduces the whole history
  (ADR 0004: the incremental form is Glue Spark's).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence

from lake.aws.catalog import IcebergMaintenance, IcebergTables
from lake.aws.clients import Clients
from lake.aws.errors import AWS_ERRORS, translate
from lake.curate import names
from lake.errors import QueryError
from lake.glue.current import as_of_table
from lake.glue.current import sources as found_sources
from lake.glue.report import JobReport
from lake.settings import Settings

DAY_S = 86_400


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_ref(settings: Settings, table: str) -> str:
    return f"{_q(settings.glue_database)}.{_q(table)}"


def compact_statements(settings: Settings, table: str, target_bytes: int, retention_s: float) -> list[str]:
    """Athena's compaction of one Iceberg table: properties, OPTIMIZE, VACUUM."""
    ref = table_ref(settings, table)
    return [
        f"ALTER TABLE {ref} SET TBLPROPERTIES ('write_target_data_file_size_bytes'='{int(target_bytes)}', "
        f"'vacuum_max_snapshot_age_seconds'='{int(retention_s)}')",
        f"OPTIMIZE {ref} REWRITE DATA USING BIN_PACK",
        f"VACUUM {ref}",
    ]


def _latest(settings: Settings, history: str, columns: Sequence[str], as_of_us: int | None) -> str:
    where = ""
    if as_of_us is not None:
        when = dt.datetime.fromtimestamp(as_of_us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        where = f" WHERE event_time <= TIMESTAMP '{when}'"
    cols = ", ".join(_q(c) for c in columns)
    return (f"SELECT {cols} FROM (SELECT {cols}, row_number() OVER (PARTITION BY key ORDER BY event_time DESC, "
            f"sequence_number DESC, event_id DESC) AS lake_rank FROM {table_ref(settings, history)}{where}) "
            f"WHERE lake_rank = 1")


def create_current(settings: Settings, history: str, target: str, columns: Sequence[str], location: str,
                   as_of_us: int | None = None) -> str:
    """``<stem>_current`` (or an as-of table) created from the history's latest live rows."""
    cols = ", ".join(_q(c) for c in columns)
    return (f"CREATE TABLE {table_ref(settings, target)} WITH (table_type = 'ICEBERG', location = '{location}', "
            f"is_external = false) AS SELECT {cols} FROM ({_latest(settings, history, columns, as_of_us)}) "
            f"WHERE event_name <> 'REMOVE'")


def merge_current(settings: Settings, history: str, target: str, columns: Sequence[str]) -> str:
    """The history's latest change per item merged into ``<stem>_current``: REMOVE deletes,
    the rest updates or inserts."""
    updates = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in columns if c != "key")
    cols = ", ".join(_q(c) for c in columns)
    values = ", ".join(f"s.{_q(c)}" for c in columns)
    return (f"MERGE INTO {table_ref(settings, target)} t USING ({_latest(settings, history, columns, None)}) s "
            f"ON t.key = s.key "
            f"WHEN MATCHED AND s.event_name = 'REMOVE' THEN DELETE "
            f"WHEN MATCHED THEN UPDATE SET {updates} "
            f"WHEN NOT MATCHED AND s.event_name <> 'REMOVE' THEN INSERT ({cols}) VALUES ({values})")


def run_statements(settings: Settings, statements: Sequence[str], clients: Clients | None = None,
                   sleep: Callable[[float], None] = time.sleep, timeout_s: float = 6 * 3600) -> list[str]:
    """Run each statement on Athena (the lake's workgroup and database) and wait for it; the
    query execution ids. A statement that fails stops the run with Athena's reason."""
    clients = clients or Clients(settings)
    athena = clients.athena
    ids = []
    for sql in statements:
        try:
            qid = str(athena.start_query_execution(
                QueryString=sql, QueryExecutionContext={"Database": settings.glue_database},
                ResultConfiguration={"OutputLocation": settings.athena_output_location},
                WorkGroup=settings.athena_workgroup)["QueryExecutionId"])
            waited, delay = 0.0, 0.5
            while True:
                status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
                if status["State"] not in ("QUEUED", "RUNNING"):
                    break
                if waited > timeout_s:
                    raise QueryError(f"Athena: {sql[:60]}… still {status['State']} after {timeout_s:.0f} s "
                                     f"(query {qid})")
                sleep(delay)
                waited += delay
                delay = min(delay * 2, 10.0)
        except AWS_ERRORS as e:
            raise translate(e, "Athena workgroup", settings.athena_workgroup) from e
        if status["State"] != "SUCCEEDED":
            raise QueryError(f"Athena: {sql[:60]}… ended {status['State']}: {status.get('StateChangeReason', '')}")
        ids.append(qid)
    return ids


def compact_on_athena(settings: Settings, tables: Sequence[str], target_bytes: int, retention_s: float,
                      dry_run: bool, clients: Clients | None = None) -> JobReport:
    """``compact --engine athena``: the statements per table, with the data files counted
    before and after from the tables' metadata."""
    clients = clients or Clients(settings)
    iceberg = IcebergTables(settings, clients)
    maintenance = IcebergMaintenance(iceberg)
    report = JobReport("compact (athena)", dry_run)
    for name in tables or iceberg.list():
        part = report.table(name)
        statements = compact_statements(settings, name, target_bytes, retention_s)
        before = maintenance.data_files(iceberg.load(name))
        part.files_in, part.bytes_in = len(before), sum(f.size for f in before)
        if dry_run:
            part.notes.extend(statements)
            continue
        ids = run_statements(settings, statements, clients)
        after = maintenance.data_files(iceberg.load(name))
        part.files_out, part.bytes_out = len(after), sum(f.size for f in after)
        part.notes.append(f"Athena query ids: {', '.join(ids)}")
    return report.done()


def current_on_athena(settings: Settings, sources: Sequence[str], as_of_us: int | None, into: str | None,
                      dry_run: bool, clients: Clients | None = None) -> JobReport:
    """``current_state --engine athena``: CREATE TABLE AS or MERGE per source table."""
    clients = clients or Clients(settings)
    iceberg = IcebergTables(settings, clients)
    report = JobReport("current_state (athena)", dry_run)
    for source in sources or found_sources(iceberg):
        history = names.history_table(source)
        target = (into or as_of_table(source, as_of_us)) if as_of_us is not None else names.current_table(source)
        part = report.table(target)
        columns = [f.name for f in iceberg.load(history).schema().fields if f.name != "dt"]
        if as_of_us is None and iceberg.find(target) is not None:
            statement = merge_current(settings, history, target, columns)
        else:
            statement = create_current(settings, history, target, columns, iceberg.location(target), as_of_us)
        if dry_run:
            part.notes.append(statement)
            continue
        part.notes.append(f"Athena query ids: {', '.join(run_statements(settings, [statement], clients))}")
        part.snapshots_added = 1
    return report.done()
