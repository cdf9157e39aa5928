"""AWS Glue job: the lake's ``compact`` (lake/glue, docs/adr/0004). Thin: arguments, run, report.

As a Glue job its arguments come through ``awsglue.utils.getResolvedOptions``; elsewhere
``python -m glue_jobs.compact --help``. The same job is ``lake glue compact``.
"""

import sys

from lake.glue.jobs import script_main

if __name__ == "__main__":
    sys.exit(script_main("compact"))
