"""AWS errors → the lake's errors (``lake.errors``): the one place that reads botocore's.

Only botocore's own errors are AWS errors. Anything else raised around an SDK call (a
``TypeError`` from a bad argument, a ``KeyError`` in our code) is a bug: it must surface
as itself, never be turned into a :class:`TerminalError` that quarantines records.

This module imports ``botocore.exceptions`` only (cheap), not boto3, so the storage and
catalog doors can use it without building a session.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from lake.errors import NotFoundError, TerminalError, TransientError

#: What an adapter catches around an SDK call: botocore's errors and nothing else.
AWS_ERRORS: tuple[type[ClientError], type[BotoCoreError]] = (ClientError, BotoCoreError)

TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
    "RequestLimitExceeded", "InternalServerError", "InternalFailure", "ServiceUnavailable",
    "SlowDown", "RequestTimeout", "KMSThrottlingException", "LimitExceededException",
    "InternalError", "ExpiredIteratorException",
})
NOT_FOUND_CODES = frozenset({
    "ResourceNotFoundException", "NoSuchBucket", "NoSuchKey", "EntityNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFoundException",
})

_NO_CREDENTIALS = ("no AWS credentials found. For the embedded AWS, pass the --endpoint-url that `lake up` "
                   "printed (or set LAKE_ENDPOINT_URL); for AWS, configure credentials or --profile.")


def error_code(exc: BaseException) -> str:
    """The service's error code of a ``ClientError`` (``NoSuchKey``, ``SlowDown``...), else ``""``."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_aws_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from botocore (a service answer or a client-side SDK failure)."""
    return isinstance(exc, AWS_ERRORS)


def translate(exc: Exception, kind: str = "resource", name: str = "") -> Exception:
    """Map a botocore error to the lake's terminal/transient/not-found split.

    Anything that is not a botocore error comes back unchanged, so ``raise translate(e) from e``
    re-raises a bug as itself. Catch :data:`AWS_ERRORS` around SDK calls, not ``Exception``.
    """
    if not isinstance(exc, AWS_ERRORS):
        return exc
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return NotFoundError(kind, name, str(exc))
    if code in TRANSIENT_CODES or isinstance(exc, BotoCoreError):
        # BotoCoreError: connection refused or reset, read timeout, ... (EndpointConnectionError included)
        return TransientError(f"{kind} {name}: {exc}")
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status >= 500:
            return TransientError(f"{kind} {name}: {exc}")
    return TerminalError(f"{kind} {name}: {exc}")


def explain(exc: BaseException) -> str:
    """A one-line explanation of an AWS error for the command line (missing credentials get a hint)."""
    if isinstance(exc, NoCredentialsError):
        return _NO_CREDENTIALS
    return str(exc)
