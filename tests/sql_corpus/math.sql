-- family: Math
-- source: https://trino.io/docs/current/functions/math.html

-- function: / (integer division)
SELECT 7 / 2, -7 / 2, 7.0 / 2
-- => 3 | -3 | 3.5

-- function: %
SELECT 7 % 3
-- => 1

-- function: abs
SELECT abs(-5)
-- => 5

-- function: cbrt
SELECT cbrt(27.0)
-- => 3.0

-- function: ceiling
SELECT ceiling(1.2), ceil(-1.2)
-- => 2 | -1

-- function: degrees
SELECT degrees(pi())
-- => 180.0

-- function: e
SELECT e()
-- => 2.718281828459045

-- function: exp
SELECT exp(0)
-- => 1.0

-- function: floor
SELECT floor(1.7), floor(-1.2)
-- => 1 | -2

-- function: ln
SELECT ln(1)
-- => 0.0

-- function: log
SELECT log(2, 8)
-- => 3.0

-- function: log2
SELECT log2(8)
-- => 3.0

-- function: log10
SELECT log10(1000)
-- => 3.0

-- function: mod
SELECT mod(7, 3)
-- => 1

-- function: pi
SELECT pi()
-- => 3.141592653589793

-- function: power
SELECT power(2, 10), pow(2, 3)
-- => 1024.0 | 8.0

-- function: radians
SELECT radians(180)
-- => 3.141592653589793

-- function: round
SELECT round(2.5), round(-2.5), round(1.234, 2)
-- => 3 | -3 | 1.230
-- status: difference
-- local => 3 | -3 | 1.23
-- note: rounding a decimal to d places gives a decimal of scale d locally (1.23), of the input's scale in Athena (1.230); the values are equal

-- function: sign
SELECT sign(-3), sign(0), sign(2.5)
-- => -1 | 0 | 1.0
-- status: difference
-- local => -1 | 0 | 1
-- note: sign of a decimal is an integer locally (1), a decimal of the input's type in Athena (1.0); the values are equal

-- function: sqrt
SELECT sqrt(16)
-- => 4.0

-- function: truncate
SELECT truncate(DOUBLE '2.7'), truncate(DOUBLE '-2.7')
-- => 2.0 | -2.0

-- function: width_bucket
SELECT width_bucket(5.3, 0.2, 10.6, 5)
-- => 3

-- function: random
SELECT random() >= 0 AND random() < 1
-- => true

-- function: cos
SELECT cos(0)
-- => 1.0

-- function: sin
SELECT sin(0)
-- => 0.0

-- function: atan2
SELECT atan2(0, 1)
-- => 0.0

-- function: tanh
SELECT tanh(0)
-- => 0.0

-- function: infinity
SELECT infinity(), is_infinite(infinity()), is_finite(1.0)
-- => Infinity | true | true

-- function: nan
SELECT is_nan(nan())
-- => true

-- function: from_base
SELECT from_base('ff', 16)
-- => 255

-- function: to_base
SELECT to_base(255, 16)
-- => ff

-- function: cosine_similarity
SELECT cosine_similarity(MAP(ARRAY['a'], ARRAY[1.0]), MAP(ARRAY['a'], ARRAY[2.0]))
-- => 1.0
-- status: unsupported
-- note: cosine_similarity is not implemented locally
