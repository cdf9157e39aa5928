-- family: Regular expression
-- source: https://trino.io/docs/current/functions/regexp.html

-- function: regexp_count
SELECT regexp_count('1a 2b 14m', '\s*[a-z]+\s*')
-- => 3

-- function: regexp_extract_all
SELECT regexp_extract_all('1a 2b 14m', '\d+')
-- => [1, 2, 14]

-- function: regexp_extract_all
SELECT regexp_extract_all('1a 2b 14m', '(\d+)([a-z]+)', 2)
-- => [a, b, m]

-- function: regexp_extract
SELECT regexp_extract('1a 2b 14m', '\d+')
-- => 1

-- function: regexp_extract
SELECT regexp_extract('1a 2b 14m', '(\d+)([a-z]+)', 2)
-- => a

-- function: regexp_like
SELECT regexp_like('1a 2b 14m', '\d+b')
-- => true

-- function: regexp_position
SELECT regexp_position('I have 23 apples, 5 pears and 13 oranges', '\b\d+\b')
-- => 8

-- function: regexp_position
SELECT regexp_position('I have 23 apples, 5 pears and 13 oranges', '\b\d+\b', 12)
-- => 19

-- function: regexp_position
SELECT regexp_position('I have 23 apples, 5 pears and 13 oranges', '\b\d+\b', 12, 2)
-- => 31

-- function: regexp_replace
SELECT regexp_replace('1a 2b 14m', '\d+[ab] ')
-- => 14m

-- function: regexp_replace
SELECT regexp_replace('1a 2b 14m', '(\d+)([ab]) ', '3c$2 ')
-- => 3ca 3cb 14m

-- function: regexp_replace
SELECT regexp_replace('new york', '(\w)(\w*)', x -> upper(x[1]) || lower(x[2]))
-- => New York
-- status: unsupported
-- note: regexp_replace with a lambda is not supported locally

-- function: regexp_split
SELECT regexp_split('1a 2b 14m', '\s*[a-z]+\s*')
-- => [1, 2, 14, ]
