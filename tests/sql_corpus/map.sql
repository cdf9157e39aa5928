-- family: Map
-- source: https://trino.io/docs/current/functions/map.html

-- function: [] (subscript)
SELECT MAP(ARRAY['Bob', 'Ann'], ARRAY[30, 40])['Bob']
-- => 30

-- function: cardinality
SELECT cardinality(MAP(ARRAY['a', 'b'], ARRAY[1, 2]))
-- => 2

-- function: element_at
SELECT element_at(MAP(ARRAY['k'], ARRAY[1]), 'missing')
-- => NULL

-- function: map
SELECT map()
-- => {}

-- function: map
SELECT map(ARRAY[1,3], ARRAY[2,4])
-- => {1=2, 3=4}

-- function: map_from_entries
SELECT map_from_entries(ARRAY[(1, 'x'), (2, 'y')])
-- => {1=x, 2=y}

-- function: multimap_from_entries
SELECT multimap_from_entries(ARRAY[(1, 'x'), (2, 'y'), (1, 'z')])
-- => {1=[x, z], 2=[y]}
-- status: unsupported
-- note: multimap_from_entries is not implemented locally

-- function: map_entries
SELECT map_entries(MAP(ARRAY[1, 2], ARRAY['x', 'y']))
-- => [{1, x}, {2, y}]
-- status: difference
-- local => [{key=1, value=x}, {key=2, value=y}]
-- note: an entry is a row with fields named key and value locally (e.key, e.value), an anonymous row in Athena (e[1], e[2])

-- function: map_concat
SELECT map_concat(MAP(ARRAY['a', 'b'], ARRAY[1, 2]), MAP(ARRAY['b', 'c'], ARRAY[3, 4]))
-- => {a=1, b=3, c=4}

-- function: map_filter
SELECT map_filter(MAP(ARRAY[10, 20, 30], ARRAY['a', NULL, 'c']), (k, v) -> v IS NOT NULL)
-- => {10=a, 30=c}

-- function: map_filter
SELECT map_filter(MAP(ARRAY['k1', 'k2', 'k3'], ARRAY[20, 3, 15]), (k, v) -> v > 10)
-- => {k1=20, k3=15}

-- function: map_keys
SELECT map_keys(MAP(ARRAY['a', 'b'], ARRAY[1, 2]))
-- => [a, b]

-- function: map_values
SELECT map_values(MAP(ARRAY['a', 'b'], ARRAY[1, 2]))
-- => [1, 2]

-- function: map_zip_with
SELECT map_zip_with(MAP(ARRAY[1, 2, 3], ARRAY['a', 'b', 'c']), MAP(ARRAY[1, 2, 3], ARRAY['d', 'e', 'f']), (k, v1, v2) -> concat(v1, v2))
-- => {1=ad, 2=be, 3=cf}
-- status: unsupported
-- note: map_zip_with is not implemented locally

-- function: transform_keys
SELECT transform_keys(MAP(ARRAY [1, 2, 3], ARRAY ['a', 'b', 'c']), (k, v) -> k + 1)
-- => {2=a, 3=b, 4=c}

-- function: transform_keys
SELECT transform_keys(MAP(ARRAY ['a', 'b'], ARRAY [1, 2]), (k, v) -> k || CAST(v as VARCHAR))
-- => {a1=1, b2=2}

-- function: transform_values
SELECT transform_values(MAP(ARRAY [1, 2, 3], ARRAY [10, 20, 30]), (k, v) -> v + k)
-- => {1=11, 2=22, 3=33}

-- function: transform_values
SELECT transform_values(MAP(ARRAY ['a', 'b'], ARRAY [1, 2]), (k, v) -> k || CAST(v as VARCHAR))
-- => {a=a1, b=b2}
