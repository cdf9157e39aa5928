"""Curate stage: Kinesis batches → Parquet in ``curated/`` registered in the Glue Data Catalog.

``changes`` (fixed schema, docs/CONTRACTS.md) and one typed ``<table>_history`` per source
table (type rules in ``lake.curate.columns``). Decoding and Arrow building are pure
(``decode``, ``columns``, ``tables``); ``catalog`` is the Glue door; ``consumer`` composes them.
"""

from lake.curate.consumer import CurateResult, curate
from lake.curate.summary import CuratedSummary, curated_summary

__all__ = ["CurateResult", "CuratedSummary", "curate", "curated_summary"]
