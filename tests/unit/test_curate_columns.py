"""Pure typed-column rules: numbers, sets, maps, NULL, widening."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from lake.curate.columns import ColumnType, build_column, number_text, widen_array
from lake.curate.decode import plain_json
from lake.errors import MalformedRecordError

BIG = "9" * 38


def test_numbers_pick_the_narrowest_exact_type() -> None:
    ints = build_column([{"N": "1"}, {"N": "-9223372036854775808"}, {}], None)
    assert ints is not None and ints.type.glue == "bigint"
    big = build_column([{"N": "1"}, {"N": BIG}], None)
    assert big is not None and big.type.glue == "decimal(38,0)" and big.array[1].as_py() == Decimal(BIG)
    frac = build_column([{"N": "1.25"}, {"N": "-3.5"}], None)  # mixed scales share decimal(38,18)
    assert frac is not None and frac.type.glue == "decimal(38,18)"
    assert frac.array.to_pylist() == [Decimal("1.25"), Decimal("-3.5")]
    fine = build_column([{"N": "0.1234567890123456789"}], None)  # 19 fraction digits: exact scale
    assert fine is not None and fine.type.glue == "decimal(38,19)"
    huge = build_column([{"N": BIG}, {"N": "0.5"}], None)  # 38 integer digits + 1 fraction digit
    assert huge is not None and huge.type == ColumnType("string", "mixed") and huge.array[0].as_py() == BIG


def test_a_bigint_column_widens_to_decimal_when_fractions_arrive() -> None:
    grown = build_column([{"N": "10.5"}, {"N": "7"}], ColumnType("bigint", "N"))
    assert grown is not None and grown.widened and grown.type == ColumnType("decimal(38,18)", "N")
    assert grown.array.to_pylist() == [Decimal("10.5"), Decimal("7")]
    same = build_column([{"N": "12.125"}], ColumnType("decimal(38,18)", "N"))
    assert same is not None and not same.widened and same.type.glue == "decimal(38,18)"


def test_a_fixed_scale_widens_when_a_value_needs_more_digits() -> None:
    dec = ColumnType("decimal(38,2)", "N")
    fits = build_column([{"N": "7.1"}], dec)
    assert fits is not None and fits.type == dec and not fits.widened
    wider = build_column([{"N": "7.125"}], dec)
    assert wider is not None and wider.widened and wider.array.to_pylist() == ["7.125"]


def test_type_conflicts_widen_to_text_of_each_value() -> None:
    mixed = build_column([{"N": "5"}, {"S": "five"}, {"BOOL": True}, {"SS": ["a"]}], None)
    assert mixed is not None and mixed.widened
    assert mixed.array.to_pylist() == ["5", "five", "true", '["a"]']
    old = build_column([{"S": "x"}], ColumnType("bigint", "N"))
    assert old is not None and old.widened and old.type.glue == "string"


def test_sets_maps_and_nulls() -> None:
    ns = build_column([{"NS": ["1", "2.5"]}, {"NULL": True}], None)
    assert ns is not None and ns.type.glue == "array<decimal(38,18)>" and ns.array.to_pylist()[1] is None
    m = build_column([{"M": {"b": {"B": "AAE="}, "s": {"SS": ["x"]}}}], None)
    assert m is not None and m.type == ColumnType("string", "M")
    assert orjson.loads(m.array[0].as_py()) == {"b": {"B": "AAE="}, "s": {"SS": ["x"]}}
    assert build_column([{"NULL": True}, {}], None) is None
    known = build_column([{"NULL": True}], ColumnType("bigint", "N"))
    assert known is not None and known.array.to_pylist() == [None]


def test_old_files_are_rewritten_to_the_same_text_as_new_values() -> None:
    dec = build_column([{"N": "1.5"}, {"N": "-0.25"}], None)
    assert dec is not None
    assert widen_array(dec.array, dec.type).to_pylist() == ["1.5", "-0.25"]
    assert number_text(Decimal("100.00")) == "100"


def test_plain_json_keeps_numbers_exact_and_refuses_garbage() -> None:
    text = plain_json({"n": {"N": BIG}, "m": {"M": {"f": {"N": "0.1"}}}, "z": {"NULL": True}})
    assert text == f'{{"n":{BIG},"m":{{"f":0.1}},"z":null}}'
    with pytest.raises(MalformedRecordError):
        plain_json({"n": {"N": "12abc"}})
