"""The local Athena: DuckDB over the lake on the embedded S3, fed the same Athena SQL.

Tables come from the catalog door (``lake.aws.catalog``): each curated (Parquet) table is
a pyarrow dataset with hive partitioning over S3 (pyarrow's S3FileSystem pointed at
the embedded endpoint), registered in DuckDB, so projections and filters are pushed
into the scan and a ``dt`` predicate opens only the matching partitions. The raw
zone (gzip JSON lines) is read into Arrow on first use, with its object URL as
``filename`` (Athena's ``"$path"``). Then the views of ``athena_queries/views`` are
created, transpiled by :mod:`lake.query.dialect`.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from pyarrow import fs as pafs
from sqlglot import exp

from lake.archive import line as line_format
from lake.aws.catalog import CatalogTable, IcebergTables, arrow_type, glue_type
from lake.aws.clients import Clients
from lake.aws.storage import s3_filesystem
from lake.errors import NotFoundError, QueryError
from lake.query import dialect, functions, guard
from lake.query.jsontext import members
from lake.query.sqlfiles import View, load_views, queries_dir
from lake.settings import Settings

log = logging.getLogger(__name__)

RAW_TABLE = "raw_changes"
# the raw line's envelope fields (lake.archive.line.FIELDS) as Athena's struct sees them
_ENVELOPE_ARROW = {"string": pa.string(), "digits": pa.string(), "integer": pa.int64(), "boolean": pa.bool_()}

def athena_schema(schema: pa.Schema) -> pa.Schema:
    """The columns as Athena shows them: its ``timestamp`` has no zone, so the lake's UTC instants
    (docs/adr/0002) are read as UTC wall-clock time, zone dropped (nested types too)."""
    return pa.schema([f.with_type(_zone_less(f.type)) for f in schema], metadata=schema.metadata)


def _zone_less(t: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(t) and t.tz is not None:
        return pa.timestamp(t.unit)
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_zone_less(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_zone_less(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_zone_less(t.key_type), _zone_less(t.item_type))
    return t


def raw_record_type(directory: Path | None = None) -> pa.DataType:
    """The type of ``raw_changes.record`` as the Athena DDL declares it
    (``athena_queries/ddl/raw_changes.sql``): one declaration for both engines."""
    path = (directory or queries_dir()) / "ddl" / f"{RAW_TABLE}.sql"
    for statement in dialect.parse(path.read_text()):
        for column in statement.find_all(exp.ColumnDef):
            if column.name == "record":
                return arrow_type(column.args["kind"].sql(dialect="hive"))
    raise QueryError(f"{path}: no `record` column")


def openx_value(text: str, t: pa.DataType) -> Any:
    """A JSON value as the OpenX JSON SerDe reads it into a column of type ``t``: struct
    fields matched case-insensitively, an object or number read into a ``string`` column
    as its JSON text (exact, never through a double)."""
    if text == "null":
        return None
    if pa.types.is_struct(t):
        if not text.startswith("{"):
            return None
        found = {k.lower(): v for k, v in members(text).items()}
        return {f.name: (openx_value(found[f.name], f.type) if f.name in found else None) for f in t}
    if pa.types.is_string(t):
        return json.loads(text) if text.startswith('"') else text
    scalar = json.loads(text)
    if pa.types.is_boolean(t):
        return scalar if isinstance(scalar, bool) else str(scalar).lower() == "true"
    if pa.types.is_integer(t):
        return int(scalar)
    if pa.types.is_floating(t):
        return float(scalar)
    return scalar


def _strip_scheme(url: str) -> str:
    for scheme in ("s3://", "s3a://", "s3n://"):
        if url.startswith(scheme):
            return url[len(scheme):]
    return url


# Views over the curated `changes` table (athena_queries/views).
CURATED_VIEWS = ("changes_unique", "audit_trail", "current_state", "change_volume", "deletions")


class LocalEngine:
    """DuckDB over the lake. ``query(sql) -> pyarrow.Table``.

    ``filesystem`` replaces pyarrow's S3 filesystem (tests wrap it to count opened
    files); ``views_dir`` replaces ``athena_queries/views``.
    """

    name = "local"

    def __init__(
        self,
        settings: Settings,
        clients: Clients | None = None,
        filesystem: pafs.FileSystem | None = None,
        views_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients or Clients(settings)
        self.filesystem = filesystem or s3_filesystem(settings)
        self.views_dir = views_dir
        self.con = duckdb.connect()
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        functions.prepare(self.con)
        functions.lock_down(self.con)
        self.tables: dict[str, CatalogTable] = {}
        self.views: dict[str, View] = {}
        self.view_errors: dict[str, str] = {}
        self._loaded = False
        self._raw_loaded = False
        self._snapshots: dict[str, int] = {}  # registered time-travel relations
        self._lock = threading.RLock()
        self.iceberg = IcebergTables(settings, self.clients)

    # -- catalog -----------------------------------------------------------------
    def refresh(self) -> None:
        """(Re)read the Glue catalog, register every table, (re)create every view."""
        with self._lock:
            try:
                found = [t for t in self.clients.catalog(self.settings.glue_database).list_tables()
                         if not t.is_view and t.location]
            except NotFoundError:
                # No curated table yet (nothing curated): the raw zone can still be queried.
                log.warning("Glue database %s does not exist yet", self.settings.glue_database)
                found = []
            self.tables = {t.name.lower(): t for t in found}
            self._snapshots = {}
            for table in self.tables.values():
                if table.format == "parquet":
                    self._register_parquet(table)
                elif table.format == "iceberg":
                    self.con.register(table.name.lower(), self._iceberg_dataset(table.name, None))
            self._raw_loaded = False
            self._create_views()
            self._loaded = True

    def _dataset(self, table: CatalogTable) -> ds.Dataset:
        base = _strip_scheme(table.location).rstrip("/")
        try:
            schema = athena_schema(table.arrow_schema())
            partitioning: Any = ds.partitioning(table.partition_schema(), flavor="hive")
            full_schema: pa.Schema | None = pa.schema(list(schema) + list(table.partition_schema()))
        except ValueError as e:  # a Glue type we cannot map: let pyarrow read the files' own schema
            log.warning("table %s: %s; using the Parquet schema", table.name, e)
            partitioning, full_schema = "hive", None
        try:
            return ds.dataset(
                base, filesystem=self.filesystem, format="parquet",
                partitioning=partitioning, schema=full_schema,
                exclude_invalid_files=False,
            )
        except (FileNotFoundError, OSError) as e:
            if full_schema is None:
                raise QueryError(f"table {table.name}: cannot read {table.location}: {e}") from e
            # A registered table nothing has been written to yet: empty, not an error.
            return ds.dataset(full_schema.empty_table())

    # -- Iceberg tables ------------------------------------------------------------
    def _iceberg_dataset(self, name: str, snapshot_id: int | None) -> ds.Dataset:
        """The data files of a snapshot (the current one by default) as a dataset.

        pyiceberg plans the files from the table's metadata; their paths carry the
        partition values (``.../data/dt=2026-11-22/…``), which pyarrow reads as hive
        partitions, so a filter on a partition column never opens another partition's
        files. The schema is the snapshot's: files written before a column existed read it
        as null (columns are only ever added, ADR 0003)."""
        table = self.iceberg.load(name)
        snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else table.current_snapshot()
        schema = table.schema()
        if snapshot is not None and snapshot.schema_id is not None:
            schema = table.schemas().get(snapshot.schema_id, schema)
        arrow_schema = athena_schema(schema.as_arrow())
        if snapshot is None:
            return ds.dataset(arrow_schema.empty_table())
        tasks = list(table.scan(snapshot_id=snapshot.snapshot_id).plan_files())
        if any(t.delete_files for t in tasks):  # row-level deletes (Athena MERGE/DELETE): let pyiceberg apply them
            return ds.dataset(table.scan(snapshot_id=snapshot.snapshot_id).to_arrow().cast(arrow_schema))
        spec = table.specs()[table.metadata.default_spec_id]
        keys = [f.name for f in spec.fields]
        partitioning = ds.partitioning(pa.schema([arrow_schema.field(k) for k in keys if k in arrow_schema.names]),
                                       flavor="hive") if keys else None
        base = _strip_scheme(table.location()).rstrip("/") + "/data"
        return ds.dataset([_strip_scheme(t.file.file_path) for t in tasks], schema=arrow_schema, format="parquet",
                          filesystem=self.filesystem, partitioning=partitioning, partition_base_dir=base)

    def _bind_versions(self, statement: exp.Expression) -> None:
        """``t FOR TIMESTAMP AS OF x`` / ``t FOR VERSION AS OF n`` (Athena's time travel on
        Iceberg) → a relation of that snapshot, registered once per snapshot."""
        for node in list(statement.find_all(exp.Table)):
            version = node.args.get("version")
            if version is None:
                continue
            name = node.name.lower()
            table = self.tables.get(name)
            if table is None or table.format != "iceberg":
                raise QueryError(f"time travel needs an Iceberg table; {node.name!r}{_at(node)} is not one")
            snapshot_id = self._snapshot_for(table.name, version)
            relation = f"{name}__snapshot_{snapshot_id}"
            if relation not in self._snapshots:
                self.con.register(relation, self._iceberg_dataset(table.name, snapshot_id))
                self._snapshots[relation] = snapshot_id
            alias = node.alias or node.name
            node.set("version", None)
            node.set("this", exp.to_identifier(relation))
            node.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))

    def _snapshot_for(self, name: str, version: exp.Expression) -> int:
        table = self.iceberg.load(name)
        kind = str(version.this).upper()
        value = version.expression
        if kind == "VERSION":
            try:
                snapshot_id = int(value.name if isinstance(value, exp.Literal) else self._scalar(value))
            except (TypeError, ValueError):
                raise QueryError(f"FOR VERSION AS OF needs a snapshot id, got {value.sql()}") from None
            if table.snapshot_by_id(snapshot_id) is None:
                raise QueryError(f"table {name} has no snapshot {snapshot_id}")
            return snapshot_id
        at = self._scalar(exp.cast(value, exp.DataType.build("timestamptz")))
        ms = int(at.timestamp() * 1000)
        snapshot = table.snapshot_as_of_timestamp(ms)
        if snapshot is None:
            raise QueryError(f"table {name} has no snapshot at or before {at.isoformat()}")
        return snapshot.snapshot_id

    def _scalar(self, expression: exp.Expression) -> Any:
        try:
            rows = self.con.execute("SELECT " + dialect.to_duckdb(expression)).fetchall()
        except duckdb.Error as e:
            raise QueryError(f"cannot evaluate {expression.sql()}: {e}") from None
        return rows[0][0] if rows else None

    def _register_parquet(self, table: CatalogTable) -> None:
        self.con.register(table.name.lower(), self._dataset(table))

    def _create_views(self) -> None:
        self.views, self.view_errors = {}, {}
        for view in load_views(self.settings, self.views_dir):
            missing = [d for d in view.depends_on if d not in self.tables and d not in self.views]
            if missing:
                self.view_errors[view.name] = f"needs {', '.join(sorted(missing))}, not in the catalog"
                continue
            try:
                for statement in dialect.transpile(view.sql):
                    self.con.execute(statement)
                self.views[view.name] = view
            except duckdb.Error as e:
                self.view_errors[view.name] = str(e)
                log.warning("view %s could not be created locally: %s", view.name, e)

    # -- raw zone ----------------------------------------------------------------
    def _raw_location(self) -> str:
        table = self.tables.get(RAW_TABLE)
        return table.location if table else self.settings.s3_url("raw")

    def _load_raw(self) -> None:
        """Read the raw zone into DuckDB as ``raw_changes`` (+ ``filename``)."""
        base = _strip_scheme(self._raw_location()).rstrip("/")
        try:
            infos = self.filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except OSError as e:
            raise QueryError(f"cannot list the raw zone {base}: {e}") from e
        columns: dict[str, list[Any]] = {
            "lake": [], "record": [], "table": [], "dt": [], "hour": [], "filename": []
        }
        record_type = raw_record_type()
        for info in sorted(infos, key=lambda i: i.path):
            if info.type != pafs.FileType.File or not info.path.endswith(".json.gz"):
                continue
            parts = dict(p.split("=", 1) for p in info.path[len(base):].split("/") if "=" in p)
            with self.filesystem.open_input_file(info.path) as f:
                body = gzip.decompress(f.read())
            for line in body.splitlines():
                if not line.strip():
                    continue
                try:
                    lake, record = line_format.split(line)
                except line_format.MalformedLineError as e:
                    raise QueryError(f"raw object s3://{info.path}: {e}") from None
                columns["lake"].append(lake)
                columns["record"].append(openx_value(record.decode(), record_type))
                columns["table"].append(parts.get("table"))
                columns["dt"].append(parts.get("dt"))
                hour = parts.get("hour")
                columns["hour"].append(int(hour) if hour and hour.isdigit() else None)
                columns["filename"].append(f"s3://{info.path}")
        lake_type = pa.struct([(f.name, _ENVELOPE_ARROW[f.kind]) for f in line_format.FIELDS])
        arrow = pa.table({
            "lake": pa.array(columns["lake"], lake_type),
            "record": pa.array(columns["record"], record_type),
            "table": pa.array(columns["table"], pa.string()),
            "dt": pa.array(columns["dt"], pa.string()),
            "hour": pa.array(columns["hour"], pa.int32()),
            "filename": pa.array(columns["filename"], pa.string()),
        })
        self.con.register(RAW_TABLE, arrow)
        self._raw_loaded = True

    # -- queries -----------------------------------------------------------------
    def known_relations(self) -> set[str]:
        return set(self.tables) | set(self.views) | {RAW_TABLE}

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one Athena SQL statement (``?`` placeholders bound to ``params``)."""
        if not self._loaded:
            self.refresh()
        shown = self._show(sql)
        if shown is not None:
            return shown
        guard.check_text(sql)
        statements = dialect.parse(sql)
        if len(statements) != 1:
            raise QueryError(f"expected one SQL statement, got {len(statements)}")
        statement = statements[0]
        guard.check(statement)
        self._check_tables(statement)
        with self._lock:
            self._bind_versions(statement)
            self._bind_paths(statement)
            self._typed_rewrites(statement)
            local_sql = dialect.to_duckdb(statement)
            try:
                relation = self.con.sql(local_sql, params=list(params) if params else None)
                if relation is None:  # a statement without rows
                    return pa.table({})
                result = relation.to_arrow_table()
            except duckdb.Error as e:
                raise guard.translate_duckdb_error(str(e)) from None
        table = result if isinstance(result, pa.Table) else pa.Table.from_batches(result)
        return _trino_column_names(table)

    # -- SHOW / DESCRIBE ---------------------------------------------------------------
    def _show(self, sql: str) -> pa.Table | None:
        """Athena's ``SHOW TABLES [IN db] [LIKE 'regex']``, ``SHOW VIEWS``, ``SHOW COLUMNS
        FROM t``, ``SHOW DATABASES`` and ``DESCRIBE t``, answered from the catalog."""
        found = _SHOW.fullmatch(sql.strip().rstrip(";").strip())
        if found is None:
            return None
        m = _ShowMatch(found)
        what = (m.group("what") or "").lower()
        db = m.group("db")
        if db and db.strip('"`').lower() != self.settings.glue_database.lower():
            raise QueryError(f"unknown database {db!r}")
        if what in ("databases", "schemas"):
            return pa.table({"database_name": [self.settings.glue_database]})
        if what in ("tables", "views"):
            names = sorted(self.views) if what == "views" else sorted(self.known_relations())
            pattern = m.group("like")
            if pattern is not None:
                regex = re.compile("|".join(p.strip().replace("*", ".*") for p in pattern.split("|")), re.I)
                names = [n for n in names if regex.fullmatch(n)]
            return pa.table({"tab_name": pa.array(names, pa.string())})
        table = (m.group("table") or "").strip('"`')
        if "." in table:
            table = table.rsplit(".", 1)[1].strip('"`')
        described = self.query(f'SELECT * FROM "{table}" LIMIT 0')
        if what == "columns":
            return pa.table({"field": pa.array(described.column_names, pa.string())})
        return pa.table({
            "col_name": pa.array(described.column_names, pa.string()),
            "data_type": pa.array([_glue_type_text(f.type) for f in described.schema], pa.string()),
        })

    # -- "$path" on curated tables ----------------------------------------------------
    def _bind_paths(self, statement: exp.Expression) -> None:
        """Athena's hidden ``"$path"`` column on a curated table: the table is read with the
        object URL of each row's data file (DuckDB's ``filename``), as a relation of its own."""
        if not any(c.name == "$path" for c in statement.find_all(exp.Column)):
            return
        for node in list(statement.find_all(exp.Table)):
            name = node.name.lower()
            table = self.tables.get(name)
            if table is None or (node.this is not None and isinstance(node.this, exp.Func)):
                continue
            relation = f"{name}__with_path"
            if table.format == "iceberg":
                dataset = self._iceberg_dataset(table.name, self._snapshots.get(name))
            else:
                dataset = self._dataset(table)
            self.con.register(relation, _with_path(dataset))
            alias = node.alias or node.name
            node.set("this", exp.to_identifier(relation))
            node.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))

    # -- argument types DuckDB must be asked about ---------------------------------------
    def _argument_type(self, node: exp.Expression, argument: exp.Expression) -> str | None:
        """DuckDB's type of ``argument`` where ``node`` sits (its enclosing SELECT's FROM), or
        None when DuckDB cannot say (the query itself will then report the problem)."""
        select = node.find_ancestor(exp.Select)
        probe = select.copy() if select is not None else exp.select("1")
        for key in ("group", "having", "order", "limit", "offset", "qualify", "distinct", "windows"):
            probe.set(key, None)
        probe.set("expressions", [argument.copy()])
        try:
            described = self.con.execute("DESCRIBE " + dialect.to_duckdb(probe)).fetchall()
        except (duckdb.Error, QueryError):
            return None
        return str(described[0][1]).upper() if described else None

    def _typed_rewrites(self, statement: exp.Expression) -> None:
        """Trino functions whose DuckDB spelling depends on the argument's type:
        ``approx_percentile`` of a decimal is a double in Trino (DuckDB would show the
        sketch's floating-point noise as decimal digits); ``cardinality`` of a map;
        ``reverse`` of an array."""
        for node in list(statement.find_all(exp.ApproxQuantile)):
            if (self._argument_type(node, node.this) or "").startswith("DECIMAL"):
                node.set("this", exp.cast(node.this.copy(), "double"))
        for size in list(statement.find_all(exp.ArraySize)):
            if (self._argument_type(size, size.this) or "").startswith("MAP"):
                size.meta["lake_map"] = True
        for reverse in list(statement.find_all(exp.Reverse)):
            if (self._argument_type(reverse, reverse.this) or "").endswith("]"):
                reverse.meta["lake_list"] = True

    def _check_tables(self, statement: exp.Expression) -> None:
        known = self.known_relations()
        for table in dialect.referenced_tables(statement):
            name = table.name.lower()
            if table.db and table.db.lower() not in (self.settings.glue_database.lower(),):
                raise QueryError(f"unknown database {table.db!r}{_at(table)}")
            if name == RAW_TABLE and not self._raw_loaded:
                self._load_raw()
                continue
            if name in self.view_errors:
                raise QueryError(f"view {name!r}{_at(table)} is unavailable: {self.view_errors[name]}")
            if name not in known:
                hint = ", ".join(sorted(known)) or "none"
                empty = ""
                if name in ("changes", *CURATED_VIEWS) and "changes" not in known:
                    empty = (f"; the curated zone is empty so far: nothing has reached Glue database "
                             f"{self.settings.glue_database!r} at {self.settings.endpoint_url or 'AWS'} yet")
                raise QueryError(f"unknown table {table.name!r}{_at(table)} (known: {hint}){empty}")
        # database-qualified names resolve to the registered (unqualified) relations
        for table in statement.find_all(exp.Table):
            if table.args.get("db") is not None:
                table.set("db", None)
                table.set("catalog", None)

    def close(self) -> None:
        self.con.close()


