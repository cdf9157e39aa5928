-- family: String
-- source: https://trino.io/docs/current/functions/string.html
-- Results as the Trino CLI prints them (strings unquoted). Where the page gives no example,
-- the case applies the page's one-line definition to a literal.

-- function: ||
SELECT 'ab' || 'cd'
-- => abcd

-- function: chr
SELECT chr(65)
-- => A

-- function: codepoint
SELECT codepoint('A')
-- => 65

-- function: concat
SELECT concat('a', 'b', 'c')
-- => abc

-- function: concat_ws
SELECT concat_ws(',', 'a', NULL, 'b')
-- => a,b

-- function: hamming_distance
SELECT hamming_distance('abcde', 'abcdf')
-- => 1

-- function: length
SELECT length('hello')
-- => 5

-- function: levenshtein_distance
SELECT levenshtein_distance('kitten', 'sitting')
-- => 3

-- function: lower
SELECT lower('HeLLo')
-- => hello

-- function: upper
SELECT upper('HeLLo')
-- => HELLO

-- function: lpad
SELECT lpad('abc', 5, 'x')
-- => xxabc

-- function: lpad
SELECT lpad('abcdef', 3, 'x')
-- => abc

-- function: rpad
SELECT rpad('abc', 5, 'x')
-- => abcxx

-- function: ltrim
SELECT ltrim('  abc  ') || '|'
-- => abc  |

-- function: rtrim
SELECT '|' || rtrim('  abc  ')
-- => |  abc

-- function: luhn_check
SELECT luhn_check('79927398713')
-- => true
-- status: unsupported
-- note: luhn_check is not implemented locally

-- function: position
SELECT position('n' IN 'Trino')
-- => 4

-- function: replace
SELECT replace('abcabc', 'b')
-- => acac

-- function: replace
SELECT replace('abcabc', 'b', 'x')
-- => axcaxc

-- function: reverse
SELECT reverse('abc')
-- => cba

-- function: split
SELECT split('a.b.c', '.')
-- => [a, b, c]

-- function: split
SELECT split('a.b.c', '.', 2)
-- => [a, b.c]

-- function: split_part
SELECT split_part('a.b.c', '.', 2)
-- => b

-- function: split_part
SELECT split_part('a.b.c', '.', 5)
-- => NULL

-- function: split_to_map
SELECT split_to_map('a=1,b=2', ',', '=')
-- => {a=1, b=2}

-- function: split_to_multimap
SELECT split_to_multimap('a=1,a=2,b=3', ',', '=')
-- => {a=[1, 2], b=[3]}
-- status: unsupported
-- note: split_to_multimap is not implemented locally

-- function: strpos
SELECT strpos('hello', 'l')
-- => 3

-- function: strpos
SELECT strpos('hello', 'z')
-- => 0

-- function: strpos
SELECT strpos('hello hello', 'l', 3)
-- => 9

-- function: starts_with
SELECT starts_with('hello', 'he')
-- => true

-- function: substr
SELECT substr('hello', 2)
-- => ello

-- function: substring
SELECT substring('hello', 2, 3)
-- => ell

-- function: substring
SELECT substring('hello', -3)
-- => llo

-- function: translate
SELECT translate('abcd', '', '')
-- => abcd

-- function: translate
SELECT translate('abcd', 'a', 'z')
-- => zbcd

-- function: translate
SELECT translate('abcda', 'a', 'z')
-- => zbcdz

-- function: translate
SELECT translate('Palhoça', 'ç','c')
-- => Palhoca

-- function: translate
SELECT translate('abcd', 'a', '')
-- => bcd

-- function: translate
SELECT translate('abcd', 'a', 'zy')
-- => zbcd

-- function: translate
SELECT translate('abcd', 'ac', 'z')
-- => zbd

-- function: translate
SELECT translate('abcd', 'aac', 'zq')
-- => zbd

-- function: trim
SELECT trim('!' FROM '!foo!')
-- => foo

-- function: trim
SELECT trim(LEADING FROM '  abcd')
-- => abcd

-- function: trim
SELECT trim(BOTH '$' FROM '$var$')
-- => var

-- function: trim
SELECT trim(TRAILING 'ER' FROM upper('worker'))
-- => WORK

-- function: soundex
SELECT soundex('CHYNA') = soundex('CHINA')
-- => true
-- status: unsupported
-- note: soundex is not implemented locally

-- function: word_stem
SELECT word_stem('running')
-- => run
-- status: unsupported
-- note: word_stem is not implemented locally

-- function: normalize
SELECT normalize('e' || chr(769)) = chr(233)
-- => true

-- function: to_utf8
SELECT to_utf8('abc')
-- => 61 62 63

-- function: from_utf8
SELECT from_utf8(to_utf8('abc'))
-- => abc

-- function: LIKE
SELECT 'abc' LIKE 'a%', 'abc' LIKE '_b_', 'abc' LIKE 'b%'
-- => true | true | false
