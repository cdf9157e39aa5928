"""Errors of the lake, translated at the AWS boundary.

``TransientError`` means "try again" (a Lambda batch item failure, retried by the
event source mapping); ``TerminalError`` means "this will never work" (the record
goes to the dead-letter destination with a reason, the batch goes on).
"""

from __future__ import annotations


class LakeError(Exception):
    """Base class of every error the lake raises on purpose."""


class ConfigError(LakeError):
    """Settings that cannot be used (bad value, unknown key, unreadable file)."""


class NotFoundError(LakeError):
    """A named resource (table, stream, bucket, queue, Glue table) does not exist."""

    def __init__(self, kind: str, name: str, hint: str = "") -> None:
        self.kind, self.name = kind, name
        super().__init__(f"{kind} {name!r} does not exist" + (f": {hint}" if hint else ""))


class TransientError(LakeError):
    """Worth retrying: throttling, timeouts, 5xx from a service."""


class TerminalError(LakeError):
    """Retrying cannot help: malformed input, a record that violates a contract."""


class MalformedRecordError(TerminalError):
    """A stream record that cannot be decoded; carries the reason for the dead-letter queue."""


class QueryError(LakeError):
    """Bad SQL or an unknown table, with the failing position when known."""