_SHOW = re.compile(
    r"(?:show\s+(?P<what>tables|views|databases|schemas)(?:\s+(?:in|from)\s+(?P<db>[\w\"`]+))?"
    r"(?:\s+(?:like\s+)?'(?P<like>[^']*)')?"
    r"|show\s+(?P<what2>columns)\s+(?:in|from)\s+(?P<table2>[\w\"`.]+)"
    r"|(?P<what3>describe|desc)\s+(?P<table3>[\w\"`.]+))",
    re.IGNORECASE,
)


class _ShowMatch:
    """One shape for the three alternatives of ``_SHOW``."""

    def __init__(self, m: re.Match[str]) -> None:
        self.m = m

    def group(self, name: str) -> str | None:
        m = self.m
        if name == "what":
            return m.group("what") or m.group("what2") or ("describe" if m.group("what3") else None)
        if name == "table":
            return m.group("table2") or m.group("table3")
        return m.group(name)


def _trino_column_names(table: pa.Table) -> pa.Table:
    """Unnamed result columns are ``_col<position>`` (Trino's names)."""
    names = table.column_names
    if not any(n.startswith(dialect.UNNAMED_PREFIX) for n in names):
        return table
    return table.rename_columns([f"_col{i}" if n.startswith(dialect.UNNAMED_PREFIX) else n
                                 for i, n in enumerate(names)])


