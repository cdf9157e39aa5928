from decimal import Decimal

import pyarrow as pa

from lake.curate.evolve import ATTRIBUTE_PROPERTY, TableColumns, align, family, place, split

D18 = pa.decimal128(38, 18)


def table(**cols: pa.DataType) -> TableColumns:
    return TableColumns(dict(cols), {c: c.split("__")[0] for c in cols})


def test_a_new_attribute_adds_a_column_and_records_its_attribute() -> None:
    got = place({"Status": pa.array(["a", None])}, TableColumns(), reserved=frozenset({"key"}))
    assert got.add_columns == {"status": pa.string()}
    assert got.properties == {ATTRIBUTE_PROPERTY + "status": "Status"}
    assert got.columns["status"].to_pylist() == ["a", None]


def test_names_that_meet_once_made_safe_get_a_suffix_and_reserved_ones_a_prefix() -> None:
    existing = TableColumns({"foo": pa.string()}, {"foo": "foo"})
    got = place({"Foo": pa.array(["x"]), "key": pa.array(["k"])}, existing, reserved=frozenset({"key"}))
    assert set(got.add_columns) == {"foo_2", "attr_key"}
    assert got.properties[ATTRIBUTE_PROPERTY + "foo_2"] == "Foo"


def test_a_fraction_meeting_a_bigint_column_goes_to_a_sibling_and_integers_stay() -> None:
    batch = {"amount": pa.array([Decimal("12"), Decimal("12.5"), None], D18)}
    got = place(batch, table(amount=pa.int64()))
    assert got.columns["amount"].to_pylist() == [12, None, None]
    assert got.add_columns == {"amount__decimal": D18}
    assert got.columns["amount__decimal"].to_pylist() == [None, Decimal("12.5"), None]
    assert got.siblings == {"amount__decimal": "amount"}


def test_values_go_to_the_first_column_that_holds_them_exactly() -> None:
    existing = table(amount=pa.int64(), amount__decimal=D18)
    got = place({"amount": pa.array([Decimal("3"), Decimal("0.25")], D18)}, existing)
    assert got.add_columns == {}
    assert got.columns["amount"].to_pylist() == [3, None]
    assert got.columns["amount__decimal"].to_pylist() == [None, Decimal("0.25")]


def test_integers_fit_a_decimal_column_without_a_sibling() -> None:
    got = place({"price": pa.array([1, 2], pa.int64())}, table(price=D18))
    assert got.add_columns == {} and got.columns["price"].to_pylist() == [Decimal(1), Decimal(2)]


def test_text_meeting_a_number_column_goes_to_a_string_sibling() -> None:
    got = place({"n": pa.array(["n/a"])}, table(n=pa.int64()))
    assert got.add_columns == {"n__string": pa.string()}


def test_split_never_loses_a_value() -> None:
    arr = pa.array([Decimal("1"), Decimal("9223372036854775808"), Decimal("-0.5"), None], D18)
    fits, rest = split(arr, pa.int64())
    assert fits is not None
    merged = [f if f is not None else r for f, r in zip(fits.to_pylist(), rest.to_pylist(), strict=True)]
    assert merged == [1, Decimal("9223372036854775808"), Decimal("-0.5"), None]
    assert rest.to_pylist()[0] is None and fits.to_pylist()[1] is None


def test_a_decimal_of_another_scale_fits_only_where_digits_allow() -> None:
    fits, rest = split(pa.array([Decimal("1.5"), Decimal("1.123")], pa.decimal128(38, 3)), pa.decimal128(38, 2))
    assert fits is not None and fits.to_pylist() == [Decimal("1.50"), None]
    assert rest.to_pylist() == [None, Decimal("1.123")]


def test_family_names() -> None:
    assert [family(t) for t in (pa.int64(), D18, pa.decimal128(38, 2), pa.list_(pa.string()))] == [
        "bigint", "decimal", "decimal_2", "array_string"]


def test_align_fills_missing_columns_with_nulls() -> None:
    t = align({"a": pa.array([1])}, ["a", "b"], 1, {"a": pa.int64(), "b": pa.string()})
    assert t.column_names == ["a", "b"] and t.column("b").to_pylist() == [None]


def test_large_and_view_variants_are_the_same_column_type() -> None:
    # Iceberg schemas come back from pyiceberg as large_string and list<element: …>
    got = place({"s": pa.array(["a"]), "l": pa.array([["x"]])},
                table(s=pa.large_string(), l=pa.large_list(pa.field("element", pa.large_string()))))
    assert got.add_columns == {} and set(got.columns) == {"s", "l"}


def test_iceberg_promotions_widen_the_column_itself() -> None:
    got = place({"n": pa.array([2**40], pa.int64())}, table(n=pa.int32()))
    assert got.promote == {"n": pa.int64()} and got.add_columns == {} and got.columns["n"].to_pylist() == [2**40]
    got = place({"d": pa.array([Decimal("1.5")], D18)}, table(d=pa.decimal128(20, 18)))
    assert got.promote == {"d": D18}
    assert place({"d": pa.array([Decimal("1.5")], D18)}, table(d=pa.decimal128(38, 2))).promote == {}


def test_a_long_attribute_name_is_cut_with_a_digest_within_glues_limits() -> None:
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    got = place({long_a: pa.array(["x"]), long_b: pa.array(["y"])}, TableColumns())
    names = list(got.add_columns)
    assert len(set(names)) == 2 and all(len(n) <= 180 for n in names)
    assert all(len(k) <= 255 for k in got.properties)
    assert {got.properties[ATTRIBUTE_PROPERTY + n] for n in names} == {long_a, long_b}


def test_text_of_another_dynamodb_type_never_shares_a_string_column() -> None:
    existing = TableColumns({"x": pa.string()}, {"x": "x"}, {"x": "S"})
    got = place({"x": pa.array(['{"a":{"S":"1"}}'])}, existing, dynamodb_types={"x": "M"})
    assert got.add_columns == {"x__map": pa.string()}
    assert got.properties["lake.dynamodb-type.x__map"] == "M"
    same = place({"x": pa.array(["plain"])}, existing, dynamodb_types={"x": "S"})
    assert same.add_columns == {} and same.columns["x"].to_pylist() == ["plain"]
