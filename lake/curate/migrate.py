"""``lake migrate``: a curated zone written by the previous version → the Iceberg tables (ADR 0003).

Longer than 500 lines (docs/ARCHITECTURE.md, rule 7) for one reason: it is one procedure whose
safety depends on the order of its steps (back up, free the name, register, rewrite, mark
done) across Glue, S3 and Iceberg, and reading it in one place is the review that matters.
The pure parts (the old layout, type mapping, classification) come first, then the run.

The previous version wrote hive-partitioned Parquet, the partition columns *not* in the
files: ``<curated>/changes/table_name=<t>/dt=<d>/<f>.parquet`` and
``<curated>/<glue_name(t)>_history/dt=<d>/<f>.parquet``, registered as Hive tables in Glue
(history columns carry the attribute and DynamoDB type in their comment/parameters).

What this does, per old table (``changes`` first: it tells which source tables exist):

1. **Lists its files** (the storage door; not Glue's partitions, which a failed batch may
   have missed) and reads every Parquet footer (pyarrow's S3 filesystem: a ranged read).
2. **Registers each file as it is**, without reading or rewriting its rows, when its columns
   have the table's types: an Iceberg data file whose partition (``table_name``, ``dt``) is
   taken from its hive path, and statistics from its footer. pyiceberg's ``add_files`` cannot
   do this: it derives partition values from the file's own column statistics
   (``DataFileStatistics.partition``), which are absent here, so it would register every file
   in the null partition. The Iceberg spec reads an identity partition column a file lacks
   from the partition metadata ("metadata-only migrations of Hive tables"; pyiceberg, Spark
   and Trino/Athena do), and the table's ``schema.name-mapping.default`` maps the files'
   column names (they carry no field ids) to fields.
3. **Rewrites only the files it must** (a column whose type is not the table's, a partition
   column in the file that disagrees with its path, a history table two source tables
   shared): their rows go through the consumer's own rules (``evolve.place``: siblings,
   never a lossy cast; ``commit.fresh``: an ``event_id`` the table holds is not written
   twice) as a normal append; the old object is left where it is. Each such commit records
   the old object in its snapshot summary (``lake.migrate.source``).
4. **Says what it could not register** and why (not Parquet, outside the layout, a value no
   column can take, a history table whose source table is unknown); those files are untouched.

Catalog names. Glue cannot hold two tables of one name, and ``changes`` and
``orders_history`` keep their names. The old Hive table's definition is first **copied** to
``<name>_hive_backup`` (its partitions re-registered from the listing, so Athena can still
read it; parameters ``lake.migrated-from``/``lake.migrated-to``/``lake.migration``), checked,
and only then is the old entry deleted and the Iceberg table created in its place. The files
are never moved or deleted. ``lake.migration`` on the backup is ``in-progress`` until every
file is registered, then ``done``: an interrupted run resumes from it, and a table marked
``done`` is never touched again (so a second run changes nothing, even after compaction has
replaced the registered files). A history table of a source table whose new name differs
(``Orders`` → ``orders_0b9a54f1_history``) is backed up the same way and its old entry
deleted once the new table holds its files. Drop the ``*_hive_backup`` tables when satisfied.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake.aws.catalog import Append, GlueCatalog, IcebergTables, arrow_type, glue_type
from lake.aws.clients import Clients
from lake.aws.storage import s3_filesystem
from lake.curate import names
from lake.curate.columns import MIXED, ColumnType, widen_array
from lake.curate.commit import CHANGES_ICEBERG, DT, HISTORY_ICEBERG, TABLE_NAME, summary
from lake.curate.evolve import (
    ATTRIBUTE_PROPERTY,
    DYNAMODB_TYPE_PROPERTY,
    TableColumns,
    place,
    same_type,
)
from lake.curate.tables import CHANGES_SCHEMA, HISTORY_META, RESERVED
from lake.errors import LakeError, NotFoundError, TerminalError, TransientError
from lake.settings import Settings

if TYPE_CHECKING:
    from pyarrow import fs as pafs
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table, Transaction
    from pyiceberg.table.metadata import TableMetadata

log = logging.getLogger(__name__)

BACKUP_SUFFIX = "_hive_backup"
MIGRATED_FROM = "lake.migrated-from"  # backup parameters
MIGRATED_TO = "lake.migrated-to"
STATE = "lake.migration"  # in-progress | done
SOURCE_SUMMARY = "lake.migrate.source"  # snapshot summary of a rewrite: the old object
FROM_SUMMARY = "lake.migrate.from"  # snapshot summary: the old table
NAME_MAPPING = "schema.name-mapping.default"
CHUNK = 2000  # data files per registration commit
READERS = 8  # concurrent footer reads (latency-bound)
# the TableInput fields of a GetTable answer (the rest is Glue's bookkeeping)
_TABLE_INPUT = ("Name", "Description", "Owner", "LastAccessTime", "LastAnalyzedTime", "Retention",
                "StorageDescriptor", "PartitionKeys", "ViewOriginalText", "ViewExpandedText", "TableType",
                "Parameters", "TargetTable")
_COMMENT = re.compile(r"^attribute (?P<attribute>.*) \((?P<ddb>[A-Za-z]+)\)$")
_OLD_ATTRIBUTE, _OLD_DDB = "dynamodb.attribute", "dynamodb.type"  # the old columns' parameters
_DESCRIPTION = re.compile(r"typed change history of DynamoDB table (?P<source>[A-Za-z0-9_.\-]+)")
_UNSAFE = re.compile(r"[^a-z0-9_]")

Progress = Callable[[str, int, int], None]  # (what, done, total)


def _no_progress(what: str, done: int, total: int) -> None:
    return None


# -- what the previous version wrote ---------------------------------------------------

def old_history_name(source: str) -> str:
    """The previous version's history table name of a source table."""
    return f"{_UNSAFE.sub('_', source.lower()) or '_'}_history"


