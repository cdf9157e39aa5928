"""The event-sourcing example's resources, declared once (wired by ``lake example``, deployed by SAM).

``commands`` is keyed by microservice: its atomic counter numbers each microservice's commands
and its stream delivers them in that order. ``events`` is the ordered log (partition
microservice, sort sequence), ``entities`` the state snapshots and ``requests`` the request ids
already handled (idempotency). The lake archives the commands (what was asked) and the events
(what happened); the other two are derived from those and are not archived.
"""

from __future__ import annotations

from pathlib import Path

from lake.apps import App, Function, Permission, StreamEvents, Table

_TABLES = (("COMMANDS_TABLE", "commands"), ("EVENTS_TABLE", "events"), ("ENTITIES_TABLE", "entities"),
           ("REQUESTS_TABLE", "requests"))
ENVIRONMENT = tuple((var, f"${{table:{name}}}") for var, name in _TABLES)
STREAM_READ = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
               "dynamodb:ListStreams")

APP = App(
    name="event-sourcing",
    description="Event sourcing with DynamoDB streams: a commands table with an atomic counter, "
                "an ordered per-microservice events table, idempotent by request id.",
    tables=(
        Table("commands", hash_key="microservice"),
        Table("events", hash_key="microservice", range_key="sequence", range_type="N"),
        Table("entities", hash_key="microservice", range_key="entity", stream=None, archived=False),
        Table("requests", hash_key="microservice", range_key="request_id", stream=None, archived=False),
    ),
    functions=(
        Function(
            name="add-command",
            handler="examples.event_sourcing.handlers:add_command",
            description="The API's command endpoint (API Gateway on AWS; the scenario calls it directly).",
            environment=ENVIRONMENT,
            permissions=(Permission("table", "commands", ("dynamodb:UpdateItem",)),),
        ),
        Function(
            name="process-commands",
            handler="examples.event_sourcing.handlers:process_commands",
            description="The commands table's stream → the ordered events table and the entities' state.",
            triggers=(StreamEvents("commands", batch_size=50, report_batch_item_failures=True),),
            environment=ENVIRONMENT,
            permissions=(
                Permission("table-stream", "commands", STREAM_READ),
                Permission("table", "events", ("dynamodb:PutItem",)),
                Permission("table", "entities", ("dynamodb:GetItem", "dynamodb:PutItem")),
                Permission("table", "requests", ("dynamodb:GetItem", "dynamodb:PutItem")),
            ),
            timeout_s=60,
        ),
    ),
    root=str(Path(__file__).parent),
)
