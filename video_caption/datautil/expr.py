"""``--where`` expressions (``aesthetic_score>=5``, ``category in (street,nature)``) parsed into SQL.

A column name is checked against the input's columns and becomes a quoted JSON path; a value is always
a query parameter, never part of the SQL text.  Pure functions: no DuckDB here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_LIST = re.compile(rf"\s*({NAME})\s+(not\s+in|in)\s*\((.*)\)\s*", re.IGNORECASE | re.DOTALL)
_COMPARE = re.compile(rf"\s*({NAME})\s*(==|!=|>=|<=|=|<|>)(.*)", re.DOTALL)
# A value: quoted (anything but its own quote) or bare (no quote, comma or parenthesis).
_VALUE = re.compile(r"""\s*(?:'([^']*)'|"([^"]*)"|([^'",()]+))\s*""")
FORMS = "COLUMN OP VALUE (OP: == = != < <= > >=) or COLUMN [not] in (VALUE, ...)"
# How a row's raw JSON value of a column of each kind is compared; lists, objects and mixed columns are not.
ACCESS = {"number": "TRY_CAST({} AS DOUBLE)", "text": "({} ->> '$')", "bool": "TRY_CAST({} AS BOOLEAN)"}


class ExpressionError(ValueError):
    """A --where expression that cannot be used; the message names it."""


@dataclass(frozen=True)
class Condition:
    text: str  # as the user wrote it, for messages
    column: str
    op: str  # = != < <= > >= in "not in"
    values: tuple[str, ...]


def _value(text: str, where: str) -> str:
    if not text.strip():
        raise ExpressionError(f"--where {where!r}: empty value")
    match = _VALUE.fullmatch(text)
    if not match:
        raise ExpressionError(f"--where {where!r}: bad value {text.strip()!r} (quote a value that holds a comma, "
                              "quote or parenthesis)")
    quoted, double, bare = match.groups()
    return quoted if quoted is not None else double if double is not None else bare.strip()


def _values(text: str, where: str) -> tuple[str, ...]:
    values, pos = [], 0
    while True:
        match = _VALUE.match(text, pos)
        end = match.end() if match else pos
        if end == len(text) or text[end] == ",":
            values.append(_value(text[pos:end], where))
        else:
            raise ExpressionError(f"--where {where!r}: bad list ({text!r}); separate values with commas")
        if end == len(text):
            return tuple(values)
        pos = end + 1


def parse(text: str) -> Condition:
    """One --where expression, or ExpressionError naming what is wrong with it."""
    if match := _LIST.fullmatch(text):
        column, op, items = match.groups()
        return Condition(text, column, " ".join(op.lower().split()), _values(items, text))
    if match := _COMPARE.fullmatch(text):
        column, op, value = match.groups()
        return Condition(text, column, "=" if op == "==" else op, (_value(value, text),))
    raise ExpressionError(f"--where {text!r}: expected {FORMS}")


def json_path(column: str) -> str:
    """The JSON path of a top-level key (names are checked against NAME, so they hold no quote)."""
    return f'$."{column}"'


def _parameter(value: str, kind: str, condition: Condition) -> object:
    if kind == "text":
        return value
    if kind == "bool":
        if value.lower() not in ("true", "false"):
            raise ExpressionError(f"--where {condition.text!r}: {condition.column} is true/false, not {value!r}")
        return value.lower() == "true"
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if math.isnan(number):
        raise ExpressionError(f"--where {condition.text!r}: {condition.column} is a number column, {value!r} is "
                              "not a number")
    return number


def where_sql(conditions: list[Condition], kinds: dict[str, str]) -> tuple[str, list, list[str]]:
    """(SQL true for the rows matching every condition, its parameters, the columns it reads).

    The SQL reads ``_v``: a list of each row's raw JSON values of the returned columns, in that order
    (DuckDB's ``json_extract(json, paths)``).  ``kinds`` maps each column of the input to ``number``,
    ``text``, ``bool`` or ``other``.  A row without the column, or with null there, matches nothing.
    """
    columns = list(dict.fromkeys(c.column for c in conditions))
    parts, params = [], []
    for condition in conditions:
        kind = kinds.get(condition.column)
        if kind is None:
            known = ", ".join(kinds) or "none (no rows)"
            raise ExpressionError(f"--where {condition.text!r}: unknown column {condition.column!r} (columns: "
                                  f"{known})")
        if kind not in ACCESS:
            raise ExpressionError(f"--where {condition.text!r}: {condition.column} holds lists, objects or mixed "
                                  "values; filters compare numbers, text or true/false")
        value = ACCESS[kind].format(f"_v[{columns.index(condition.column) + 1}]")
        params += [_parameter(v, kind, condition) for v in condition.values]
        if condition.op in ("in", "not in"):
            parts.append(f"{value} {condition.op.upper()} ({', '.join(['?'] * len(condition.values))})")
        else:
            parts.append(f"{value} {condition.op} ?")
    return " AND ".join(parts) or "true", params, columns
