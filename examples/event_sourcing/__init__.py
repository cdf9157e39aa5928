"""Example 3, event sourcing on DynamoDB streams (article 003): commands → ordered events → state."""
