"""price_watch (article 004): a scheduled price fetcher writing only drops -> stream -> publisher -> SNS."""