@dataclass(frozen=True)
class OldColumn:
    """A history column of an old Hive table: its type and the attribute it holds."""

    name: str
    glue: str
    attribute: str
    ddb: str  # S N B BOOL SS NS BS M L, mixed, or "" when the table did not say


def old_columns(definition: Mapping[str, Any]) -> dict[str, OldColumn]:
    """The attribute columns of an old ``<t>_history`` (its metadata columns left out), with
    their attribute and DynamoDB type from the column parameters or, else, the comment."""
    out: dict[str, OldColumn] = {}
    meta = set(HISTORY_META.names) | {DT}
    for col in (definition.get("StorageDescriptor") or {}).get("Columns") or ():
        name = str(col["Name"])
        if name in meta:
            continue
        params = col.get("Parameters") or {}
        m = _COMMENT.match(str(col.get("Comment") or ""))
        attribute = params.get(_OLD_ATTRIBUTE) or (m.group("attribute") if m else None) or _attribute_guess(name)
        ddb = params.get(_OLD_DDB) or (m.group("ddb") if m else "")
        out[name] = OldColumn(name, str(col["Type"]), attribute, ddb)
    return out


def _attribute_guess(column: str) -> str:
    """The attribute of a column nothing describes: its name (``attr_`` prefixed reserved names)."""
    rest = column.removeprefix("attr_")
    return rest if column.startswith("attr_") and rest in RESERVED else column


def ddb_of(t: pa.DataType) -> str:
    """The DynamoDB type a column of Arrow type ``t`` holds, as far as the type tells."""
    if pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_floating(t):
        return "N"
    if pa.types.is_boolean(t):
        return "BOOL"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "B"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = ddb_of(t.value_type)
        return {"N": "NS", "B": "BS"}.get(inner, "SS")
    return ""  # a string: S, M, L or mixed


@dataclass
class OldFile:
    """An object of an old table: where it is, its partition (from the path), its footer."""

    key: str
    url: str
    size: int
    partition: dict[str, str]
    metadata: pq.FileMetaData | None = None
    problem: str = ""  # why it is not a Parquet file we can read
    rewrite: str = ""  # why its rows must be rewritten (empty: registered as it is)

    @property
    def rows(self) -> int:
        return self.metadata.num_rows if self.metadata is not None else 0

    @property
    def schema(self) -> pa.Schema:
        assert self.metadata is not None
        return self.metadata.schema.to_arrow_schema()


def layout(relative: str, keys: Sequence[str]) -> dict[str, str] | str | None:
    """A key below an old table's location → its partition values; None for an object that
    is not data (a directory marker, Iceberg's own ``metadata/`` and ``data/``, a hidden
    ``_``/``.`` file as Hive skips it); a reason text for anything else."""
    parts = relative.split("/")
    if not relative or relative.endswith("/") or parts[0] in ("metadata", "data") or parts[-1][:1] in ("_", "."):
        return None
    if len(parts) != len(keys) + 1:
        return f"not in the layout {'/'.join(f'{k}=…' for k in keys)}/<file>"
    values: dict[str, str] = {}
    for key, part in zip(keys, parts, strict=False):
        name, sep, value = part.partition("=")
        if not sep or name != key or not value:
            return f"not in the layout {'/'.join(f'{k}=…' for k in keys)}/<file>"
        values[key] = unquote(value)
    return values


def compatible(file_type: pa.DataType, table_type: pa.DataType) -> bool:
    """Whether a file column of ``file_type`` reads as the table's column without a rewrite
    (the same type, or one of Iceberg's promotions int → long, float → double)."""
    if same_type(file_type, table_type):
        return True
    if pa.types.is_int32(file_type) and pa.types.is_int64(table_type):
        return True
    if pa.types.is_float32(file_type) and pa.types.is_float64(table_type):
        return True
    return (pa.types.is_timestamp(file_type) and pa.types.is_timestamp(table_type) and file_type.unit == "us"
            and table_type.unit == "us" and (file_type.tz is None) == (table_type.tz is None))


def _constant(metadata: pq.FileMetaData, column: str) -> str | None:
    """The one value a file's column holds in every row (from its statistics), else None."""
    index = metadata.schema.to_arrow_schema().get_field_index(column)
    values: set[Any] = set()
    for rg in range(metadata.num_row_groups):
        stats = metadata.row_group(rg).column(index).statistics
        if stats is None or not stats.has_min_max or stats.null_count:
            return None
        values.update((stats.min, stats.max))
    return str(values.pop()) if len(values) == 1 else None


