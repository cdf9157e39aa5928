-- family: Date and time
-- source: https://trino.io/docs/current/functions/datetime.html

-- function: + (date and time)
SELECT date '2012-08-08' + interval '2' day
-- => 2012-08-10
-- status: difference
-- local => 2012-08-10 00:00:00
-- note: a date plus or minus an interval is a timestamp (at midnight) locally, a date in Athena; CAST(... AS date) gives Athena's value

-- function: + (date and time)
SELECT timestamp '2012-08-08 01:00' + interval '29' hour
-- => 2012-08-09 06:00:00.000

-- function: + (date and time)
SELECT timestamp '2012-10-31 01:00' + interval '1' month
-- => 2012-11-30 01:00:00.000

-- function: - (date and time)
SELECT date '2012-08-08' - interval '2' day
-- => 2012-08-06
-- status: difference
-- local => 2012-08-06 00:00:00
-- note: a date plus or minus an interval is a timestamp (at midnight) locally, a date in Athena; CAST(... AS date) gives Athena's value

-- function: - (date and time)
SELECT timestamp '2012-10-31 01:00' - interval '1' month
-- => 2012-09-30 01:00:00.000

-- function: AT TIME ZONE
SELECT timestamp '2012-10-31 01:00 UTC'
-- => 2012-10-31 01:00:00.000 UTC

-- function: AT TIME ZONE
SELECT timestamp '2012-10-31 01:00 UTC' AT TIME ZONE 'America/Los_Angeles'
-- => 2012-10-30 18:00:00.000 America/Los_Angeles
-- status: difference
-- local => 2012-10-30 18:00:00
-- note: the local engine keeps no time zone with a timestamp: the wall-clock time in the zone is right, the zone name is not kept

-- function: date
SELECT date('2024-05-01')
-- => 2024-05-01

-- function: last_day_of_month
SELECT last_day_of_month(DATE '2024-02-10')
-- => 2024-02-29

-- function: from_iso8601_timestamp
SELECT from_iso8601_timestamp('2020-05-11T11:15:05.055+01:00')
-- => 2020-05-11 11:15:05.055 +01:00
-- status: difference
-- local => 2020-05-11 10:15:05.055 UTC
-- note: the same instant, shown in UTC: the local engine keeps no time zone with a timestamp

-- function: from_iso8601_date
SELECT from_iso8601_date('2020-05-11')
-- => 2020-05-11

-- function: at_timezone
SELECT at_timezone(TIMESTAMP '2022-11-01 09:08:07.321', 'America/Los_Angeles')
-- => 2022-11-01 02:08:07.321 America/Los_Angeles
-- status: unsupported
-- note: at_timezone and with_timezone need a time zone kept with the value; use AT TIME ZONE

-- function: with_timezone
SELECT with_timezone(TIMESTAMP '2022-11-01 09:08:07.321', 'America/Los_Angeles')
-- => 2022-11-01 09:08:07.321 America/Los_Angeles
-- status: unsupported
-- note: at_timezone and with_timezone need a time zone kept with the value; use AT TIME ZONE

-- function: from_unixtime
SELECT from_unixtime(86400)
-- => 1970-01-02 00:00:00.000 UTC

-- function: from_unixtime_nanos
SELECT from_unixtime_nanos(100)
-- => 1970-01-01 00:00:00.000000100 UTC
-- status: unsupported
-- note: nanosecond timestamps are not kept locally

-- function: from_iso8601_timestamp_nanos
SELECT from_iso8601_timestamp_nanos('2020-05-11T11:15:05.123456789+01:00')
-- => 2020-05-11 11:15:05.123456789 +01:00
-- status: unsupported
-- note: nanosecond timestamps are not kept locally

-- function: to_iso8601
SELECT to_iso8601(DATE '2020-05-11')
-- => 2020-05-11
-- status: unsupported
-- note: to_iso8601 is not implemented locally; format_datetime(x, 'yyyy-MM-dd''T''HH:mm:ss.SSS') gives the text

-- function: to_milliseconds
SELECT to_milliseconds(interval '1' day)
-- => 86400000

-- function: to_unixtime
SELECT to_unixtime(TIMESTAMP '1970-01-02 00:00:00 UTC')
-- => 86400.0

