"""The triggers of an app's functions besides streams (those are :mod:`lake.local.runtime`'s).

``sqs``: SQS event source mappings; ``hidden``: SNS, S3 and EventBridge deliveries to
Lambda and Step Functions through hidden queues; ``schedule``: schedule rules;
``base``: invoking a function, counters, the queue poller they share.
"""
