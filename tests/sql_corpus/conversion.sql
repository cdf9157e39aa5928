-- family: Type conversion
-- source: https://trino.io/docs/current/functions/conversion.html

-- function: cast
SELECT CAST('42' AS bigint), CAST(42 AS varchar)
-- => 42 | 42

-- function: cast
SELECT CAST('0.12345678901234567890123' AS decimal(38,30))
-- => 0.123456789012345678901230000000

-- function: try_cast
SELECT try_cast('x' AS bigint)
-- => NULL

-- function: format
SELECT format('%s%%', 123)
-- => 123%

-- function: format
SELECT format('%.5f', pi())
-- => 3.14159

-- function: format
SELECT format('%03d', 8)
-- => 008

-- function: format
SELECT format('%-7s,%7s', 'hello', 'world')
-- => hello  ,  world

-- function: format_number
SELECT format_number(123456)
-- => 123K
-- status: unsupported
-- note: format_number is not implemented locally

-- function: parse_data_size
SELECT parse_data_size('1kB')
-- => 1024

-- function: typeof
-- note: issue 13 — type names are Trino's, not DuckDB's
SELECT typeof(123)
-- => integer

-- function: typeof
SELECT typeof('cat')
-- => varchar(3)

-- function: typeof
SELECT typeof(cos(2) + 1.5)
-- => double

-- function: typeof
SELECT typeof(ARRAY[1, 2]), typeof(1.5), typeof(MAP(ARRAY['a'], ARRAY[1]))
-- => array(integer) | decimal(2,1) | map(varchar, integer)
