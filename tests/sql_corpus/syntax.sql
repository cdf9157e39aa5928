-- family: Query syntax (UNNEST, GROUPING SETS, result names)
-- source: https://trino.io/docs/current/sql/select.html

-- function: UNNEST
-- unordered
SELECT student, score FROM (VALUES ('John', ARRAY[7, 10, 9]), ('Mary', ARRAY[4, 8, 9])) AS tests (student, scores) CROSS JOIN UNNEST(scores) AS t (score)
-- => John | 7
-- => John | 10
-- => John | 9
-- => Mary | 4
-- => Mary | 8
-- => Mary | 9

-- function: UNNEST (several arrays)
SELECT * FROM UNNEST(ARRAY[1, 2], ARRAY['foo', 'bar', 'baz']) AS t (n, s)
-- => 1 | foo
-- => 2 | bar
-- => NULL | baz
-- status: unsupported
-- note: DuckDB unnests one array at a time; unnest each array WITH ORDINALITY and join on the ordinal

-- function: UNNEST WITH ORDINALITY
SELECT s, i FROM UNNEST(ARRAY['a', 'b']) WITH ORDINALITY AS t (s, i)
-- => a | 1
-- => b | 2

-- function: UNNEST (map)
-- unordered
SELECT k, v FROM UNNEST(MAP(ARRAY['a', 'b'], ARRAY[1, 2])) AS t (k, v)
-- => a | 1
-- => b | 2
-- status: unsupported
-- note: DuckDB does not unnest a map into key and value columns; unnest map_keys() and use element_at

-- function: GROUPING SETS
-- the shipping table of the documentation, as a WITH clause
-- unordered
-- columns: origin_state, origin_zip, destination_state, _col3
WITH shipping (origin_state, origin_zip, destination_state, destination_zip, package_weight) AS (VALUES ('California', 94131, 'New Jersey', 8648, 13), ('California', 94131, 'New Jersey', 8540, 42), ('New Jersey', 7081, 'Connecticut', 6708, 225), ('California', 90210, 'Connecticut', 6927, 1337), ('California', 94131, 'Colorado', 80302, 5), ('New York', 10002, 'New Jersey', 8540, 3)) SELECT origin_state, origin_zip, destination_state, sum(package_weight) FROM shipping GROUP BY GROUPING SETS ((origin_state), (origin_state, origin_zip), (destination_state))
-- => New Jersey | NULL | NULL | 225
-- => California | NULL | NULL | 1397
-- => New York | NULL | NULL | 3
-- => California | 90210 | NULL | 1337
-- => California | 94131 | NULL | 60
-- => New Jersey | 7081 | NULL | 225
-- => New York | 10002 | NULL | 3
-- => NULL | NULL | Colorado | 5
-- => NULL | NULL | New Jersey | 58
-- => NULL | NULL | Connecticut | 1562

-- function: CUBE
-- unordered
WITH shipping (origin_state, origin_zip, destination_state, destination_zip, package_weight) AS (VALUES ('California', 94131, 'New Jersey', 8648, 13), ('California', 94131, 'New Jersey', 8540, 42), ('New Jersey', 7081, 'Connecticut', 6708, 225), ('California', 90210, 'Connecticut', 6927, 1337), ('California', 94131, 'Colorado', 80302, 5), ('New York', 10002, 'New Jersey', 8540, 3)) SELECT origin_state, destination_state, sum(package_weight) FROM shipping GROUP BY CUBE (origin_state, destination_state)
-- => California | New Jersey | 55
-- => California | Colorado | 5
-- => New York | New Jersey | 3
-- => New Jersey | Connecticut | 225
-- => California | Connecticut | 1337
-- => California | NULL | 1397
-- => New York | NULL | 3
-- => New Jersey | NULL | 225
-- => NULL | New Jersey | 58
-- => NULL | Connecticut | 1562
-- => NULL | Colorado | 5
-- => NULL | NULL | 1625

-- function: ROLLUP
-- unordered
-- columns: origin_state, origin_zip, _col2
WITH shipping (origin_state, origin_zip, destination_state, destination_zip, package_weight) AS (VALUES ('California', 94131, 'New Jersey', 8648, 13), ('California', 94131, 'New Jersey', 8540, 42), ('New Jersey', 7081, 'Connecticut', 6708, 225), ('California', 90210, 'Connecticut', 6927, 1337), ('California', 94131, 'Colorado', 80302, 5), ('New York', 10002, 'New Jersey', 8540, 3)) SELECT origin_state, origin_zip, sum(package_weight) FROM shipping GROUP BY ROLLUP (origin_state, origin_zip)
-- => California | 94131 | 60
-- => California | 90210 | 1337
-- => New Jersey | 7081 | 225
-- => New York | 10002 | 3
-- => California | NULL | 1397
-- => New York | NULL | 3
-- => New Jersey | NULL | 225
-- => NULL | NULL | 1625