def _with_path(dataset: ds.Dataset) -> pa.Table:
    """The rows of ``dataset`` with the ``s3://`` URL of each row's data file (Athena's "$path")."""
    parts = []
    for fragment in dataset.get_fragments():
        rows = fragment.to_table(schema=dataset.schema)
        path = getattr(fragment, "path", None)
        url = pa.array([f"s3://{path}" if path else None] * rows.num_rows, pa.string())
        parts.append(rows.append_column(dialect.PATH_COLUMN, url))
    if not parts:
        return dataset.schema.empty_table().append_column(dialect.PATH_COLUMN, pa.array([], pa.string()))
    return pa.concat_tables(parts)


def _glue_type_text(t: pa.DataType) -> str:
    try:
        return glue_type(t)
    except ValueError:
        return str(t)


def _at(node: exp.Expression) -> str:
    pos = dialect.position(node)
    return f" at {pos}" if pos else ""


def demo_tables(settings: Settings, clients: Clients | None = None, limit: int = 5) -> dict[str, pa.Table]:
    """For ``lake demo``: the latest audit-trail rows and the change volume, locally."""
    engine = LocalEngine(settings, clients)
    try:
        return {
            "audit_trail": engine.query(
                "SELECT table_name, key, event_time, event_name, attribute, old_value, new_value, actor "
                f"FROM audit_trail ORDER BY event_time DESC, sequence_number DESC LIMIT {int(limit)}"
            ),
            "change_volume": engine.query(
                "SELECT table_name, hour, event_name, changes FROM change_volume ORDER BY hour, table_name, event_name"
            ),
        }
    finally:
        engine.close()
