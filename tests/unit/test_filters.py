"""Lambda event-filtering patterns: every operator, arrays, nesting, Kinesis data, errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from lake.errors import TerminalError
from lake.filters import FilterError, compile_filters, filter_view, matches, parse_pattern

DDB_RECORD: dict[str, Any] = {
    "eventID": "1",
    "eventName": "MODIFY",
    "eventSource": "aws:dynamodb",
    "dynamodb": {
        "Keys": {"pk": {"S": "ORDER#1"}},
        "NewImage": {"pk": {"S": "ORDER#1"}, "status": {"S": "shipped"}, "qty": {"N": "3"}},
        "OldImage": {"pk": {"S": "ORDER#1"}, "status": {"S": "pending"}, "qty": {"N": "3"}},
        "SequenceNumber": "100",
    },
}


def kinesis_record(payload: Any, raw: bytes | None = None) -> dict[str, Any]:
    data = raw if raw is not None else json.dumps(payload).encode()
    return {
        "kinesis": {"partitionKey": "p1", "sequenceNumber": "49", "data": base64.b64encode(data).decode(),
                    "kinesisSchemaVersion": "1.0", "approximateArrivalTimestamp": 1.5},
        "eventSource": "aws:kinesis",
        "eventName": "aws:kinesis:record",
    }


# -- exact values ------------------------------------------------------------------------------

def test_exact_string_list_is_an_or() -> None:
    assert matches({"eventName": ["INSERT", "MODIFY"]}, DDB_RECORD)
    assert not matches({"eventName": ["INSERT", "REMOVE"]}, DDB_RECORD)


def test_nested_objects_descend_like_the_record() -> None:
    pattern = {"dynamodb": {"NewImage": {"status": {"S": ["shipped"]}}}, "eventName": ["MODIFY"]}
    assert matches(pattern, DDB_RECORD)
    assert not matches({"dynamodb": {"OldImage": {"status": {"S": ["shipped"]}}}}, DDB_RECORD)


def test_several_keys_are_an_and() -> None:
    assert not matches({"eventName": ["MODIFY"], "eventSource": ["aws:kinesis"]}, DDB_RECORD)


def test_numbers_compare_numerically_but_never_equal_strings() -> None:
    assert matches({"n": [300]}, {"n": 300.0})
    assert matches({"n": [1.5]}, {"n": 1.5})
    assert not matches({"n": ["300"]}, {"n": 300})
    assert not matches({"n": [300]}, {"n": "300"})


def test_booleans_are_not_numbers() -> None:
    assert matches({"b": [True]}, {"b": True})
    assert not matches({"b": [True]}, {"b": 1})
    assert not matches({"b": [1]}, {"b": True})
    assert not matches({"b": [False]}, {"b": 0})


def test_null_matches_a_present_null_only() -> None:
    assert matches({"u": [None]}, {"u": None})
    assert not matches({"u": [None]}, {})
    assert not matches({"u": [None]}, {"u": ""})


def test_empty_string_matches_the_empty_string_only() -> None:
    assert matches({"s": [""]}, {"s": ""})
    assert not matches({"s": [""]}, {"s": None})
    assert not matches({"s": [""]}, {})


# -- string operators --------------------------------------------------------------------------

def test_prefix() -> None:
    assert matches({"k": [{"prefix": "ORD"}]}, {"k": "ORDER#1"})
    assert not matches({"k": [{"prefix": "ord"}]}, {"k": "ORDER#1"})
    assert not matches({"k": [{"prefix": "1"}]}, {"k": 123})


def test_suffix() -> None:
    assert matches({"f": [{"suffix": ".png"}]}, {"f": "a.png"})
    assert not matches({"f": [{"suffix": ".png"}]}, {"f": "a.PNG"})


def test_prefix_and_suffix_ignoring_case() -> None:
    assert matches({"k": [{"prefix": {"equals-ignore-case": "ord"}}]}, {"k": "ORDER#1"})
    assert matches({"f": [{"suffix": {"equals-ignore-case": ".PNG"}}]}, {"f": "a.png"})
    assert not matches({"f": [{"suffix": {"equals-ignore-case": ".jpg"}}]}, {"f": "a.png"})


def test_equals_ignore_case() -> None:
    assert matches({"s": [{"equals-ignore-case": "SHIPPED"}]}, {"s": "Shipped"})
    assert not matches({"s": [{"equals-ignore-case": "SHIPPED"}]}, {"s": "shipped!"})


def test_wildcard_only_star_is_special() -> None:
    assert matches({"s": [{"wildcard": "a*c"}]}, {"s": "abbbc"})
    assert matches({"s": [{"wildcard": "a?[c]"}]}, {"s": "a?[c]"})
    assert not matches({"s": [{"wildcard": "a?c"}]}, {"s": "abc"})


# -- anything-but ------------------------------------------------------------------------------

def test_anything_but_list_and_single_value() -> None:
    assert matches({"s": [{"anything-but": ["pending", "lost"]}]}, {"s": "shipped"})
    assert not matches({"s": [{"anything-but": ["pending", "shipped"]}]}, {"s": "shipped"})
    assert not matches({"s": [{"anything-but": "shipped"}]}, {"s": "shipped"})
    assert matches({"n": [{"anything-but": [1, 2]}]}, {"n": 3})
    assert not matches({"n": [{"anything-but": [1, 2]}]}, {"n": 2.0})


def test_anything_but_never_matches_a_missing_key() -> None:
    assert not matches({"s": [{"anything-but": ["x"]}]}, {})


def test_anything_but_prefix_suffix_and_ignore_case() -> None:
    assert matches({"s": [{"anything-but": {"prefix": "tmp-"}}]}, {"s": "keep"})
    assert not matches({"s": [{"anything-but": {"prefix": "tmp-"}}]}, {"s": "tmp-1"})
    assert not matches({"s": [{"anything-but": {"suffix": ".log"}}]}, {"s": "a.log"})
    assert not matches({"s": [{"anything-but": {"equals-ignore-case": ["A", "B"]}}]}, {"s": "b"})
    assert matches({"s": [{"anything-but": {"equals-ignore-case": "A"}}]}, {"s": "c"})


# -- numeric -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (["=", 100], 100, True),
        (["=", 100], 100.0, True),
        (["=", 100], 101, False),
        (["<", 10], 9.99, True),
        (["<", 10], 10, False),
        (["<=", 10], 10, True),
        ([">", 10], 10, False),
        ([">=", 10], 10, True),
        ([">", 0, "<=", 5], 5, True),
        ([">", 0, "<=", 5], 0, False),
        ([">", 0, "<=", 5], 5.01, False),
        ([">=", -1.5, "<", 0], -1.5, True),
    ],
)
def test_numeric(spec: list[Any], value: float, expected: bool) -> None:
    assert matches({"n": [{"numeric": spec}]}, {"n": value}) is expected


def test_numeric_never_matches_strings_or_booleans() -> None:
    # DynamoDB's N is a string in the record: numeric filters do not see it, as on AWS.
    assert not matches({"dynamodb": {"NewImage": {"qty": {"N": [{"numeric": [">", 0]}]}}}}, DDB_RECORD)
    assert not matches({"n": [{"numeric": [">", 0]}]}, {"n": True})


# -- exists ------------------------------------------------------------------------------------

def test_exists_true_and_false() -> None:
    assert matches({"a": [{"exists": True}]}, {"a": "x"})
    assert matches({"a": [{"exists": True}]}, {"a": None})
    assert not matches({"a": [{"exists": True}]}, {})
    assert matches({"a": [{"exists": False}]}, {})
    assert not matches({"a": [{"exists": False}]}, {"a": 0})


def test_exists_applies_to_leaves_only() -> None:
    assert not matches({"a": [{"exists": True}]}, {"a": {"b": 1}})
    assert matches({"a": {"b": [{"exists": True}]}}, {"a": {"b": 1}})
    # An object is not a leaf, so for `exists` it is as if absent (AWS: leaf nodes only).
    assert matches({"a": [{"exists": False}]}, {"a": {"b": 1}})


def test_exists_false_under_a_missing_parent() -> None:
    pattern = {"dynamodb": {"OldImage": {"status": {"S": [{"exists": False}]}}}}
    insert = {"dynamodb": {"NewImage": {"status": {"S": "new"}}}}
    assert matches(pattern, insert)
    assert not matches(pattern, DDB_RECORD)


def test_dynamodb_attribute_exists_through_its_type_tag() -> None:
    assert matches({"dynamodb": {"NewImage": {"status": {"S": [{"exists": True}]}}}}, DDB_RECORD)
    assert not matches({"dynamodb": {"NewImage": {"gone": {"S": [{"exists": True}]}}}}, DDB_RECORD)


# -- cidr --------------------------------------------------------------------------------------

def test_cidr_v4_and_v6() -> None:
    assert matches({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.7"})
    assert not matches({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.1.7"})
    assert not matches({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "not-an-ip"})
    assert matches({"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db8::1"})


# -- $or ---------------------------------------------------------------------------------------

def test_or_across_fields() -> None:
    pattern = {"$or": [{"eventName": ["INSERT"]}, {"dynamodb": {"NewImage": {"status": {"S": ["shipped"]}}}}]}
    assert matches(pattern, DDB_RECORD)
    assert not matches(pattern, {**DDB_RECORD, "dynamodb": {"NewImage": {"status": {"S": "x"}}}})


def test_or_nested_inside_an_object_and_combined_with_and() -> None:
    pattern = {"eventName": ["MODIFY"], "dynamodb": {"$or": [{"Keys": {"pk": {"S": ["nope"]}}},
                                                              {"SequenceNumber": ["100"]}]}}
    assert matches(pattern, DDB_RECORD)
    assert not matches({**pattern, "eventName": ["INSERT"]}, DDB_RECORD)


# -- arrays ------------------------------------------------------------------------------------

def test_event_arrays_match_any_element() -> None:
    assert matches({"tags": ["b"]}, {"tags": ["a", "b"]})
    assert matches({"tags": ["b"]}, {"tags": [["a"], ["b"]]})
    assert not matches({"tags": ["c"]}, {"tags": ["a", "b"]})


def test_object_pattern_over_array_needs_one_element_to_match_all() -> None:
    event = {"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}
    assert matches({"items": {"sku": ["B"], "qty": [2]}}, event)
    assert not matches({"items": {"sku": ["A"], "qty": [2]}}, event)


def test_empty_event_array_is_like_a_missing_key() -> None:
    assert not matches({"tags": [{"exists": True}]}, {"tags": []})
    assert matches({"tags": [{"exists": False}]}, {"tags": []})
    assert not matches({"tags": [{"anything-but": "x"}]}, {"tags": []})


def test_empty_matcher_list_matches_nothing() -> None:
    assert not matches({"a": []}, {"a": "x"})
    assert not matches({"a": []}, {})


def test_empty_pattern_matches_everything() -> None:
    assert matches({}, DDB_RECORD)


# -- FilterCriteria ----------------------------------------------------------------------------

def test_compile_filters_ors_patterns_and_accepts_text_and_aws_shape() -> None:
    pred = compile_filters([
        '{"eventName": ["INSERT"]}',
        {"Pattern": json.dumps({"dynamodb": {"NewImage": {"status": {"S": ["shipped"]}}}})},
    ])
    assert pred(DDB_RECORD)
    assert pred({"eventName": "INSERT"})
    assert not pred({"eventName": "REMOVE"})


def test_no_filters_let_everything_through() -> None:
    assert compile_filters([])({"anything": 1})


def test_kinesis_data_is_matched_decoded() -> None:
    pred = compile_filters([{"data": {"temperature": [{"numeric": [">", 30]}]}}])
    assert pred(kinesis_record({"temperature": 31}))
    assert not pred(kinesis_record({"temperature": 20}))
    assert compile_filters([{"partitionKey": ["p1"]}])(kinesis_record({}))


def test_kinesis_non_json_data_drops_records_filtered_on_data() -> None:
    rec = kinesis_record(None, raw=b"\x00plain text")
    assert not compile_filters([{"data": {"a": [{"exists": False}]}, "partitionKey": ["nope"]}])(rec)
    assert not compile_filters([{"data": [{"exists": True}]}])(rec)
    assert "data" not in filter_view(rec)


def test_dynamodb_records_are_seen_as_delivered() -> None:
    assert filter_view(DDB_RECORD) is DDB_RECORD


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"eventName": "INSERT"}, "eventName"),
        ({"a": [{"prefix": 1}]}, "'prefix' needs a string"),
        ({"a": [{"numeric": [">", "1"]}]}, "not a number"),
        ({"a": [{"numeric": ["!=", 1]}]}, "unknown numeric operator"),
        ({"a": [{"numeric": [">", 1, ">", 2]}]}, "one lower"),
        ({"a": [{"numeric": [">"]}]}, "numeric"),
        ({"a": [{"exists": "yes"}]}, "'exists' takes true or false"),
        ({"a": [{"regex": "x"}]}, "unknown operator 'regex'"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "exactly one operator"),
        ({"a": [{"anything-but": {"numeric": [">", 1]}}]}, "anything-but"),
        ({"a": [{"cidr": "10.0.0.0/99"}]}, "bad cidr"),
        ({"$or": [{"a": ["x"]}]}, "$or"),
        ({"a": {"b": [[1]]}}, "a/b"),
    ],
)
def test_invalid_patterns_raise_filter_error_naming_the_place(pattern: Any, fragment: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filters([pattern])
    assert fragment in str(info.value)
    assert isinstance(info.value, TerminalError)


def test_parse_pattern_unwraps_aws_filter() -> None:
    assert parse_pattern({"Pattern": '{"a": [1]}'}) == {"a": [1]}