def classify(file: OldFile, types: Mapping[str, pa.DataType], conflicts: Mapping[str, str] = {}) -> str:
    """Why ``file`` cannot be registered as it is into a table of column ``types`` (empty: it
    can). ``conflicts``: columns the table holds for another attribute or type → the reason."""
    assert file.metadata is not None
    for f in file.schema:
        if f.name in file.partition:
            if _constant(file.metadata, f.name) != file.partition[f.name]:
                return f"its column {f.name} differs from its path ({f.name}={file.partition[f.name]})"
        elif f.name in conflicts:
            return conflicts[f.name]
        elif f.name not in types:
            return f"its column {f.name} is not in the table"
        elif not compatible(f.type, types[f.name]):
            return f"its column {f.name} is {glue_name_of(f.type)}, the table's is {glue_name_of(types[f.name])}"
    return ""


def glue_name_of(t: pa.DataType) -> str:
    try:
        return glue_type(t)
    except ValueError:
        return str(t)


# -- the plan ----------------------------------------------------------------------------

@dataclass
class Unregistered:
    key: str
    reason: str


@dataclass
class TableReport:
    """What happened (or, on a dry run, would happen) to one old table."""

    old: str
    kind: str  # changes | history
    targets: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    backup: str = ""
    status: str = ""  # migrated | already migrated | not migrated | incomplete | planned
    files: int = 0  # data objects found
    registered: int = 0  # files registered as they are (by this run)
    registered_rows: int = 0
    already: int = 0  # files an earlier run registered or rewrote
    rewritten: int = 0  # files whose rows were written anew
    rewritten_rows: int = 0
    duplicates_dropped: int = 0  # rows of rewritten files the table already held
    added_columns: list[str] = field(default_factory=list)
    rewrites: list[Unregistered] = field(default_factory=list)  # key → why it was rewritten
    unregistered: list[Unregistered] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["rewrites"] = [u.__dict__ for u in self.rewrites]
        out["unregistered"] = [u.__dict__ for u in self.unregistered]
        return out


