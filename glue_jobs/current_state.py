"""AWS Glue job: the lake's ``current_state`` (lake/glue, docs/adr/0004). Thin: arguments, run, report.

As a Glue job its arguments come through ``awsglue.utils.getResolvedOptions``; elsewhere
``python -m glue_jobs.current_state --help``. The same job is ``lake glue current_state``.
"""

import sys

from lake.glue.jobs import script_main

if __name__ == "__main__":
    sys.exit(script_main("current_state"))
