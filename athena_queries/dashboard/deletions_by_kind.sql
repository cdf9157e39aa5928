-- Dashboard: deletes per source table, told apart: 'ttl' (DynamoDB's Time to Live sweeper) or 'user'.
SELECT table_name, deletion_kind, count(*) AS deletions
FROM deletions
GROUP BY table_name, deletion_kind
