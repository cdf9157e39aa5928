"""A table's data files, read once per engine: what makes the consumer's many small files cheap.

The consumer writes one small Parquet file per batch (160 to 500 changes). Read through
pyarrow's S3 filesystem, every scan of such a file costs two or more requests (its footer,
then its columns), and every query scans again. :class:`CachedDataset` is the pyarrow
dataset the engine registers with DuckDB instead: when DuckDB asks for a scan, with the
filter it pushes down, the dataset

1. prunes its fragments with that filter (a ``dt`` predicate still opens one partition),
2. fetches the files it has not fetched yet, whole, in parallel (one request each), and
3. scans them from memory.

A data file is never rewritten in place (new data, compaction and Iceberg commits write new
files), so a file's bytes, keyed by its path, stay valid for the engine's life. The cache
has a byte budget; past it the oldest files are dropped and fetched again when needed.
Pure: pyarrow only, no AWS SDK.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
from pyarrow import fs as pafs

#: Bytes of data files kept in memory per engine (compressed Parquet).
DEFAULT_BUDGET = 1 << 30
#: Concurrent fetches: the requests are small, their latency is the cost.
FETCH_THREADS = 8


class FileCache:
    """Whole data files by path, least recently used dropped past ``budget`` bytes."""

    def __init__(self, filesystem: pafs.FileSystem, budget: int = DEFAULT_BUDGET, threads: int = FETCH_THREADS):
        self.filesystem = filesystem
        self.budget = budget
        self.threads = threads
        self._files: OrderedDict[str, pa.Buffer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.fetched = 0  # files fetched since the engine started (for the benchmarks)

    def get(self, paths: Iterable[str]) -> dict[str, pa.Buffer]:
        """The bytes of every file of ``paths``, fetching the missing ones in parallel."""
        wanted = list(dict.fromkeys(paths))
        with self._lock:
            found = {p: self._files[p] for p in wanted if p in self._files}
            for p in found:
                self._files.move_to_end(p)
        missing = [p for p in wanted if p not in found]
        if missing:
            with ThreadPoolExecutor(min(self.threads, len(missing))) as pool:
                fetched = dict(zip(missing, pool.map(self._fetch, missing), strict=True))
            with self._lock:
                for path, buffer in fetched.items():
                    if path not in self._files:
                        self._files[path] = buffer
                        self._bytes += buffer.size
                self.fetched += len(fetched)
                keep = set(wanted)
                for path in list(self._files):  # oldest first, never a file this scan needs
                    if self._bytes <= self.budget:
                        break
                    if path not in keep:
                        self._bytes -= self._files.pop(path).size
            found.update(fetched)
        return found

    def _fetch(self, path: str) -> pa.Buffer:
        # a random-access file learns its size first, then reads it whole in one request
        # (a stream would read it in several)
        with self.filesystem.open_input_file(path) as f:
            return f.read_buffer()

    @property
    def size(self) -> int:
        return self._bytes


class CachedDataset(ds.FileSystemDataset):
    """A Parquet ``FileSystemDataset`` whose scans read the files through a :class:`FileCache`.

    DuckDB calls :meth:`scanner` with the columns and the filter it pushes down; the
    fragments the filter leaves are fetched (once) and scanned from memory."""

    cache: FileCache

    @classmethod
    def wrap(cls, dataset: ds.FileSystemDataset, cache: FileCache) -> CachedDataset:
        wrapped = cls(list(dataset.get_fragments()), dataset.schema, dataset.format, filesystem=dataset.filesystem)
        wrapped.cache = cache
        return wrapped

    def scanner(self, *args: Any, **kwargs: Any) -> ds.Scanner:
        fragments = list(self.get_fragments(filter=kwargs.get("filter")))
        files = self.cache.get(f.path for f in fragments)
        in_memory = [self.format.make_fragment(pa.BufferReader(files[f.path]),
                                               partition_expression=f.partition_expression)
                     for f in fragments]
        return ds.FileSystemDataset(in_memory, self.schema, self.format).scanner(*args, **kwargs)
