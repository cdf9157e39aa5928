"""Lambda: the lake's Kinesis stream → an HTTP endpoint (the article's "consumer B").

Configured by the environment: ``DELIVERY_URL`` (where to POST; read per invocation),
``REJECTED_QUEUE_URL`` (where refused changes are reported), ``DELIVERY_TABLES`` (comma-separated
source tables to deliver; empty: every table the lake carries), ``DELIVERY_MAX_ATTEMPTS``.
The rules of delivery are :mod:`examples.http_fanout.delivery`'s; this module adds the AWS side:
claim checks fetched through the lake's storage door, refusals sent to the reject queue.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from examples.http_fanout.delivery import DeliveryOptions, Rejected, deliver, http_post
from lake.aws.clients import AWS_ERRORS, Clients, HandlerRuntime, translate
from lake.curate.consumer import _fetch_claim
from lake.curate.decode import ClaimRef

log = logging.getLogger(__name__)

_runtime = HandlerRuntime()
configure = _runtime.configure


def options_from_env(environ: Mapping[str, str] | None = None) -> DeliveryOptions:
    env = os.environ if environ is None else environ
    tables = frozenset(t.strip() for t in env.get("DELIVERY_TABLES", "").split(",") if t.strip())
    return DeliveryOptions(max_attempts=int(env.get("DELIVERY_MAX_ATTEMPTS", "6")), tables=tables)


def report(clients: Clients, queue_url: str, rejected: list[Rejected]) -> None:
    """Each refused change to the reject queue (one message each: a change can be 400 KB)."""
    for r in rejected:
        log.warning("change %s of %s refused: %s", r.idempotency_key, r.table, r.reason)
        try:
            clients.sqs.send_message(QueueUrl=queue_url, MessageBody=r.to_json().decode())
        except AWS_ERRORS as e:
            raise translate(e, "queue", queue_url) from e


def deliver_changes(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """POST each change of a Kinesis batch; report what must be redelivered as batch item failures."""
    settings, clients = _runtime.get()

    def fetch(ref: ClaimRef) -> tuple[str, Mapping[str, Any]]:
        return ref.table, _fetch_claim(settings, clients, ref)

    out = deliver(event.get("Records") or [], http_post(os.environ["DELIVERY_URL"]), fetch, options_from_env())
    if out.rejected:
        report(clients, os.environ["REJECTED_QUEUE_URL"], out.rejected)
    log.info("posted %d, retried %d, rejected %d, skipped %d, to redeliver %d", out.posted, out.retried,
             len(out.rejected), out.skipped, len(out.failures))
    return out.response()