@dataclass
class MigrationReport:
    dry_run: bool
    tables: list[TableReport] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every file of every table was registered or rewritten."""
        return all(not t.unregistered and t.status not in ("not migrated", "incomplete") for t in self.tables)

    @property
    def changed(self) -> bool:
        return not self.dry_run and any(t.registered or t.rewritten or t.status == "migrated" for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "ok": self.ok, "elapsed_s": round(self.elapsed_s, 3),
                "tables": [t.to_dict() for t in self.tables]}


@dataclass
class OldTable:
    """An old Hive table to migrate, or its backup (an earlier run)."""

    name: str
    kind: str
    definition: dict[str, Any]  # GetTable's Table (of the backup once there is one)
    hive: bool  # the old entry still exists under its name
    backup: dict[str, Any] | None = None
    sources: list[str] = field(default_factory=list)
    files: list[OldFile] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [str(k["Name"]) for k in self.definition.get("PartitionKeys") or ()]

    @property
    def location(self) -> str:
        return str((self.definition.get("StorageDescriptor") or {}).get("Location") or "")

    @property
    def backup_name(self) -> str:
        return self.name + BACKUP_SUFFIX

    @property
    def done(self) -> bool:
        return self.backup is not None and (self.backup.get("Parameters") or {}).get(STATE) == "done"

    def target(self, source: str) -> str:
        return names.CHANGES if self.kind == "changes" else names.history_table(source)


def _kind(name: str, keys: Sequence[str]) -> str | None:
    if name == names.CHANGES and list(keys) == [TABLE_NAME, DT]:
        return "changes"
    if name.endswith("_history") and list(keys) == [DT]:
        return "history"
    return None


def _split_url(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[-1]
    bucket, _, prefix = rest.partition("/")
    return bucket, (prefix.rstrip("/") + "/" if prefix else "")


class Migration:
    """One ``lake migrate`` run over a Glue database and its bucket."""

    def __init__(self, settings: Settings, clients: Clients | None = None, *, dry_run: bool = False,
                 progress: Progress | None = None, filesystem: pafs.FileSystem | None = None) -> None:
        self.settings = settings
        self.clients = clients or Clients(settings)
        self.catalog: GlueCatalog = self.clients.catalog(settings.glue_database)
        self.tables = IcebergTables(settings, self.clients)
        self.dry_run = dry_run
        self.progress = progress or _no_progress
        self._fs = filesystem

    @property
    def fs(self) -> pafs.FileSystem:
        if self._fs is None:
            self._fs = s3_filesystem(self.settings)
        return self._fs

    # -- discovery -----------------------------------------------------------------
    def discover(self) -> list[OldTable]:
        """The old Hive tables (``changes`` first) and the backups of earlier runs."""
        try:
            found = self.catalog.list_tables()
        except NotFoundError:
            return []
        backups = {dict(t.parameters).get(MIGRATED_FROM, ""): t for t in found
                   if t.name.endswith(BACKUP_SUFFIX) and MIGRATED_FROM in dict(t.parameters)}
        out: list[OldTable] = []
        for t in found:
            if t.is_view or t.format != "parquet" or t.name.endswith(BACKUP_SUFFIX):
                continue
            kind = _kind(t.name, [k for k, _ in t.partition_keys])
            definition = self.catalog.get_table(t.name) if kind else None
            if kind and definition is not None:
                backup = self.catalog.get_table(backups[t.name].name) if t.name in backups else None
                out.append(OldTable(t.name, kind, definition, hive=True, backup=backup))
        seen = {o.name for o in out}
        for old_name, b in sorted(backups.items()):
            if old_name in seen:
                continue
            kind = _kind(old_name, [k for k, _ in b.partition_keys])
            definition = self.catalog.get_table(b.name)
            if kind and definition is not None:
                out.append(OldTable(old_name, kind, definition, hive=False, backup=definition))
        out.sort(key=lambda o: (o.kind != "changes", o.name))
        return out

    def list_files(self, old: OldTable, report: TableReport) -> None:
        bucket, prefix = _split_url(old.location)
        store = self.clients.store(bucket)
        for info in store.list_info(prefix):
            where = layout(info.key[len(prefix):], old.keys)
            if where is None:
                continue
            if isinstance(where, str):
                report.unregistered.append(Unregistered(info.key, where))
                continue
            old.files.append(OldFile(info.key, f"s3://{bucket}/{info.key}", info.size, where))
        report.files = len(old.files) + len(report.unregistered)

    def sources_in(self, changes: OldTable | None) -> set[str]:
        """The source tables the old ``changes`` has partitions of (a listing one level down)."""
        if changes is None:
            return set()
        bucket, prefix = _split_url(changes.location)
        out = set()
        for p in self.clients.store(bucket).list(prefix, delimiter="/"):
            name, sep, value = p[len(prefix):].rstrip("/").partition("=")
            if sep and name == TABLE_NAME and value:
                out.add(unquote(value))
        return out

    def resolve_sources(self, old: OldTable, known: set[str], report: TableReport) -> None:
        """The source table(s) of an old history table: those ``changes`` names whose old
        history name it is; else the source its description names."""
        recorded = (old.backup or {}).get("Parameters", {}).get(MIGRATED_TO)
        candidates = sorted(s for s in known if old_history_name(s) == old.name)
        if not candidates:
            m = _DESCRIPTION.search(str(old.definition.get("Description") or ""))
            if m and old_history_name(m.group("source")) == old.name:
                candidates = [m.group("source")]
                report.notes.append(f"source table {m.group('source')!r} from the table's description "
                                    "(no row of changes names it)")
        old.sources = candidates
        report.sources = list(candidates)
        report.targets = [old.target(s) for s in candidates]
        if recorded and not candidates:
            report.targets = recorded.split(",")

    # -- footers -------------------------------------------------------------------
    def read_footers(self, old: OldTable, report: TableReport) -> None:
        total = len(old.files)
        fs = self.fs  # built once, here, not by the first workers at once

        def read(f: OldFile) -> OldFile:
            try:
                with fs.open_input_file(f.url.split("://", 1)[1]) as stream:
                    f.metadata = pq.read_metadata(stream)
            except FileNotFoundError:
                f.problem = "gone since it was listed"
            except pa.ArrowInvalid as e:  # not Parquet (no magic bytes, a broken footer)
                f.problem = f"not a Parquet file: {e}"
            except OSError as e:  # S3: connection, throttling, 5xx
                raise TransientError(f"{f.url}: {e}") from e
            return f

        with ThreadPoolExecutor(READERS, thread_name_prefix="lake-migrate") as pool:
            for n, _ in enumerate(pool.map(read, old.files), 1):
                if n % 50 == 0 or n == total:
                    self.progress(f"{old.name}: reading footers", n, total)
        for f in [f for f in old.files if f.problem or f.rows == 0]:
            old.files.remove(f)
            if f.problem:
                report.unregistered.append(Unregistered(f.key, f.problem))
            else:
                report.notes.append(f"{f.key}: no rows, skipped")

    # -- the target's columns --------------------------------------------------------
    def target_columns(self, old: OldTable, table: Table | None, report: TableReport
                       ) -> tuple[dict[str, pa.DataType], dict[str, pa.DataType], dict[str, str], dict[str, str]]:
        """(every column's type as the target will have it, the columns to add, their
        properties, columns the target holds for another attribute or type → reason)."""
        base = CHANGES_ICEBERG if old.kind == "changes" else HISTORY_ICEBERG
        existing = ({f.name: f.type for f in table.schema().as_arrow()} if table is not None
                    else {f.name: f.type for f in base})
        held = TableColumns.of(table.schema().as_arrow(), table.properties) if table is not None else TableColumns()
        add: dict[str, pa.DataType] = {}
        props: dict[str, str] = {}
        conflicts: dict[str, str] = {}
        if old.kind == "history":
            wanted = dict(old_columns(old.definition))
            for f in sorted(old.files, key=lambda f: f.key):  # columns the Glue table lost (old concurrent writers)
                for col in f.schema:
                    if col.name not in wanted and col.name not in existing and col.name not in f.partition:
                        wanted[col.name] = OldColumn(col.name, glue_name_of(col.type), _attribute_guess(col.name),
                                                     ddb_of(col.type))
                        report.notes.append(f"column {col.name} is in {f.key} but not in the Glue table: "
                                            f"added, as attribute {wanted[col.name].attribute!r}")
            for col in wanted.values():
                try:
                    t = arrow_type(col.glue)
                except ValueError as e:
                    conflicts[col.name] = f"its column {col.name}: {e}"
                    continue
                if col.name in existing:
                    holder = held.attributes.get(col.name)
                    if holder not in (None, col.attribute):
                        conflicts[col.name] = f"the table's column {col.name} holds attribute {holder!r}"
                    elif not compatible(t, existing[col.name]):
                        conflicts[col.name] = (f"its column {col.name} is {col.glue}, the table's is "
                                               f"{glue_name_of(existing[col.name])}")
                    continue
                if held.columns_of(col.attribute):
                    conflicts[col.name] = (f"the table holds attribute {col.attribute!r} in "
                                           f"{held.columns_of(col.attribute)[0]}")
                    continue
                add[col.name] = t
                props[ATTRIBUTE_PROPERTY + col.name] = col.attribute
                if col.ddb:
                    props[DYNAMODB_TYPE_PROPERTY + col.name] = col.ddb
        return {**existing, **add}, add, props, conflicts

    # -- the run -------------------------------------------------------------------
    def run(self) -> MigrationReport:
        started = time.monotonic()
        report = MigrationReport(self.dry_run)
        olds = self.discover()
        changes = next((o for o in olds if o.kind == "changes"), None)
        known = self.sources_in(changes)
        for old in olds:
            table_report = TableReport(old.name, old.kind, backup=old.backup_name)
            report.tables.append(table_report)
            if old.kind == "changes":
                table_report.targets = [names.CHANGES]
            else:
                self.resolve_sources(old, known, table_report)
            if old.done:
                table_report.status = "already migrated"
                continue
            try:
                self.migrate_table(old, table_report)
            except TransientError as e:
                table_report.status = "incomplete"
                table_report.notes.append(f"stopped: {e}; run lake migrate again to resume")
            except TerminalError as e:  # e.g. a <name>_hive_backup that is not ours: this table waits
                table_report.status = "not migrated"
                table_report.notes.append(str(e))
        report.elapsed_s = time.monotonic() - started
        return report

    def migrate_table(self, old: OldTable, report: TableReport) -> None:
        if old.kind == "history" and not old.sources:
            report.status = "not migrated"
            report.unregistered.append(Unregistered(old.location, "no source table is known for this history "
                                                    "table (no changes rows, no description name one)"))
            return
        self.list_files(old, report)
        self.read_footers(old, report)
        shared = len(old.sources) > 1
        single = old.sources[0] if old.kind == "history" and not shared else None
        target = report.targets[0]
        existing = None if shared else self.tables.find(target) if not (old.hive and target == old.name) else None
        types, add, props, conflicts = self.target_columns(old, existing, report)
        for f in old.files:
            f.rewrite = (f"the history table holds rows of {', '.join(old.sources)}: they are told apart by "
                         "event_id in changes" if shared else classify(f, types, conflicts))
        register = [f for f in old.files if not f.rewrite]
        rewrite = [f for f in old.files if f.rewrite]
        if old.kind == "changes":  # a changes file the fixed schema cannot take is refused, not guessed at
            for f in [f for f in rewrite if "is not in the table" in f.rewrite]:
                rewrite.remove(f)
                old.files.remove(f)
                report.unregistered.append(Unregistered(f.key, f.rewrite))
        report.rewrites = [Unregistered(f.key, f.rewrite) for f in rewrite]
        report.added_columns = sorted(add)
        if self.dry_run:
            report.status = "planned"
            report.registered, report.registered_rows = len(register), sum(f.rows for f in register)
            report.rewritten, report.rewritten_rows = len(rewrite), sum(f.rows for f in rewrite)
            return
        self.ensure_backup(old)
        if old.hive and old.name in report.targets:
            self.retire(old)  # the name is needed now; the definition is in the backup
        for name in report.targets:
            source = old.sources[report.targets.index(name)] if old.kind == "history" else None
            self.tables.ensure(name, CHANGES_ICEBERG if old.kind == "changes" else HISTORY_ICEBERG,
                               [TABLE_NAME, DT] if old.kind == "changes" else [DT], source=source,
                               kind=old.kind)
            if shared:  # the columns and their attributes, no file: every row is placed by rewrite
                _, add_n, props_n, _ = self.target_columns(old, self.tables.load(name), report)
                self.register(name, old, [], add_n, props_n, report)
        if not shared:
            self.register(target, old, register, add, props, report)
        self.rewrite(old, rewrite, single, report)
        if old.hive and old.name not in report.targets:
            self.retire(old)
        failed = {u.key for u in report.unregistered}
        self.mark(old, "done")
        report.status = "migrated" if not failed else "migrated, with files not registered"

    # -- Glue: the old entry -----------------------------------------------------------
    def ensure_backup(self, old: OldTable) -> None:
        """``<name>_hive_backup``: the old table's definition (and partitions), made before the
        old entry goes; refused when a table of that name is not ours."""
        found = self.catalog.get_table(old.backup_name)
        if found is not None:
            if (found.get("Parameters") or {}).get(MIGRATED_FROM) != old.name:
                raise TerminalError(f"Glue table {old.backup_name} exists and is not lake migrate's backup of "
                                    f"{old.name}: rename or drop it, then run lake migrate again")
            old.backup = found
            return
        table_input = {k: v for k, v in old.definition.items() if k in _TABLE_INPUT}
        table_input["Name"] = old.backup_name
        table_input["Description"] = (f"{old.definition.get('Description') or old.name} — the Hive table "
                                      f"{old.name} before lake migrate made it Iceberg")[:2048]
        table_input["Parameters"] = {**(old.definition.get("Parameters") or {}), MIGRATED_FROM: old.name,
                                     MIGRATED_TO: ",".join(names_of(old)), STATE: "in-progress"}
        self.catalog.put_table(table_input, exists=False)
        storage = old.definition.get("StorageDescriptor") or {}
        location = old.location.rstrip("/") + "/"
        partitions = sorted({tuple(f.partition[k] for k in old.keys) for f in old.files})
        self.catalog.add_partitions(old.backup_name, [{
            "Values": list(values),
            "StorageDescriptor": {**storage, "Location": location + "/".join(
                f"{k}={v}" for k, v in zip(old.keys, values, strict=True)) + "/"},
        } for values in partitions])
        old.backup = self.catalog.get_table(old.backup_name)

    def retire(self, old: OldTable) -> None:
        """Delete the old Hive entry, once its backup holds the same definition."""
        backup = self.catalog.get_table(old.backup_name)
        columns = (old.definition.get("StorageDescriptor") or {}).get("Columns")
        if backup is None or (backup.get("StorageDescriptor") or {}).get("Columns") != columns:
            raise TerminalError(f"the backup {old.backup_name} does not hold {old.name}'s definition: "
                                "the old table is left as it is")
        current = self.catalog.get_table(old.name)
        if current is not None and str((current.get("Parameters") or {}).get("table_type", "")).upper() != "ICEBERG":
            self.catalog.delete_table(old.name)
        old.hive = False

    def mark(self, old: OldTable, state: str) -> None:
        backup = self.catalog.get_table(old.backup_name)
        if backup is None:
            return
        table_input = {k: v for k, v in backup.items() if k in _TABLE_INPUT}
        table_input["Parameters"] = {**(backup.get("Parameters") or {}), STATE: state}
        self.catalog.put_table(table_input, exists=True)

    # -- Iceberg: files registered as they are --------------------------------------------
    def register(self, name: str, old: OldTable, files: Sequence[OldFile], add: Mapping[str, pa.DataType],
                 props: Mapping[str, str], report: TableReport) -> None:
        """Add ``files`` to the table as data files (``CHUNK`` per commit), with the columns
        and properties they need; files an earlier run registered are skipped."""
        table = self.tables.load(name)
        held = _data_files(table)
        todo = [f for f in files if f.url not in held]
        report.already += len(files) - len(todo)
        chunks = [todo[i:i + CHUNK] for i in range(0, len(todo), CHUNK)] or [[]]
        for n, chunk in enumerate(chunks, 1):
            refused: list[OldFile] = []

            def stage(table: Table, tx: Transaction, chunk: Sequence[OldFile] = chunk,
                      refused: list[OldFile] = refused) -> bool:
                refused.clear()
                have = {f.name for f in table.schema().fields}
                new = {c: t for c, t in add.items() if c not in have}
                if new:
                    with tx.update_schema() as update:
                        update.union_by_name(pa.schema([pa.field(c, t) for c, t in new.items()]))
                meta = tx.table_metadata
                wanted = {k: v for k, v in props.items() if table.properties.get(k) != v}
                if NAME_MAPPING not in table.properties:
                    wanted[NAME_MAPPING] = meta.schema().name_mapping.model_dump_json()
                if wanted:
                    tx.set_properties(wanted)
                    meta = tx.table_metadata
                fresh_files = [f for f in chunk if f.url not in _data_files(table)]
                data_files = []
                for f in fresh_files:
                    try:
                        data_files.append(data_file(meta, f))
                    except (ValueError, KeyError) as e:  # pyiceberg's own schema check disagrees
                        f.rewrite = f"pyiceberg refuses it as it is: {e}"
                        refused.append(f)
                if data_files:
                    summary = {FROM_SUMMARY: old.name, "lake.migrate.files": str(len(data_files)),
                               "lake.rows": str(sum(d.record_count for d in data_files))}
                    with tx.update_snapshot(snapshot_properties=summary).fast_append() as append:
                        for d in data_files:
                            append.append_data_file(d)
                return bool(new or wanted or data_files)

            self.tables.transact(name, stage)
            done = [f for f in chunk if f not in refused]
            report.registered += len(done)
            report.registered_rows += sum(f.rows for f in done)
            for f in refused:  # rewritten instead
                report.rewrites.append(Unregistered(f.key, f.rewrite))
                self.rewrite(old, [f], old.sources[0] if old.kind == "history" else None, report)
            self.progress(f"{name}: registering files", n, len(chunks))

    # -- Iceberg: files rewritten through the consumer's rules ------------------------------
    def rewrite(self, old: OldTable, files: Sequence[OldFile], single: str | None, report: TableReport) -> None:
        columns = old_columns(old.definition) if old.kind == "history" else {}
        done_by_target: dict[str, set[str]] = {}
        for n, f in enumerate(files, 1):
            self.progress(f"{old.name}: rewriting files", n, len(files))
            try:
                data = pq.read_table(pa.BufferReader(self.clients.store(_split_url(f.url)[0]).get(f.key)))
                if old.kind == "changes":
                    parts = [(names.CHANGES, _changes_rows(data, f), f.partition[TABLE_NAME])]
                else:
                    parts = self._history_parts(old, data, f, single, report)
            except (RefusedError, pa.ArrowException) as e:
                report.unregistered.append(Unregistered(f.key, f"{f.rewrite}; and it cannot be rewritten: {e}"))
                continue
            committed = False
            for target, rows, source in parts:
                if target not in done_by_target:
                    done_by_target[target] = _rewritten_sources(self.tables.load(target))
                if f.url in done_by_target[target]:
                    continue
                if old.kind == "changes":
                    dropped = self._append_changes(target, rows, source, f, old)
                else:
                    dropped = self._append_history(target, rows, columns, f, old, report)
                report.duplicates_dropped += dropped
                report.rewritten_rows += rows.num_rows - dropped
                committed = True
            if committed:
                report.rewritten += 1
            else:
                report.already += 1

    def _history_parts(self, old: OldTable, data: pa.Table, f: OldFile, single: str | None,
                       report: TableReport) -> list[tuple[str, pa.Table, str]]:
        rows = _history_rows(data, f)
        if single is not None:
            return [(names.history_table(single), rows, single)]
        # a table two source tables shared: each row belongs to the source whose changes hold its event_id
        from pyiceberg import expressions as ex

        # pyiceberg's predicates are pydantic models whose positional constructors mypy cannot see
        And, EqualTo, In = cast(Any, ex.And), cast(Any, ex.EqualTo), cast(Any, ex.In)
        ids = set(rows.column("event_id").to_pylist()) - {None}
        owners = self.tables.scan(names.CHANGES, And(In(TABLE_NAME, set(old.sources)),
                                                     And(EqualTo(DT, f.partition[DT]), In("event_id", ids))),
                                  columns=("event_id", TABLE_NAME, DT))  # DT: see _absent
        owner = dict(zip(owners.column("event_id").to_pylist(), owners.column(TABLE_NAME).to_pylist(), strict=True))
        of = pa.array([owner.get(i) for i in rows.column("event_id").to_pylist()], pa.string())
        unknown = of.null_count
        if unknown:
            report.unregistered.append(Unregistered(f.key, f"{unknown} of its {rows.num_rows} rows have an "
                                                    "event_id no changes row of its source tables holds"))
        return [(names.history_table(s), rows.filter(pc.equal(of, s)), s) for s in old.sources
                if pc.any(pc.equal(of, s)).as_py()]

    def _append_changes(self, target: str, rows: pa.Table, source: str, f: OldFile, old: OldTable) -> int:
        dropped = 0

        def plan(table: Table) -> Append:
            nonlocal dropped
            kept = rows.filter(_absent(table, rows, source))
            dropped = rows.num_rows - kept.num_rows
            return Append(kept, summary={**summary(kept, dropped), SOURCE_SUMMARY: f.url, FROM_SUMMARY: old.name})

        self.tables.commit(target, plan)
        return dropped

    def _append_history(self, target: str, rows: pa.Table, columns: Mapping[str, OldColumn], f: OldFile,
                        old: OldTable, report: TableReport) -> int:
        dropped = 0
        meta = rows.select([*HISTORY_META.names, DT])
        attributes: dict[str, pa.Array] = {}
        kinds: dict[str, str] = {}
        for name in rows.column_names:
            if name in meta.column_names:
                continue
            col = columns.get(name) or OldColumn(name, "", _attribute_guess(name), "")
            array = rows.column(name).combine_chunks()
            attributes[col.attribute] = array
            kinds[col.attribute] = col.ddb if col.glue and same_type(arrow_type(col.glue), array.type) and col.ddb \
                else ddb_of(array.type) or MIXED

        def plan(table: Table) -> Append:
            nonlocal dropped
            held = TableColumns.of(table.schema().as_arrow(), table.properties)
            batch = {a: _as_text(arr, kinds[a]) if _mixed(held, table.properties, a) else arr
                     for a, arr in attributes.items()}
            placed = place(batch, held, RESERVED, kinds)
            out = meta
            for column, array in placed.columns.items():
                out = out.append_column(column, array)
            kept = out.filter(_absent(table, out, None))
            dropped = out.num_rows - kept.num_rows
            return Append(kept, add_columns=placed.add_columns, properties=placed.properties,
                          summary={**summary(kept, dropped), SOURCE_SUMMARY: f.url, FROM_SUMMARY: old.name})

        done = self.tables.commit(target, plan)
        report.added_columns.extend(c for c in done.added_columns if c not in report.added_columns)
        return dropped


class RefusedError(LakeError):
    """A file whose rows cannot be rewritten into the table."""


def names_of(old: OldTable) -> list[str]:
    return [old.target(s) for s in old.sources] if old.kind == "history" else [names.CHANGES]


def _absent(table: Table, rows: pa.Table, source: str | None) -> pa.Array:
    """A mask of the rows whose ``event_id`` the table does not hold yet (``commit.fresh``'s
    rule), reading only the days (and source table) of ``rows``.

    The partition columns filtered on are also *selected*: pyiceberg 0.12 takes an identity
    partition column that a data file lacks (every registered old file) from the partition
    metadata only when the column is projected, so a filter on ``dt`` alone matches none of
    those files' rows (``_get_column_projection_values`` looks at the projection only)."""
    from pyiceberg import expressions as ex

    And, EqualTo, In = cast(Any, ex.And), cast(Any, ex.EqualTo), cast(Any, ex.In)
    ids = rows.column("event_id")
    if table.current_snapshot() is None or rows.num_rows == 0:
        return pa.array([True] * rows.num_rows)
    expr = And(In(DT, set(pc.unique(rows.column(DT)).to_pylist())), In("event_id", set(ids.to_pylist()) - {None}))
    columns: tuple[str, ...] = ("event_id", DT)
    if source is not None:
        expr, columns = And(EqualTo(TABLE_NAME, source), expr), (*columns, TABLE_NAME)
    held = table.scan(row_filter=expr, selected_fields=columns).to_arrow().column("event_id")
    return pc.invert(pc.is_in(ids, value_set=held.combine_chunks()))


