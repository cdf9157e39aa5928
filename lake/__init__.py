"""dynamodb-lake: every change of your DynamoDB tables in an S3 data lake."""

__version__ = "0.1.0"
