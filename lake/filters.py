"""Lambda's event-filtering pattern language, as event source mappings apply it.

A pattern is a JSON object (or its text). Its keys follow the event's keys; a nested
object descends into the event, and a leaf is a *list* of matchers, any one of which
may match (OR). Several keys must all match (AND); ``$or`` takes a list of
sub-patterns, one of which must match. Several patterns in one ``FilterCriteria``
are OR-ed; no pattern at all lets everything through.

Matchers (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html):

* exact values: ``"shipped"``, ``42`` (numbers compare numerically, ``42 == 42.0``),
  ``true``/``false``, ``null`` (the key is present and null), ``""`` (the empty string);
* ``{"prefix": "ab"}``, ``{"suffix": ".png"}`` (both also take ``{"equals-ignore-case": s}``),
  ``{"equals-ignore-case": "x"}``, ``{"wildcard": "a*b"}``;
* ``{"anything-but": v | [v, ...] | {"prefix"|"suffix"|"equals-ignore-case": ...}}``
  (a present value that is none of those; a missing key never matches);
* ``{"numeric": ["=", 5]}``, ``{"numeric": [">", 0, "<=", 10]}`` (numbers only, never
  strings: DynamoDB's ``{"N": "5"}`` is a string and does not match, as on AWS);
* ``{"exists": true}`` / ``{"exists": false}`` (leaf values only, as AWS);
* ``{"cidr": "10.0.0.0/24"}`` (IPv4 or IPv6 strings).

Event arrays: a leaf matches when any element matches (nested arrays flatten); an
object pattern over an array of objects matches when one element matches it all.
An empty event array carries no value: it behaves as a missing key (only
``exists: false`` matches). An empty matcher list in a pattern matches nothing.

For Kinesis records only ``data`` is meaningful to AWS: the record is matched as
``kinesis`` metadata with ``data`` replaced by its base64-decoded JSON (a payload
that is not JSON is absent, so a pattern on ``data`` drops the record).
DynamoDB stream records are matched as delivered.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import orjson

from lake.errors import TerminalError

__all__ = ["FilterError", "compile_filters", "compile_pattern", "filter_view", "matches", "parse_pattern"]


class FilterError(TerminalError):
    """A filter pattern that is not valid; the message says where and why."""


_MISSING = object()

Matcher = Callable[[Any], bool]  # called with a present scalar value
Predicate = Callable[[Any], bool]  # called with a mapping (or _MISSING / anything)

_NUMERIC_OPS = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_LOWER, _UPPER = frozenset({">", ">="}), frozenset({"<", "<="})


def _is_number(v: Any) -> bool:
    # bool is an int in Python, never a number in JSON.
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same_value(a: Any, b: Any) -> bool:
    """Exact equality with JSON's types: 1 == 1.0, but true != 1 and "1" != 1."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


# -- compiling ---------------------------------------------------------------------------------

def _where(path: tuple[str, ...]) -> str:
    return "/".join(path) or "<root>"


