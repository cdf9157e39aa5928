-- family: JSON
-- source: https://trino.io/docs/current/functions/json.html

-- function: json_extract_scalar
SELECT json_extract_scalar('[1, 2, 3]', '$[2]')
-- => 3

-- function: json_extract_scalar
SELECT json_extract_scalar('{"store": {"book": [{"author": "Nigel Rees"}]}}', '$.store.book[0].author')
-- => Nigel Rees

-- function: json_extract_scalar
-- note: issue 13 — a long decimal keeps its exact text (Trino returns the literal as written)
SELECT json_extract_scalar('{"a": 0.12345678901234567890123}', '$.a')
-- => 0.12345678901234567890123

-- function: json_extract_scalar
SELECT json_extract_scalar('{"a": 12345678901234567.5}', '$.a')
-- => 12345678901234567.5

-- function: json_extract_scalar
-- the value must be a scalar: an object or an array gives NULL
SELECT json_extract_scalar('{"a": {"b": 1}}', '$.a'), json_extract_scalar('{"a": [1, 2]}', '$.a')
-- => NULL | NULL

-- function: json_extract_scalar
SELECT json_extract_scalar('{"a b": true}', '$["a b"]')
-- => true

-- function: json_array_contains
SELECT json_array_contains('[1, 2, 3]', 2)
-- => true

-- function: json_array_contains
SELECT json_array_contains('["a", "b"]', 'c')
-- => false

-- function: json_array_get
SELECT json_array_get('["a", [3, 9], "c"]', 1)
-- => [3,9]

-- function: json_array_get
SELECT json_array_get('[]', 0)
-- => NULL

-- function: json_array_length
SELECT json_array_length('[1, 2, 3]')
-- => 3

-- function: is_json_scalar
SELECT is_json_scalar('1'), is_json_scalar('[1, 2, 3]')
-- => true | false

-- function: json_format
SELECT json_format(json_parse('[1, 2, 3]'))
-- => [1,2,3]

-- function: json_parse
SELECT json_format(json_parse('{"a": 1}'))
-- => {"a":1}

-- function: json_size
SELECT json_size('{"x": {"a": 1, "b": 2}}', '$.x')
-- => 2

-- function: json_size
SELECT json_size('{"x": [1, 2, 3]}', '$.x')
-- => 3

-- function: CAST(... AS JSON)
SELECT CAST(ARRAY[1, 23, 456] AS JSON)
-- => [1,23,456]

-- function: CAST(JSON AS ...)
SELECT CAST(JSON '[1,23,456]' AS ARRAY(INTEGER))
-- => [1, 23, 456]

-- function: CAST(JSON AS ...)
SELECT CAST(JSON '{"k1":1,"k2":23,"k3":456}' AS MAP(VARCHAR, INTEGER))
-- => {k1=1, k2=23, k3=456}

-- function: json_query
SELECT json_query('{"key" : [  "value"  ]}', 'lax $.key')
-- => ["value"]
-- status: unsupported
-- note: the SQL/JSON path functions (json_query, json_value, json_exists) are not implemented locally; use json_extract / json_extract_scalar

-- function: json_value
SELECT json_value('{"a": 1}', 'lax $.a')
-- => 1
-- status: unsupported
-- note: the SQL/JSON path functions (json_query, json_value, json_exists) are not implemented locally; use json_extract / json_extract_scalar

-- function: json_exists
SELECT json_exists('{"a": 1}', 'lax $.a')
-- => true
-- status: unsupported
-- note: the SQL/JSON path functions (json_query, json_value, json_exists) are not implemented locally; use json_extract / json_extract_scalar