def _data_files(table: Table) -> set[str]:
    if table.current_snapshot() is None:
        return set()
    return {task.file.file_path for task in table.scan().plan_files()}


def _rewritten_sources(table: Table) -> set[str]:
    return {s.summary.additional_properties[SOURCE_SUMMARY] for s in table.snapshots()
            if s.summary and SOURCE_SUMMARY in s.summary.additional_properties}


def data_file(meta: TableMetadata, f: OldFile) -> DataFile:
    """An Iceberg data file for an existing Parquet object: statistics from its footer, the
    partition from its path (what ``Table.add_files`` would do, but for files that do not
    hold their partition columns)."""
    from pyiceberg.io.pyarrow import (
        _check_pyarrow_schema_compatible,
        compute_statistics_plan,
        data_file_statistics_from_parquet_metadata,
        parquet_path_to_id_mapping,
    )
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
    from pyiceberg.typedef import Record

    assert f.metadata is not None
    schema, spec = meta.schema(), meta.spec()
    _check_pyarrow_schema_compatible(schema, f.schema, format_version=meta.format_version)
    stats = data_file_statistics_from_parquet_metadata(
        parquet_metadata=f.metadata, stats_columns=compute_statistics_plan(schema, meta.properties),
        parquet_column_mapping=parquet_path_to_id_mapping(schema))
    partition = Record(*[f.partition[schema.find_column_name(p.source_id) or ""] for p in spec.fields])
    return DataFile.from_args(
        content=DataFileContent.DATA, file_path=f.url, file_format=FileFormat.PARQUET, partition=partition,
        file_size_in_bytes=f.size, sort_order_id=None, spec_id=meta.default_spec_id, equality_ids=None,
        key_metadata=None, **stats.to_serialized_dict())