def _string_operand(value: Any, op: str, path: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise FilterError(f"filter pattern at {_where(path)}: {op!r} needs a string, got {value!r}")
    return value


def _string_match(op: str, operand: Any, path: tuple[str, ...]) -> Matcher:
    """prefix / suffix / equals-ignore-case / wildcard, with prefix/suffix's ignore-case form."""
    if op in ("prefix", "suffix") and isinstance(operand, Mapping):
        if set(operand) != {"equals-ignore-case"}:
            raise FilterError(
                f"filter pattern at {_where(path)}: {op!r} takes a string or "
                f"{{\"equals-ignore-case\": string}}, got {operand!r}"
            )
        folded = _string_operand(operand["equals-ignore-case"], op, path).casefold()
        if op == "prefix":
            return lambda v: isinstance(v, str) and v.casefold().startswith(folded)
        return lambda v: isinstance(v, str) and v.casefold().endswith(folded)
    text = _string_operand(operand, op, path)
    if op == "prefix":
        return lambda v: isinstance(v, str) and v.startswith(text)
    if op == "suffix":
        return lambda v: isinstance(v, str) and v.endswith(text)
    if op == "equals-ignore-case":
        folded = text.casefold()
        return lambda v: isinstance(v, str) and v.casefold() == folded
    if op == "wildcard":
        # Only '*' is special (AWS); escape everything else, including fnmatch's [ and ?.
        rx = re.compile("".join(".*" if c == "*" else re.escape(c) for c in text), re.DOTALL)
        return lambda v: isinstance(v, str) and rx.fullmatch(v) is not None
    raise AssertionError(op)


def _numeric(spec: Any, path: tuple[str, ...]) -> Matcher:
    if not isinstance(spec, list) or not spec or len(spec) % 2:
        raise FilterError(
            f"filter pattern at {_where(path)}: 'numeric' takes [op, number, ...], e.g. "
            f"[\">\", 0, \"<=\", 5], got {spec!r}"
        )
    tests: list[tuple[str, float]] = []
    for op, operand in zip(spec[::2], spec[1::2], strict=True):
        if op not in _NUMERIC_OPS:
            raise FilterError(
                f"filter pattern at {_where(path)}: unknown numeric operator {op!r} "
                f"(one of {', '.join(_NUMERIC_OPS)})"
            )
        if not _is_number(operand):
            raise FilterError(
                f"filter pattern at {_where(path)}: numeric operand {operand!r} is not a number"
            )
        tests.append((op, operand))
    ops = [op for op, _ in tests]
    if "=" in ops and len(ops) > 1:
        raise FilterError(f"filter pattern at {_where(path)}: numeric '=' cannot be combined, got {spec!r}")
    if sum(op in _LOWER for op in ops) > 1 or sum(op in _UPPER for op in ops) > 1:
        raise FilterError(
            f"filter pattern at {_where(path)}: a numeric range has at most one lower and one upper bound"
        )
    return lambda v: _is_number(v) and all(_NUMERIC_OPS[op](v, n) for op, n in tests)


def _cidr(spec: Any, path: tuple[str, ...]) -> Matcher:
    text = _string_operand(spec, "cidr", path)
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise FilterError(f"filter pattern at {_where(path)}: bad cidr {text!r}: {e}") from None

    def match(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        try:
            return ipaddress.ip_address(v) in net
        except ValueError:
            return False

    return match


def _anything_but(spec: Any, path: tuple[str, ...]) -> Matcher:
    if isinstance(spec, Mapping):
        if len(spec) != 1 or next(iter(spec)) not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise FilterError(
                f"filter pattern at {_where(path)}: 'anything-but' takes a value, a list of values or "
                f"one of prefix/suffix/equals-ignore-case/wildcard, got {spec!r}"
            )
        (op, operand), = spec.items()
        if op == "equals-ignore-case" and isinstance(operand, list):
            folded = {_string_operand(o, op, path).casefold() for o in operand}
            return lambda v: not (isinstance(v, str) and v.casefold() in folded)
        inner = _string_match(op, operand, path)
        return lambda v: not inner(v)
    values = spec if isinstance(spec, list) else [spec]
    for v in values:
        if not (v is None or isinstance(v, (str, bool)) or _is_number(v)):
            raise FilterError(f"filter pattern at {_where(path)}: 'anything-but' value {v!r} is not a scalar")
    return lambda v: not any(_same_value(v, x) for x in values)


def _matcher(item: Any, path: tuple[str, ...]) -> tuple[Matcher | None, bool | None]:
    """One leaf matcher; returns (matcher for present values, exists flag or None)."""
    if item is None or isinstance(item, (str, bool)) or _is_number(item):
        return (lambda v: _same_value(v, item)), None
    if not isinstance(item, Mapping):
        raise FilterError(
            f"filter pattern at {_where(path)}: {item!r} is neither a value nor a matcher object"
        )
    if len(item) != 1:
        raise FilterError(
            f"filter pattern at {_where(path)}: a matcher object has exactly one operator, got {dict(item)!r}"
        )
    (op, spec), = item.items()
    if op == "exists":
        if not isinstance(spec, bool):
            raise FilterError(f"filter pattern at {_where(path)}: 'exists' takes true or false, got {spec!r}")
        return None, spec
    if op in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
        return _string_match(op, spec, path), None
    if op == "anything-but":
        return _anything_but(spec, path), None
    if op == "numeric":
        return _numeric(spec, path), None
    if op == "cidr":
        return _cidr(spec, path), None
    raise FilterError(
        f"filter pattern at {_where(path)}: unknown operator {op!r} (known: prefix, suffix, "
        "equals-ignore-case, wildcard, anything-but, numeric, exists, cidr)"
    )


def _leaf_values(value: Any, out: list[Any]) -> list[Any]:
    """Scalars of an event value, arrays flattened; objects are not leaves."""
    if isinstance(value, list):
        for v in value:
            _leaf_values(v, out)
    elif not isinstance(value, Mapping):
        out.append(value)
    return out


def _compile_leaf(items: list[Any], path: tuple[str, ...]) -> Callable[[Any], bool]:
    """A predicate over the value found at ``path`` (or ``_MISSING``)."""
    matchers: list[Matcher] = []
    exists_true = exists_false = False
    for item in items:
        m, exists = _matcher(item, path)
        if m is not None:
            matchers.append(m)
        elif exists:
            exists_true = True
        else:
            exists_false = True

    def check(value: Any) -> bool:
        leaves = [] if value is _MISSING else _leaf_values(value, [])
        if not leaves:
            return exists_false
        if exists_true:
            return True
        return any(m(v) for v in leaves for m in matchers)

    return check


def _any_of(alternatives: list[Predicate]) -> Callable[[Mapping[str, Any]], bool]:
    return lambda obj: any(a(obj) for a in alternatives)


def _at_key(key: str, check: Callable[[Any], bool]) -> Callable[[Mapping[str, Any]], bool]:
    return lambda obj: check(obj.get(key, _MISSING))


def _compile_object(pattern: Mapping[str, Any], path: tuple[str, ...]) -> Predicate:
    """A predicate over an event (sub-)object; lists of objects match if one element does."""
    if not isinstance(pattern, Mapping):
        raise FilterError(f"filter pattern at {_where(path)}: expected an object, got {pattern!r}")
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for key, sub in pattern.items():
        if not isinstance(key, str):
            raise FilterError(f"filter pattern at {_where(path)}: key {key!r} is not a string")
        here = (*path, key)
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                raise FilterError(f"filter pattern at {_where(here)}: '$or' takes a list of 2+ objects")
            checks.append(_any_of([_compile_object(alt, (*here, str(i))) for i, alt in enumerate(sub)]))
        elif isinstance(sub, Mapping):
            checks.append(_at_key(key, _compile_object(sub, here)))
        elif isinstance(sub, list):
            checks.append(_at_key(key, _compile_leaf(sub, here)))
        else:
            raise FilterError(
                f"filter pattern at {_where(here)}: values must be lists of matchers or nested objects, "
                f"got {sub!r} (write [{json.dumps(sub)}])"
            )

    def check(value: Any) -> bool:
        if isinstance(value, list) and value:
            return any(check(v) for v in value)
        # A missing or scalar parent still matches a sub-pattern made of exists:false.
        obj = value if isinstance(value, Mapping) else {}
        return all(c(obj) for c in checks)

    return check


def parse_pattern(pattern: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """A pattern as a dict: JSON text parsed, an AWS ``{"Pattern": "..."}`` filter unwrapped."""
    if isinstance(pattern, Mapping) and set(pattern) == {"Pattern"} and isinstance(pattern["Pattern"], str):
        pattern = pattern["Pattern"]
    if isinstance(pattern, (str, bytes)):
        try:
            pattern = json.loads(pattern)
        except ValueError as e:
            raise FilterError(f"filter pattern is not valid JSON: {e}: {pattern!r}") from None
    if not isinstance(pattern, Mapping):
        raise FilterError(f"a filter pattern is a JSON object, got {pattern!r}")
    return pattern


def compile_pattern(pattern: str | Mapping[str, Any]) -> Predicate:
    """Validate one pattern and return a predicate over an event object."""
    return _compile_object(parse_pattern(pattern), ())


@lru_cache(maxsize=256)
def _cached(text: str) -> Predicate:
    return compile_pattern(text)


def matches(pattern: str | Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Does ``event`` match ``pattern``, exactly as given (no Kinesis decoding)?

    Raises :class:`FilterError` for an invalid pattern.
    """
    if isinstance(pattern, str):
        return _cached(pattern)(event)
    return compile_pattern(pattern)(event)


# -- records -----------------------------------------------------------------------------------

def filter_view(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a pattern sees of a Lambda stream record.

    A Kinesis record is seen as its ``kinesis`` metadata with ``data`` decoded from
    base64 and parsed as JSON (absent when it is not JSON); other records as they are.
    """
    kin = record.get("kinesis")
    if not isinstance(kin, Mapping) or record.get("eventSource", "aws:kinesis") != "aws:kinesis":
        return record
    view = {k: v for k, v in kin.items() if k != "data"}
    data = kin.get("data")
    if isinstance(data, str):
        try:
            view["data"] = orjson.loads(base64.b64decode(data, validate=True))
        except (binascii.Error, orjson.JSONDecodeError, ValueError):
            pass
    return view


def compile_filters(filters: Iterable[str | Mapping[str, Any]]) -> Callable[[Mapping[str, Any]], bool]:
    """The OR of several patterns (``FilterCriteria.Filters``) as a predicate over a record.

    Each filter is a pattern dict, its JSON text, or AWS's ``{"Pattern": "<json>"}``.
    No filters: every record matches. Invalid patterns raise :class:`FilterError` here,
    not at match time.
    """
    compiled = [compile_pattern(f) for f in filters]
    if not compiled:
        return lambda record: True

    def predicate(record: Mapping[str, Any]) -> bool:
        view = filter_view(record)
        return any(p(view) for p in compiled)

    return predicate

