"""``lake redrive``: dead-lettered records sent back through their stage once the cause is fixed.

:mod:`message` reads an on-failure message (pure), :mod:`sources` finds its records (the
message, the raw zone, the stream), :mod:`invokers` runs the stage (in this process, or its
Lambda function), :mod:`engine` composes them with the queue (:mod:`queue`).
"""

from lake.redrive.engine import FunctionReport, RedriveOptions, RedriveReport, redrive
from lake.redrive.message import DeadLetter, parse_message

__all__ = ["DeadLetter", "FunctionReport", "RedriveOptions", "RedriveReport", "parse_message", "redrive"]
