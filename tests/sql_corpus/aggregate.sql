-- family: Aggregate and approximate aggregate
-- source: https://trino.io/docs/current/functions/aggregate.html

-- function: FILTER
SELECT count(*) FILTER (WHERE x > 1) FROM (VALUES 1, 2, 3) t(x)
-- => 2

-- function: any_value
SELECT any_value(x) FROM (VALUES 7, 7) t(x)
-- => 7

-- function: arbitrary
SELECT arbitrary(x) FROM (VALUES 7, 7) t(x)
-- => 7

-- function: array_agg
SELECT array_agg(x ORDER BY x DESC) FROM (VALUES 1, 3, 2) t(x)
-- => [3, 2, 1]

-- function: avg
SELECT avg(x) FROM (VALUES 1, 2, 3, 4) t(x)
-- => 2.5

-- function: bool_and
SELECT bool_and(x) FROM (VALUES true, false) t(x)
-- => false

-- function: bool_or
SELECT bool_or(x) FROM (VALUES true, false) t(x)
-- => true

-- function: every
SELECT every(x) FROM (VALUES true, true) t(x)
-- => true

-- function: count
SELECT count(*), count(x) FROM (VALUES 1, NULL, 3) t(x)
-- => 3 | 2

-- function: count_if
SELECT count_if(x > 1) FROM (VALUES 1, 2, 3) t(x)
-- => 2

-- function: geometric_mean
SELECT geometric_mean(x) FROM (VALUES 2.0, 8.0) t(x)
-- => 4.0

-- function: listagg
SELECT listagg(value, ',') WITHIN GROUP (ORDER BY value) csv_value FROM (VALUES 'a', 'c', 'b') t(value)
-- => a,b,c

-- function: listagg
-- unordered
SELECT id, LISTAGG(value, ',') WITHIN GROUP (ORDER BY o) csv_value FROM (VALUES (100, 1, 'a'), (200, 3, 'c'), (200, 2, 'b')) t(id, o, value) GROUP BY id ORDER BY id
-- => 100 | a
-- => 200 | b,c

-- function: max
SELECT max(x) FROM (VALUES 1, 5, 3) t(x)
-- => 5

-- function: max
SELECT max(x, 2) FROM (VALUES 1, 5, 3) t(x)
-- => [5, 3]

-- function: max_by
SELECT max_by(name, score) FROM (VALUES ('a', 1), ('b', 3), ('c', 2)) t(name, score)
-- => b

-- function: min
SELECT min(x) FROM (VALUES 1, 5, 3) t(x)
-- => 1

-- function: min_by
SELECT min_by(name, score) FROM (VALUES ('a', 1), ('b', 3), ('c', 2)) t(name, score)
-- => a

-- function: min_by
SELECT min_by(name, score, 2) FROM (VALUES ('a', 1), ('b', 3), ('c', 2)) t(name, score)
-- => [a, c]

-- function: sum
SELECT sum(x) FROM (VALUES 1, 2, 3) t(x)
-- => 6

-- function: sum
SELECT sum(x) FROM (VALUES CAST(NULL AS integer)) t(x)
-- => NULL

-- function: bitwise_and_agg
SELECT bitwise_and_agg(x) FROM (VALUES 7, 3) t(x)
-- => 3

-- function: bitwise_or_agg
SELECT bitwise_or_agg(x) FROM (VALUES 4, 1) t(x)
-- => 5

-- function: histogram
SELECT histogram(x) FROM (VALUES 'a', 'b', 'a') t(x)
-- => {a=2, b=1}

-- function: map_agg
-- note: issue 13 — missing locally before
SELECT map_agg(k, v) FROM (VALUES ('a', 1), ('b', 2)) t(k, v)
-- => {a=1, b=2}

-- function: map_union
SELECT map_union(m) FROM (VALUES MAP(ARRAY['a'], ARRAY[1]), MAP(ARRAY['b'], ARRAY[2])) t(m)
-- => {a=1, b=2}
-- status: unsupported
-- note: map_union is not implemented locally

-- function: multimap_agg
SELECT multimap_agg(k, v) FROM (VALUES ('a', 1), ('a', 2)) t(k, v)
-- => {a=[1, 2]}
-- status: unsupported
-- note: multimap_agg is not implemented locally

-- function: approx_distinct
SELECT approx_distinct(x) FROM (VALUES 1, 2, 2, 3) t(x)
-- => 3

-- function: approx_most_frequent
SELECT approx_most_frequent(2, x, 10) FROM (VALUES 'a', 'a', 'b') t(x)
-- => {a=2, b=1}
-- status: unsupported
-- note: approx_most_frequent has no local sketch

-- function: approx_percentile
SELECT approx_percentile(x, 0.5) FROM (VALUES 1, 2, 3, 4, 5) t(x)
-- => 3

-- function: approx_percentile
-- note: issue 13 — a decimal column is read as a double, as Trino does: no floating-point noise shown as decimal digits
SELECT approx_percentile(x, 0.5), typeof(approx_percentile(x, 0.5)) FROM (VALUES CAST(0.1 AS decimal(38,18)), CAST(0.2 AS decimal(38,18)), CAST(0.3 AS decimal(38,18))) t(x)
-- => 0.2 | double

-- function: approx_set
SELECT cardinality(approx_set(x)) FROM (VALUES 1, 2) t(x)
-- => 2
-- status: unsupported
-- note: HyperLogLog values are Trino's own type

-- function: numeric_histogram
SELECT numeric_histogram(2, x) FROM (VALUES 1.0, 2.0) t(x)
-- => {1.0=1.0, 2.0=1.0}
-- status: unsupported
-- note: numeric_histogram is not implemented locally

-- function: tdigest_agg
SELECT value_at_quantile(tdigest_agg(x), 0.5) FROM (VALUES 1.0, 2.0, 3.0) t(x)
-- => 2.0
-- status: unsupported
-- note: T-Digest values are Trino's own type

-- function: checksum
SELECT checksum(x) FROM (VALUES 1) t(x)
-- => 2d 51 d4 1d 3d 2c 38 33
-- status: unsupported
-- note: checksum is Trino's own hash

-- function: reduce_agg
SELECT reduce_agg(x, 0, (a, b) -> a + b, (a, b) -> a + b) FROM (VALUES 1, 2, 3) t(x)
-- => 6
-- status: unsupported
-- note: reduce_agg is not implemented locally

-- function: corr
SELECT corr(y, x) FROM (VALUES (1, 2), (2, 4), (3, 6)) t(x, y)
-- => 1.0

-- function: covar_pop
SELECT covar_pop(y, x) FROM (VALUES (1, 1), (3, 3)) t(x, y)
-- => 1.0

-- function: covar_samp
SELECT covar_samp(y, x) FROM (VALUES (1, 1), (3, 3)) t(x, y)
-- => 2.0

-- function: regr_slope
SELECT regr_slope(y, x) FROM (VALUES (1, 2), (2, 4), (3, 6)) t(x, y)
-- => 2.0

-- function: regr_intercept
SELECT regr_intercept(y, x) FROM (VALUES (1, 3), (2, 5), (3, 7)) t(x, y)
-- => 1.0

-- function: stddev
SELECT stddev(x) FROM (VALUES 1, 3) t(x)
-- => 1.4142135623730951

-- function: stddev_pop
SELECT stddev_pop(x) FROM (VALUES 1, 3) t(x)
-- => 1.0

-- function: variance
SELECT variance(x) FROM (VALUES 1, 3) t(x)
-- => 2.0

-- function: var_pop
SELECT var_pop(x) FROM (VALUES 1, 3) t(x)
-- => 1.0