-- function: GROUPING SETS
-- combining grouping expressions: the cross product of the sets
-- unordered
WITH shipping (origin_state, origin_zip, destination_state, destination_zip, package_weight) AS (VALUES ('California', 94131, 'New Jersey', 8648, 13), ('California', 94131, 'New Jersey', 8540, 42), ('New Jersey', 7081, 'Connecticut', 6708, 225), ('California', 90210, 'Connecticut', 6927, 1337), ('California', 94131, 'Colorado', 80302, 5), ('New York', 10002, 'New Jersey', 8540, 3)) SELECT origin_state, destination_state, origin_zip, sum(package_weight) FROM shipping GROUP BY GROUPING SETS ((origin_state, destination_state)), ROLLUP (origin_zip)
-- => New York | New Jersey | 10002 | 3
-- => California | New Jersey | 94131 | 55
-- => New Jersey | Connecticut | 7081 | 225
-- => California | Connecticut | 90210 | 1337
-- => California | Colorado | 94131 | 5
-- => New York | New Jersey | NULL | 3
-- => New Jersey | Connecticut | NULL | 225
-- => California | Colorado | NULL | 5
-- => California | Connecticut | NULL | 1337
-- => California | New Jersey | NULL | 55

-- function: grouping
-- unordered
-- columns: origin_state, origin_zip, destination_state, _col3, _col4
WITH shipping (origin_state, origin_zip, destination_state, destination_zip, package_weight) AS (VALUES ('California', 94131, 'New Jersey', 8648, 13), ('California', 94131, 'New Jersey', 8540, 42), ('New Jersey', 7081, 'Connecticut', 6708, 225), ('California', 90210, 'Connecticut', 6927, 1337), ('California', 94131, 'Colorado', 80302, 5), ('New York', 10002, 'New Jersey', 8540, 3)) SELECT origin_state, origin_zip, destination_state, sum(package_weight), grouping(origin_state, origin_zip, destination_state) FROM shipping GROUP BY GROUPING SETS ((origin_state), (origin_state, origin_zip), (destination_state))
-- => California | NULL | NULL | 1397 | 3
-- => New Jersey | NULL | NULL | 225 | 3
-- => New York | NULL | NULL | 3 | 3
-- => California | 94131 | NULL | 60 | 1
-- => New Jersey | 7081 | NULL | 225 | 1
-- => California | 90210 | NULL | 1337 | 1
-- => New York | 10002 | NULL | 3 | 1
-- => NULL | NULL | New Jersey | 58 | 6
-- => NULL | NULL | Connecticut | 1562 | 6
-- => NULL | NULL | Colorado | 5 | 6

-- function: result column names
-- note: issue 13 — an unnamed expression is _col<position>, as in Athena
-- columns: _col0, one, _col2
SELECT count(*), 1 AS one, 'x' || 'y' FROM (VALUES 1) t(a)
-- => 1 | 1 | xy

-- function: result column names
-- columns: a, _col1
SELECT *, a + 1 FROM (VALUES 1) t(a)
-- => 1 | 2

-- function: WITH
WITH t AS (SELECT 1 AS x) SELECT x + 1 FROM t
-- => 2

-- function: VALUES
SELECT count(*) FROM (VALUES 1, 2, 3) t(x)
-- => 3

-- function: EXISTS
SELECT EXISTS (SELECT 1 WHERE false)
-- => false

-- function: IN (subquery)
SELECT 2 IN (SELECT x FROM (VALUES 1, 2) t(x))
-- => true

-- function: INTERSECT
SELECT * FROM (VALUES 1, 2, 3) t(x) INTERSECT SELECT * FROM (VALUES 2, 3, 4) u(y) ORDER BY 1
-- => 2
-- => 3

-- function: EXCEPT
SELECT * FROM (VALUES 1, 2, 3) t(x) EXCEPT SELECT * FROM (VALUES 2) u(y)  ORDER BY 1
-- => 1
-- => 3

-- function: ORDER BY ... NULLS
SELECT x FROM (VALUES 2, NULL, 1) t(x) ORDER BY x DESC NULLS LAST
-- => 2
-- => 1
-- => NULL

-- function: LIMIT / OFFSET
SELECT x FROM (VALUES 1, 2, 3, 4) t(x) ORDER BY x OFFSET 1 LIMIT 2
-- => 2
-- => 3
