"""upload_rows (article 000): S3 upload -> SNS -> rows logged in DynamoDB -> stream criterion -> SQS FIFO -> worker."""
