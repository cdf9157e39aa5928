"""Replay test kit: Lambda-shaped DynamoDB stream events to archive, and in-process handlers
that consume replayed events the way real consumers do."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

REGION = "us-east-1"
ACCOUNT = "123456789012"
LABEL = "2024-05-01T00:00:00.000"
T0 = 1_714_521_600  # 2024-05-01T00:00:00Z


def stream_arn(table: str, label: str = LABEL) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/{label}"


def make_record(table: str, pk: str, sk: str, event: str, seq: int, t: float,
                new: Mapping[str, Any] | None = None, old: Mapping[str, Any] | None = None,
                label: str = LABEL, ttl: bool = False) -> dict[str, Any]:
    """One stream record exactly as Lambda delivers it (NEW_AND_OLD_IMAGES)."""
    keys = {"pk": {"S": pk}, "sk": {"S": sk}}
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": t, "Keys": keys,
                           "SequenceNumber": str(seq).zfill(21), "SizeBytes": 100,
                           "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        ddb["NewImage"] = {**keys, **new}
    if old is not None:
        ddb["OldImage"] = {**keys, **old}
    event_id = hashlib.md5(f"{table}/{label}/{seq}".encode()).hexdigest()
    rec: dict[str, Any] = {"eventID": event_id, "eventName": event, "eventVersion": "1.1",
                           "eventSource": "aws:dynamodb", "awsRegion": REGION, "dynamodb": ddb,
                           "eventSourceARN": stream_arn(table, label)}
    if ttl:
        rec["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return rec


def history(table: str = "orders", items: int = 5, changes: int = 4, seed: int = 7, start_seq: int = 10**20,
            t0: float = T0, step_s: float = 600, label: str = LABEL) -> list[dict[str, Any]]:
    """Interleaved item histories (INSERT, MODIFYs, sometimes a REMOVE) in stream order.

    Items are written concurrently: each step changes a random live item; times advance
    ``step_s`` per change, so a long history spans several hours and days."""
    rnd = random.Random(seed)
    state: dict[str, dict[str, Any] | None] = {}
    left = {f"item#{i:03d}": changes for i in range(items)}
    out: list[dict[str, Any]] = []
    seq, t = start_seq, t0
    alive = sorted(left)
    while alive:
        at = rnd.randrange(len(alive))
        pk = alive[at]
        sk = "v0"
        old = state.get(pk)
        n = changes - left[pk]
        if old is None:
            new: dict[str, Any] = {"status": {"S": "new"}, "n": {"N": str(n)},
                                   "amount": {"N": "12345678901234567890.123456789"}}
            out.append(make_record(table, pk, sk, "INSERT", seq, t, new=new, label=label))
            state[pk] = new
        elif left[pk] == 1 and rnd.random() < 0.4:
            out.append(make_record(table, pk, sk, "REMOVE", seq, t, old=old, label=label))
            state[pk] = None
        else:
            new = {**old, "status": {"S": rnd.choice(["paid", "shipped", "late"])}, "n": {"N": str(n)},
                   "tags": {"SS": ["a", f"t{n}"]}}
            out.append(make_record(table, pk, sk, "MODIFY", seq, t, new=new, old=old, label=label))
            state[pk] = new
        left[pk] -= 1
        if not left[pk]:
            alive[at] = alive[-1]  # swap-remove: O(1), big histories stay fast to generate
            alive.pop()
        seq += rnd.randint(1, 5000)
        t += step_s
    return out


def batches(records: list[dict[str, Any]], size: int) -> Iterator[dict[str, Any]]:
    """Lambda events of ``size`` records, in order."""
    for i in range(0, len(records), size):
        yield {"Records": records[i:i + size]}


# -- handlers -------------------------------------------------------------------------------

class Collector:
    """Records every event it gets; validates each with Powertools' parser model."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        DynamoDBStreamModel.model_validate(event)
        self.events.append(event)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r for e in self.events for r in e["Records"]]


class PowertoolsConsumer:
    """A real Powertools consumer: BatchProcessor(DynamoDBStreams) + process_partial_response.

    ``fail`` maps an eventID → how many more times its record handler raises, so it
    produces genuine ``batchItemFailures`` responses."""

    def __init__(self, fail: Mapping[str, int] | None = None) -> None:
        self.processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
        self.fail = dict(fail or {})
        self.processed: list[str] = []  # eventIDs, in processing order
        self.responses: list[dict[str, Any]] = []

    def record_handler(self, record: DynamoDBRecord) -> None:
        event_id = record.event_id or ""
        if self.fail.get(event_id, 0) > 0:
            self.fail[event_id] -= 1
            raise ValueError(f"injected failure for {record.event_id}")
        assert record.dynamodb is not None and record.dynamodb.sequence_number
        self.processed.append(record.event_id or "")

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        DynamoDBStreamModel.model_validate(event)
        response = process_partial_response(event=event, record_handler=self.record_handler,
                                            processor=self.processor, context=context)
        self.responses.append(dict(response))
        return dict(response)


class InterruptAfter(Collector):
    """Acknowledges ``n`` batches, then raises KeyboardInterrupt (a user's Ctrl-C mid-replay)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        if len(self.events) >= self.n:
            raise KeyboardInterrupt
        super().__call__(event, context)


def module_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Importable as ``python:tests.replay_handlers:module_handler``; keeps what it saw."""
    DynamoDBStreamModel.model_validate(event)
    SEEN.append(event)
    assert context.get_remaining_time_in_millis() > 0
    return {"batchItemFailures": []}


SEEN: list[dict[str, Any]] = []


# -- a local Lambda Invoke shim ---------------------------------------------------------

def install_invoke_shim(client: Any, functions: Mapping[str, Callable[[dict[str, Any], Any], Any]]) -> list[bytes]:
    """Make ``client.invoke`` run in-process handlers (moto cannot run Lambda code without Docker).

    Hooks botocore's ``before-call.lambda.Invoke`` event: the request is validated and
    serialised by botocore as for AWS, then answered here: the handler's return value as the
    payload, an exception as ``FunctionError: Unhandled`` with Lambda's error JSON. Returns
    the list that receives each request payload (bytes)."""
    from botocore.awsrequest import AWSResponse
    from botocore.response import StreamingBody

    from lake.invocation import LambdaContext

    payloads: list[bytes] = []

    def answer(params: dict[str, Any], model: Any, **_: Any) -> Any:
        name = params["url_path"].split("/functions/", 1)[1].split("/", 1)[0]
        from urllib.parse import unquote

        name = unquote(name).rsplit(":function:", 1)[-1]
        body = params["body"]
        payload = body if isinstance(body, bytes) else body.read()
        payloads.append(payload)
        handler = functions[name]
        parsed: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST",
                                  "ResponseMetadata": {"HTTPStatusCode": 200}}
        try:
            result = handler(orjson.loads(payload), LambdaContext(function_name=name))
            out = orjson.dumps(result)
        except Exception as e:
            out = orjson.dumps({"errorMessage": str(e), "errorType": type(e).__name__})
            parsed["FunctionError"] = "Unhandled"
        parsed["Payload"] = StreamingBody(io.BytesIO(out), len(out))
        return AWSResponse("http://local-invoke", 200, {}, None), parsed

    client.meta.events.register("before-call.lambda.Invoke", answer)
    return payloads