-- function: date_trunc
SELECT date_trunc('day' , TIMESTAMP '2022-10-20 05:10:00')
-- => 2022-10-20 00:00:00.000

-- function: date_trunc
SELECT date_trunc('month' , TIMESTAMP '2022-10-20 05:10:00')
-- => 2022-10-01 00:00:00.000

-- function: date_trunc
SELECT date_trunc('year', TIMESTAMP '2022-10-20 05:10:00')
-- => 2022-01-01 00:00:00.000

-- function: date_trunc
SELECT date_trunc('week', TIMESTAMP '2001-08-22 03:04:05.321')
-- => 2001-08-20 00:00:00.000

-- function: date_trunc
SELECT date_trunc('quarter', TIMESTAMP '2001-08-22 03:04:05.321')
-- => 2001-07-01 00:00:00.000

-- function: date_add
SELECT date_add('second', 86, TIMESTAMP '2020-03-01 00:00:00')
-- => 2020-03-01 00:01:26.000

-- function: date_add
SELECT date_add('hour', 9, TIMESTAMP '2020-03-01 00:00:00')
-- => 2020-03-01 09:00:00.000

-- function: date_diff
SELECT date_diff('second', TIMESTAMP '2020-03-01 00:00:00', TIMESTAMP '2020-03-02 00:00:00')
-- => 86400

-- function: date_diff
SELECT date_diff('day', DATE '2020-03-01', DATE '2020-03-02')
-- => 1

-- function: parse_duration
SELECT parse_duration('5m')
-- => 0 00:05:00.000
-- status: unsupported
-- note: parse_duration is not implemented locally

-- function: human_readable_seconds
SELECT human_readable_seconds(96)
-- => 1 minute, 36 seconds
-- status: unsupported
-- note: human_readable_seconds is not implemented locally

-- function: date_format
SELECT date_format(TIMESTAMP '2022-10-20 05:10:00', '%m-%d-%Y %H')
-- => 10-20-2022 05

-- function: date_parse
SELECT date_parse('2022/10/20/05', '%Y/%m/%d/%H')
-- => 2022-10-20 05:00:00.000

-- function: format_datetime
-- note: issue 13 — missing locally before; Joda-Time patterns
SELECT format_datetime(TIMESTAMP '2022-10-20 05:10:00', 'yyyy-MM-dd HH:mm:ss')
-- => 2022-10-20 05:10:00

-- function: format_datetime
SELECT format_datetime(TIMESTAMP '2022-10-20 05:10:00.123', 'EEE, d MMM yyyy h:mm a, SSS')
-- => Thu, 20 Oct 2022 5:10 AM, 123

-- function: parse_datetime
SELECT parse_datetime('2022-10-20 05:10', 'yyyy-MM-dd HH:mm')
-- => 2022-10-20 05:10:00.000 UTC
-- status: unsupported
-- note: parse_datetime (Joda-Time patterns) is not implemented locally; use date_parse

-- function: extract
SELECT extract(YEAR FROM TIMESTAMP '2022-10-20 05:10:00')
-- => 2022

-- function: day
SELECT day(DATE '2022-10-20')
-- => 20

-- function: day_of_week
SELECT day_of_week(DATE '2022-10-23')
-- => 7

-- function: day_of_year
SELECT day_of_year(DATE '2022-02-01')
-- => 32

-- function: hour
SELECT hour(TIMESTAMP '2022-10-20 05:10:00')
-- => 5

-- function: minute
SELECT minute(TIMESTAMP '2022-10-20 05:10:00')
-- => 10

-- function: second
SELECT second(TIMESTAMP '2022-10-20 05:10:09')
-- => 9

-- function: millisecond
SELECT millisecond(TIMESTAMP '2022-10-20 05:10:09.123')
-- => 123

-- function: month
SELECT month(DATE '2022-10-20')
-- => 10

-- function: quarter
SELECT quarter(DATE '2022-10-20')
-- => 4

-- function: week
SELECT week(DATE '2022-01-01')
-- => 52

-- function: year
SELECT year(DATE '2022-10-20')
-- => 2022

-- function: year_of_week
SELECT year_of_week(DATE '2022-01-01')
-- => 2021
