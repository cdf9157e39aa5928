-- family: Array
-- source: https://trino.io/docs/current/functions/array.html

-- function: [] (subscript)
SELECT ARRAY[10, 20, 30][2]
-- => 20

-- function: ||
SELECT ARRAY[1] || ARRAY[2]
-- => [1, 2]

-- function: ||
SELECT ARRAY[1] || 2
-- => [1, 2]

-- function: ||
SELECT 2 || ARRAY[1]
-- => [2, 1]

-- function: all_match
SELECT all_match(ARRAY[1, 2, 3], x -> x > 0)
-- => true

-- function: any_match
SELECT any_match(ARRAY[1, 2, 3], x -> x > 2)
-- => true

-- function: none_match
SELECT none_match(ARRAY[1, 2, 3], x -> x > 5)
-- => true

-- function: array_distinct
SELECT array_distinct(ARRAY[1, 2, 2, 3, 1])
-- => [1, 2, 3]

-- function: array_intersect
SELECT array_sort(array_intersect(ARRAY[1, 2, 3], ARRAY[2, 3, 4]))
-- => [2, 3]

-- function: array_union
SELECT array_sort(array_union(ARRAY[1, 2], ARRAY[2, 3]))
-- => [1, 2, 3]

-- function: array_except
SELECT array_except(ARRAY[1, 2, 3], ARRAY[2])
-- => [1, 3]

-- function: array_histogram
SELECT array_histogram(ARRAY[42, 7, 42, NULL])
-- => {42=2, 7=1}

-- function: array_join
SELECT array_join(ARRAY['a', NULL, 'c'], ',', 'x')
-- => a,x,c

-- function: array_max
SELECT array_max(ARRAY[1, 5, 3])
-- => 5

-- function: array_min
SELECT array_min(ARRAY[1, 5, 3])
-- => 1

-- function: array_position
SELECT array_position(ARRAY[10, 20, 30], 20)
-- => 2

-- function: array_position
SELECT array_position(ARRAY[10, 20, 30], 40)
-- => 0

-- function: array_remove
SELECT array_remove(ARRAY[1, 2, 1, 3], 1)
-- => [2, 3]

-- function: array_sort
SELECT array_sort(ARRAY[3, NULL, 1, 2])
-- => [1, 2, 3, NULL]

-- function: array_sort
SELECT array_sort(ARRAY[3, 2, 5, 1, 2], (x, y) -> IF(x < y, 1, IF(x = y, 0, -1)))
-- => [5, 3, 2, 2, 1]
-- status: unsupported
-- note: array_sort with a comparator function: DuckDB sorts lists by value only; sort by value, or use reverse()

-- function: array_sort
SELECT array_sort(ARRAY['a', 'abcd', 'abc'], (x, y) -> IF(length(x) < length(y), -1, IF(length(x) = length(y), 0, 1)))
-- => [a, abc, abcd]
-- status: unsupported
-- note: array_sort with a comparator function: DuckDB sorts lists by value only; sort by value, or use reverse()

-- function: arrays_overlap
SELECT arrays_overlap(ARRAY[1, 2], ARRAY[2, 3])
-- => true

-- function: cardinality
SELECT cardinality(ARRAY[1, 2, 3])
-- => 3

-- function: concat
SELECT concat(ARRAY[1, 2], ARRAY[3], ARRAY[4, 5])
-- => [1, 2, 3, 4, 5]

-- function: combinations
SELECT combinations(ARRAY[1, 2, 3], 2)
-- => [[1, 2], [1, 3], [2, 3]]
-- status: unsupported
-- note: combinations is not implemented locally

-- function: contains
SELECT contains(ARRAY[1, 2, 3], 2)
-- => true

-- function: contains_sequence
SELECT contains_sequence(ARRAY[1, 2, 3, 4], ARRAY[2, 3])
-- => true
-- status: unsupported
-- note: contains_sequence is not implemented locally

-- function: element_at
SELECT element_at(ARRAY['a', 'b'], 2)
-- => b

-- function: element_at
SELECT element_at(ARRAY['a', 'b'], -1)
-- => b

-- function: element_at
SELECT element_at(ARRAY['a', 'b'], 5)
-- => NULL

-- function: filter
SELECT filter(ARRAY[5, -6, NULL, 7], x -> x > 0)
-- => [5, 7]

-- function: filter
SELECT filter(ARRAY[5, NULL, 7, NULL], x -> x IS NOT NULL)
-- => [5, 7]

-- function: flatten
SELECT flatten(ARRAY[ARRAY[1, 2], ARRAY[3]])
-- => [1, 2, 3]

-- function: ngrams
SELECT ngrams(ARRAY[1, 2, 3, 4], 2)
-- => [[1, 2], [2, 3], [3, 4]]
-- status: unsupported
-- note: ngrams is not implemented locally

-- function: reduce
SELECT reduce(ARRAY[5, 20, 50], 0, (s, x) -> s + x, s -> s)
-- => 75

-- function: reduce
SELECT reduce(ARRAY[5, 20, NULL, 50], 0, (s, x) -> s + x, s -> s)
-- => NULL

-- function: reduce
SELECT reduce(ARRAY[2147483647, 1], BIGINT '0', (s, x) -> s + x, s -> s)
-- => 2147483648

-- function: reduce
-- the output function applies to the final state
SELECT reduce(ARRAY[5, 6, 10, 20], CAST(ROW(0.0, 0) AS ROW(sum DOUBLE, count INTEGER)), (s, x) -> CAST(ROW(x + s.sum, s.count + 1) AS ROW(sum DOUBLE, count INTEGER)), s -> IF(s.count = 0, NULL, s.sum / s.count))
-- => 10.25

-- function: reduce
SELECT reduce(ARRAY[5, 20, NULL, 50], 0, (s, x) -> s + coalesce(x, 0), s -> s)
-- => 75

-- function: repeat
SELECT repeat('x', 3)
-- => [x, x, x]

-- function: reverse
SELECT reverse(ARRAY[1, 2, 3])
-- => [3, 2, 1]

-- function: sequence
SELECT sequence(1, 5)
-- => [1, 2, 3, 4, 5]

-- function: sequence
SELECT sequence(5, 1)
-- => [5, 4, 3, 2, 1]

-- function: sequence
SELECT sequence(1, 10, 3)
-- => [1, 4, 7, 10]

-- function: sequence
SELECT sequence(DATE '2024-01-30', DATE '2024-02-01')
-- => [2024-01-30, 2024-01-31, 2024-02-01]

-- function: slice
SELECT slice(ARRAY[1, 2, 3, 4], 2, 2)
-- => [2, 3]

-- function: trim_array
SELECT trim_array(ARRAY[1, 2, 3, 4], 1)
-- => [1, 2, 3]

-- function: trim_array
SELECT trim_array(ARRAY[1, 2, 3, 4], 2)
-- => [1, 2]

-- function: transform
SELECT transform(ARRAY[5, 6], x -> x + 1)
-- => [6, 7]

-- function: transform
SELECT transform(ARRAY[5, NULL, 6], x -> coalesce(x, 0) + 1)
-- => [6, 1, 7]

-- function: transform
SELECT transform(ARRAY['x', 'abc', 'z'], x -> x || '0')
-- => [x0, abc0, z0]

-- function: zip_with
SELECT zip_with(ARRAY[1, 2], ARRAY[3, 4], (x, y) -> x + y)
-- => [4, 6]

-- function: zip_with
SELECT zip_with(ARRAY['a', 'b', 'c'], ARRAY['d', 'e', 'f'], (x, y) -> concat(x, y))
-- => [ad, be, cf]
