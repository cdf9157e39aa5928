"""The file index of source article 002, declared once: wired locally and deployed from this object.

An upload to the bucket sends S3's "Object Created" event to EventBridge (the bucket's
EventBridge configuration); a rule on the default bus starts the state machine, whose ASL
(``statemachine.asl.json``, the article's with its bugs fixed: see README.md) queries the
index table for the key and puts a new row or updates the known one. No function: Step
Functions' DynamoDB integrations do the writes. The index table's stream feeds the lake.
"""

from __future__ import annotations

import json
from pathlib import Path

from lake.apps import App, Bucket, Permission, RuleEvents, StateMachine, Table

BUCKET = "file-index-uploads"
TABLE = "file-index"
MACHINE = "file-index"
RULE = "file-index-object-created"

# Only this bucket's uploads: its physical name is resolved from the reference (locally the declared
# name; on AWS the stack's bucket).
PATTERN = json.dumps({
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"bucket": {"name": ["${bucket:" + BUCKET + "}"]}},
})

APP = App(
    name="file_index",
    description="S3 Object Created → EventBridge rule → Step Functions (Query, Choice, PutItem / UpdateItem) "
                "keeping an index of the bucket's files in DynamoDB",
    # One row per object key. The article's table had lastModified as its sort key: an item's key
    # cannot be updated, and its UpdateItem named only fileName, so it could never update a row.
    tables=(Table(name=TABLE, hash_key="fileName"),),
    buckets=(Bucket(name=BUCKET, eventbridge=True),),
    state_machines=(StateMachine(
        name=MACHINE,
        definition="statemachine.asl.json",
        substitutions=(("FilesTable", "${table:" + TABLE + "}"),),
        triggers=(RuleEvents(name=RULE, pattern=PATTERN),),
        # What the ASL does, and nothing else (the article's DynamoDBCrudPolicy also allowed
        # GetItem, DeleteItem, Scan, BatchWriteItem…).
        permissions=(Permission("table", TABLE, ("dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem")),),
    ),),
    root=str(Path(__file__).resolve().parent),
)
