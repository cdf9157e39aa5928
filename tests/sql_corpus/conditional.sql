-- family: Conditional
-- source: https://trino.io/docs/current/functions/conditional.html

-- function: CASE
SELECT a, CASE a WHEN 1 THEN 'one' WHEN 2 THEN 'two' ELSE 'many' END FROM (VALUES 1, 2, 3) t(a) ORDER BY a
-- => 1 | one
-- => 2 | two
-- => 3 | many

-- function: CASE
SELECT CASE WHEN 1 = 2 THEN 'aaa' WHEN 2 = 2 THEN 'bbb' ELSE 'ccc' END
-- => bbb

-- function: if
SELECT IF(150000 >= 150000, 'High Value', 'Low Value'), IF(false, 1)
-- => High Value | NULL

-- function: coalesce
SELECT coalesce(NULL, 2, 3)
-- => 2

-- function: nullif
SELECT nullif(1, 1), nullif(1, 2)
-- => NULL | 1

-- function: try
SELECT TRY(CAST('P332a' AS BIGINT))
-- => NULL

-- function: try
SELECT COALESCE(TRY(155 / 0), 0)
-- => 0
