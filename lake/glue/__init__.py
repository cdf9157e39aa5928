"""Keeping the lake healthy and complete (issue 12, docs/adr/0004): ``compact``,
``current_state``, ``backfill`` and ``bootstrap``, each a job that runs as an AWS Glue job
(``glue_jobs/``), as ``lake glue <job>`` on the embedded AWS, or as ``lake glue <job>`` on AWS."""
