"""The file index (source article 002): S3 Object Created → EventBridge → a state machine keeping a DynamoDB index."""
