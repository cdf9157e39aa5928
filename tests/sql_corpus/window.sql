-- family: Window
-- source: https://trino.io/docs/current/functions/window.html

-- function: row_number
SELECT x, row_number() OVER (ORDER BY x DESC) FROM (VALUES 10, 30, 20) t(x) ORDER BY x
-- => 10 | 3
-- => 20 | 2
-- => 30 | 1

-- function: rank
SELECT x, rank() OVER (ORDER BY x) FROM (VALUES 10, 10, 20) t(x) ORDER BY x
-- => 10 | 1
-- => 10 | 1
-- => 20 | 3

-- function: dense_rank
SELECT x, dense_rank() OVER (ORDER BY x) FROM (VALUES 10, 10, 20) t(x) ORDER BY x
-- => 10 | 1
-- => 10 | 1
-- => 20 | 2

-- function: percent_rank
SELECT x, percent_rank() OVER (ORDER BY x) FROM (VALUES 10, 20, 30) t(x) ORDER BY x
-- => 10 | 0.0
-- => 20 | 0.5
-- => 30 | 1.0

-- function: cume_dist
SELECT x, cume_dist() OVER (ORDER BY x) FROM (VALUES 10, 20, 30, 40) t(x) ORDER BY x
-- => 10 | 0.25
-- => 20 | 0.5
-- => 30 | 0.75
-- => 40 | 1.0

-- function: ntile
SELECT x, ntile(2) OVER (ORDER BY x) FROM (VALUES 1, 2, 3) t(x) ORDER BY x
-- => 1 | 1
-- => 2 | 1
-- => 3 | 2

-- function: first_value
SELECT x, first_value(x) OVER (ORDER BY x) FROM (VALUES 1, 2) t(x) ORDER BY x
-- => 1 | 1
-- => 2 | 1

-- function: last_value
SELECT x, last_value(x) OVER (ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM (VALUES 1, 2) t(x) ORDER BY x
-- => 1 | 2
-- => 2 | 2

-- function: nth_value
SELECT x, nth_value(x, 2) OVER (ORDER BY x) FROM (VALUES 1, 2, 3) t(x) ORDER BY x
-- => 1 | NULL
-- => 2 | 2
-- => 3 | 2

-- function: lag
SELECT x, lag(x) OVER (ORDER BY x) FROM (VALUES 1, 2, 3) t(x) ORDER BY x
-- => 1 | NULL
-- => 2 | 1
-- => 3 | 2

-- function: lead
SELECT x, lead(x, 1, 0) OVER (ORDER BY x) FROM (VALUES 1, 2, 3) t(x) ORDER BY x
-- => 1 | 2
-- => 2 | 3
-- => 3 | 0

-- function: sum OVER
SELECT x, sum(x) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM (VALUES 1, 2, 3) t(x) ORDER BY x
-- => 1 | 1
-- => 2 | 3
-- => 3 | 5

-- function: count OVER
SELECT g, x, count(*) OVER (PARTITION BY g) FROM (VALUES ('a', 1), ('a', 2), ('b', 3)) t(g, x) ORDER BY g, x
-- => a | 1 | 2
-- => a | 2 | 2
-- => b | 3 | 1
