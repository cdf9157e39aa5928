"""moto's Step Functions interpreter, pointed at the embedded AWS that runs it.

moto 5.2 executes state machines (its ``moto/stepfunctions/parser/``, ported from LocalStack)
when its ``stepfunctions.execute_state_machine`` config is on (``POST /moto-api/config``; read
on every request by ``moto.stepfunctions.responses.get_backend``). A Task state's service call
(``arn:aws:states:::dynamodb:putItem``, ``arn:aws:states:::aws-sdk:dynamodb:query``…) is made
with a boto3 client from ``boto_client_for``, which, outside ``mock_aws``, addresses
``http://localhost:$MOTO_PORT`` (5000 unless the environment says otherwise): not the
embedded AWS, whose port is chosen at run time. Every such call then fails with
``States.Runtime`` ("Could not connect to the endpoint URL").

:func:`patch` makes those clients address the embedded server that received the Step
Functions request (its bound address, not the client's ``Host`` header). The calls still go
over HTTP, on purpose: through :class:`lake.local.embedded.LoopbackGuard`, the fault injector
and the state journal, as any other client's, so what an execution writes survives a restart
of a persistent ``lake up``. All embedded servers of a process share moto's backends, so the
last server noted is as good as any other while several run (tests).

Nothing else is needed in the interpreter for the file index example: the
``aws-sdk:dynamodb:query`` and the optimized ``dynamodb:putItem`` / ``dynamodb:updateItem``
integrations run as they are (tests/integration/test_moto_sfn.py pins it).

And the events that start executions: S3's "Object Created" events on EventBridge (a bucket's
``EventBridgeConfiguration``) all carry one constant ``id`` in moto (its event template's), so
every execution named after its event (as a rule's target starts them: the same event delivered
again must not run twice) would have one name, and every upload after the first would be refused
as ``ExecutionAlreadyExists``. :func:`patch` gives each such event its own id, as AWS does, and
names the object's ETag ``etag`` as AWS does (moto: ``eTag``).
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from typing import Any

log = logging.getLogger(__name__)

_PATCHED = False
_LOCK = threading.Lock()
_endpoint: str | None = None
"""The embedded server that last received a Step Functions request (``http://host:port``)."""

_BOTO_CLIENT_MODULE = "moto.stepfunctions.parser.asl.utils.boto_client"
_SERVICE_MODULES = (
    # Every module of the interpreter that binds ``boto_client_for`` at import (``from … import``):
    # importing them here lets :func:`patch` rebind the name in each.
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_factory",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
)


def endpoint() -> str | None:
    """Where the interpreter's service calls go (None: moto's own default)."""
    return _endpoint


def _server_url(request: Any) -> str | None:
    """The bound address of the WSGI server that took ``request`` (moto's normalized request; None in
    ``mock_aws``, whose requests no server took)."""
    if not getattr(request, "from_wsgi_server", False):
        return None
    environ = request.environ
    if "SERVER_PORT" not in environ:
        return None
    host = str(environ.get("SERVER_NAME") or "127.0.0.1")
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{environ['SERVER_PORT']}"


def patch() -> None:
    """Point moto's Step Functions interpreter's service clients at the embedded AWS (idempotent)."""
    global _PATCHED
    with _LOCK:
        if _PATCHED:
            return
        try:
            import boto3
            from botocore.config import Config
            from moto.core.models import botocore_stubber
            from moto.stepfunctions.responses import StepFunctionResponse

            boto_client = __import__(_BOTO_CLIENT_MODULE, fromlist=["boto_client_for"])
            for name in _SERVICE_MODULES:
                __import__(name)
        except ImportError:  # pragma: no cover - a moto without the interpreter
            log.warning("moto's Step Functions interpreter not found: executions cannot reach the embedded AWS")
            return
        original = boto_client.boto_client_for
        timeout = boto_client.TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS

        def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            url = _endpoint
            if botocore_stubber.enabled or url is None:  # in mock_aws calls are answered in-process
                return original(region, service, state_credentials)
            return boto3.client(  # as moto's, but at the embedded server
                service_name=service, region_name=region, endpoint_url=url,
                aws_access_key_id="ak", aws_secret_access_key="sk",
                config=Config(parameter_validation=False,
                              retries={"max_attempts": 0, "total_max_attempts": 1},
                              connect_timeout=timeout, read_timeout=timeout),
            )

        boto_client_for.__wrapped__ = original  # type: ignore[attr-defined]
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("moto.stepfunctions.parser") \
                    and getattr(module, "boto_client_for", None) is original:
                module.boto_client_for = boto_client_for  # type: ignore[attr-defined]

        original_call = StepFunctionResponse.call_action

        def call_action(self: Any) -> Any:
            global _endpoint
            url = _server_url(getattr(self, "normalized_request", None))
            if url is not None:
                _endpoint = url
            return original_call(self)

        StepFunctionResponse.call_action = call_action  # type: ignore[method-assign]
        _patch_s3_eventbridge_events()
        _PATCHED = True


def _patch_s3_eventbridge_events() -> None:
    """S3's EventBridge events with an id of their own and ``etag`` (see the module's docstring).

    moto builds one event per upload and hands the same dict to every rule of every bus
    (``moto.s3.notifications._send_event_bridge_message``): it is fixed in place on the first
    rule, so all rules see one event with one id, as on AWS.
    """
    from moto.events.models import Rule
    from moto.events.utils import _BASE_EVENT_MESSAGE

    template_id = _BASE_EVENT_MESSAGE["id"]
    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if original_event.get("source") == "aws.s3" and original_event.get("id") == template_id:
            original_event["id"] = str(uuid.uuid4())
            obj = original_event.get("detail", {}).get("object", {})
            if "eTag" in obj:
                obj["etag"] = obj.pop("eTag")
        original(self, original_event, transform_input)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
