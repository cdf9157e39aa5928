"""The declaration of price_watch (article 004), wired locally by ``lake example price_watch``.

A weekly EventBridge schedule fires ``fetch``, which reads the bundled price feed as of the
firing's time and writes a region's price into ``price_watch_prices`` only when it is lower
than the stored one. The table's stream feeds ``publish`` (MODIFY records only: the first
price of a region is an INSERT, its baseline), which announces each drop on an SNS topic.
The subscriber here is an SQS queue (where an email address would be on AWS), which the
scenario reads. The table has a stream: the lake archives it.

The article's schedule ``cron(* * 0 ? * WED *)`` has seven fields; EventBridge's cron has
six (minutes hours day-of-month month day-of-week year). What it means, every Wednesday at
midnight UTC, is ``cron(0 0 ? * WED *)``.
"""

from __future__ import annotations

import json
from pathlib import Path

from lake.apps import App, Function, Permission, Queue, RuleEvents, StreamEvents, Subscription, Table, Topic

PRICES = "price_watch_prices"
ALERTS = "price-watch-drops"
INBOX = "price-watch-inbox"
SCHEDULE = "cron(0 0 ? * WED *)"

# Every write of the table is a drop or a baseline; a drop is a MODIFY with a price in both
# images. Lambda cannot compare the two prices in a filter (and reads {"N": "3.85"} as a
# string), so the handler compares them.
PUBLISH_FILTER = json.dumps({"eventName": ["MODIFY"],
                             "dynamodb": {"OldImage": {"price": {"N": [{"exists": True}]}},
                                          "NewImage": {"price": {"N": [{"exists": True}]}}}})

APP = App(
    name="price_watch",
    description="Article 004: a scheduled price fetcher writing only drops -> stream -> publisher -> SNS",
    tables=(Table(PRICES, hash_key="region"),),
    topics=(Topic(ALERTS),),
    queues=(Queue(INBOX),),
    subscriptions=(Subscription(ALERTS, INBOX),),
    functions=(
        Function(
            name="fetch",
            handler="examples.price_watch.handlers:fetch",
            description="Fetches the week's gasoline prices; writes a region's price only when it drops",
            triggers=(RuleEvents("price-watch-weekly", schedule=SCHEDULE),),
            environment=(("PRICES_TABLE", f"${{table:{PRICES}}}"),),
            permissions=(Permission("table", PRICES, ("dynamodb:UpdateItem",)),),
        ),
        Function(
            name="publish",
            handler="examples.price_watch.handlers:publish",
            description="Publishes gasoline price drops",
            triggers=(StreamEvents(PRICES, batch_size=100, filter_patterns=(PUBLISH_FILTER,)),),
            environment=(("ALERTS_TOPIC_ARN", f"${{topic:{ALERTS}}}"),),
            permissions=(
                Permission("table-stream", PRICES, ("dynamodb:DescribeStream", "dynamodb:GetRecords",
                                                    "dynamodb:GetShardIterator", "dynamodb:ListStreams")),
                Permission("topic", ALERTS, ("sns:Publish",)),
            ),
        ),
    ),
    root=str(Path(__file__).resolve().parent),
)
