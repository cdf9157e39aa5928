"""Only what runs the lake on one machine: the embedded AWS (moto and its patches), the
local event-source-mapping runtime, ``lake up``, ``lake demo`` and the workload generator.

On AWS none of this exists: the product packages (``lake.archive``, ``lake.fanout``,
``lake.curate``, ``lake.query``, ``lake.replay``, ``lake.aws``) never import it
(``tests/unit/test_architecture.py`` enforces the rule).
"""
