"""Sending a batch back through its stage: its handler in this process (a local lake), or its
Lambda function (``Invoke``, RequestResponse) on AWS. Both read the reply with the shared
invocation contract (:mod:`lake.invocation`): a raise or a ``FunctionError`` fails the batch,
``batchItemFailures`` fails it from the lowest reported record."""

from __future__ import annotations

import copy
import os
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import orjson

from lake.aws.errors import AWS_ERRORS, translate
from lake.errors import ConfigError, TransientError
from lake.invocation import Handler, LambdaContext, Outcome, interpret, resolve_handler, restore_environ
from lake.settings import Settings
from lake.wiring import FUNCTIONS

# The lake's stages by function name, from the one declaration of the wiring (lake up and template.yaml's).
STAGE_HANDLERS: Mapping[str, str] = {f.name: f.handler for f in FUNCTIONS}


class Invoker(Protocol):
    """Invokes one function with one event; says what came of it."""

    def invoke(self, function_arn: str, stage: str, records: Sequence[Mapping[str, Any]]) -> Outcome: ...


def _identifiers(records: Sequence[Mapping[str, Any]]) -> list[str]:
    from lake.redrive.message import sequence_of

    return [sequence_of(r) for r in records]


@contextmanager
def handler_environment(settings: Settings) -> Iterator[None]:
    """The environment a handler resolves its settings from (as Lambda's), put back afterwards."""
    env = settings.env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        restore_environ(saved)


class PythonInvoker:
    """Calls the stage's handler in this process. ``handlers`` maps a function name (or its stage,
    the name before ``@``) to ``module:function``; a name of the form ``pkg.module.function``
    (how `lake up --function pkg.module:function` names its mapping) is found as such."""

    def __init__(self, settings: Settings, handlers: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.handlers = {**STAGE_HANDLERS, **(handlers or {})}
        self._loaded: dict[str, Handler] = {}

    def handler(self, function: str, stage: str) -> Handler:
        spec = self.handlers.get(function) or self.handlers.get(stage)
        if spec is None:
            module, _, attr = stage.rpartition(".")
            if not module:
                raise ConfigError(f"no handler known for function {function!r}: pass --handler "
                                  f"{stage}=module:function")
            spec = f"{module}:{attr}"
        if spec not in self._loaded:
            self._loaded[spec] = resolve_handler(spec, task_root=os.getcwd())
        return self._loaded[spec]

    def invoke(self, function_arn: str, stage: str, records: Sequence[Mapping[str, Any]]) -> Outcome:
        function = function_arn.rsplit(":function:", 1)[-1]
        handler = self.handler(function, stage)
        # a fresh copy: a handler that changes its event cannot change what a retry gets
        event = {"Records": copy.deepcopy(list(records))}  # (deepcopy: records too deep for orjson may come)
        context = LambdaContext(function, invoked_function_arn=function_arn, region=self.settings.region)
        with handler_environment(self.settings):
            try:
                reply = handler(event, context)
            except Exception as e:  # the handler's failure is the batch's, as on Lambda
                return Outcome(False, error=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}",
                               function_error="Unhandled")
        return interpret(reply, _identifiers(records))


class LambdaInvoker:
    """``Invoke`` of the function named in the message, through an injected Lambda client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def invoke(self, function_arn: str, stage: str, records: Sequence[Mapping[str, Any]]) -> Outcome:
        payload = orjson.dumps({"Records": list(records)})
        try:
            resp = self.client.invoke(FunctionName=function_arn, InvocationType="RequestResponse", Payload=payload)
        except AWS_ERRORS as e:
            err = translate(e, "Lambda function", function_arn)
            if isinstance(err, TransientError):
                return Outcome(False, error=str(err))
            raise err from e  # not found, access denied...: no use trying every message
        body = resp.get("Payload")
        raw = body.read() if hasattr(body, "read") else (body or b"")
        if resp.get("FunctionError"):
            text = raw.decode("utf-8", "replace")[:500]
            return Outcome(False, error=f"FunctionError {resp['FunctionError']}: {text}",
                           function_error=str(resp["FunctionError"]))
        try:
            reply = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            reply = None  # a handler may return anything; only batchItemFailures means something
        return interpret(reply, _identifiers(records))