def _cast(data: pa.Table, schema: pa.Schema, f: OldFile) -> list[pa.Array]:
    out = []
    for field_ in schema:
        if field_.name not in data.column_names:
            out.append(pa.nulls(data.num_rows, field_.type))
            continue
        try:
            out.append(data.column(field_.name).combine_chunks().cast(field_.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise RefusedError(f"its column {field_.name} does not cast to {glue_name_of(field_.type)}: {e}") from None
    return out


def _changes_rows(data: pa.Table, f: OldFile) -> pa.Table:
    if "event_id" not in data.column_names:
        raise RefusedError("it has no event_id column")
    extra = sorted(set(data.column_names) - set(CHANGES_SCHEMA.names) - {TABLE_NAME, DT})
    if extra:
        raise RefusedError(f"its columns {', '.join(extra)} are not in changes")
    arrays = _cast(data, CHANGES_SCHEMA, f)
    n = data.num_rows
    arrays += [pa.array([f.partition[TABLE_NAME]] * n, pa.string()), pa.array([f.partition[DT]] * n, pa.string())]
    return pa.Table.from_arrays(arrays, schema=CHANGES_ICEBERG)


def _history_rows(data: pa.Table, f: OldFile) -> pa.Table:
    """The file's rows with the metadata columns in their types and ``dt`` from the path."""
    if "event_id" not in data.column_names:
        raise RefusedError("it has no event_id column")
    meta = pa.Table.from_arrays(_cast(data, HISTORY_META, f), schema=HISTORY_META)
    meta = meta.append_column(DT, pa.array([f.partition[DT]] * data.num_rows, pa.string()))
    for name in data.column_names:
        if name not in meta.column_names:
            meta = meta.append_column(name, data.column(name))
    return meta


def _mixed(held: TableColumns, properties: Mapping[str, str], attribute: str) -> bool:
    """Whether the attribute's main column is the old version's text column of mixed values."""
    cols = held.columns_of(attribute)
    return bool(cols) and properties.get(DYNAMODB_TYPE_PROPERTY + cols[0]) == MIXED


def _as_text(array: pa.Array, ddb: str) -> pa.Array:
    """Values of a column the old version widened to text, as it wrote them."""
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return array
    return widen_array(array, ColumnType(glue_name_of(array.type), ddb or MIXED))


def migrate(settings: Settings, clients: Clients | None = None, *, dry_run: bool = False,
            progress: Progress | None = None) -> MigrationReport:
    """Migrate the lake of ``settings`` (see the module docstring); ``dry_run`` reads only."""
    return Migration(settings, clients, dry_run=dry_run, progress=progress).run()


__all__ = ["BACKUP_SUFFIX", "Migration", "MigrationReport", "TableReport", "Unregistered", "classify", "compatible",
           "data_file", "layout", "migrate", "old_columns", "old_history_name"]
