"""From raw numbers to the values fitparse reports, one whole column at a time.

A :class:`Piece` is a column of values for every message of one layout. The steps follow fitparse's
order exactly: enum name lookup, then scale and offset (``float(raw) / scale - offset``, only for
numbers that did not become names), then the type processors of fitparse's default data processor
(``bool``; ``date_time`` to a naive UTC datetime when >= 0x10000000; ``local_date_time`` always;
``localtime_into_day`` to a ``datetime.time``). Common cases stay NumPy arrays; anything unusual
(tuples, strings, enum names) falls back to Python objects with the exact fitparse semantics.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .profile import FIT_EPOCH_UNIX, MIN_WALL_CLOCK
from .rawvalues import RawColumn

INT, FLOAT, DATETIME, BOOL, OBJECT = "int", "float", "datetime", "bool", "object"
ARRAY, BYTES = "array", "bytes"  # 2-D values: fields holding several numbers; byte fields
NULL = "null"  # only None values: fits a column of any kind but ARRAY


@dataclass(slots=True)
class Piece:
    """Values of one field for all messages of a layout.

    ``values`` is int64/uint64 (INT), float64 (FLOAT), datetime64[s] (DATETIME), bool (BOOL), an
    object array of Python values with None inline (OBJECT), or 2-D: one row of numbers per message
    for array fields (ARRAY, reported as tuples; ``valid`` is then 2-D, per element) and byte fields
    (BYTES, uint8, reported as tuples of ints; ``valid`` per row). ``valid`` is False where fitparse
    reports None; None means every value is valid (always None for OBJECT).
    """

    kind: str
    values: np.ndarray
    valid: np.ndarray | None = None

    def python_values(self, rows: np.ndarray | None = None) -> list:
        values = self.values if rows is None else self.values[rows]
        valid = self.valid if rows is None or self.valid is None else self.valid[rows]
        return python_values(self.kind, values, valid)


def python_values(kind: str, values: np.ndarray, valid: np.ndarray | None) -> list:
    """Python values of a column: None where not valid; tuples for ARRAY and BYTES."""
    if kind == NULL:
        return [None] * len(values)
    if kind == ARRAY:
        rows = values.tolist()
        if valid is None or valid.all():
            return list(map(tuple, rows))
        return [
            tuple(v if ok else None for v, ok in zip(row, oks)) if not all(oks) else tuple(row)
            for row, oks in zip(rows, valid.tolist())
        ]
    out = list(map(tuple, values.tolist())) if kind == BYTES else values.tolist()
    if valid is not None:
        for i in np.flatnonzero(~valid).tolist():
            out[i] = None
    return out


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def piece_from_python(values: list) -> Piece:
    """A typed piece from Python values (None allowed), as the vectorised path would have made it.

    Used for layouts with few messages, decoded message by message: their columns keep the kind of
    the big layouts' columns (int, float, datetime, bool) instead of turning them into objects.
    """
    types = {type(v) for v in values}
    has_none = type(None) in types
    types.discard(type(None))
    if not types:
        return Piece(NULL, np.zeros(len(values), dtype=bool), np.zeros(len(values), dtype=bool))
    valid = np.array([v is not None for v in values], dtype=bool) if has_none else None
    if len(types) == 1:
        only = types.pop()
        if only is int and all(_INT64_MIN <= v <= _INT64_MAX for v in values if v is not None):
            return Piece(INT, np.array([0 if v is None else v for v in values], dtype=np.int64), valid)
        if only is float:
            return Piece(FLOAT, np.array([math.nan if v is None else v for v in values], dtype=np.float64), valid)
        if only is bool:
            return Piece(BOOL, np.array([bool(v) for v in values], dtype=bool), valid)
        if only is dt.datetime and all(v.microsecond == 0 for v in values if v is not None):
            return Piece(DATETIME, np.array(values, dtype="datetime64[s]"), valid)
    return object_piece(values)


def object_piece(values: list) -> Piece:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return Piece(OBJECT, array)


def raw_piece(raw: RawColumn) -> Piece:
    """A raw column as reported for unknown fields and developer fields (no profile processing)."""
    if raw.kind == "int":
        return Piece(INT, raw.values, raw.valid)
    if raw.kind == "float":
        return Piece(FLOAT, raw.values, raw.valid)
    if raw.kind == "array":
        return Piece(ARRAY, raw.values, None if raw.valid.all() else raw.valid)
    if raw.kind == "byte":
        return Piece(BYTES, raw.values, None if raw.valid.all() else raw.valid)
    return object_piece(raw.python_values())


# -- enum names --------------------------------------------------------------------------------
_ENUM_TABLES: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _enum_table(enum: Mapping[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted enum values and their names (cached: profile enums live as long as the process)."""
    table = _ENUM_TABLES.get(id(enum))
    if table is None:
        keys = sorted(enum)
        names = np.empty(len(keys), dtype=object)
        names[:] = [enum[k] for k in keys]
        table = _ENUM_TABLES[id(enum)] = (np.array(keys, dtype=np.int64), names)
    return table


def render_enum(piece: Piece, enum: Mapping[int, str] | None) -> Piece:
    if not enum or piece.kind in (ARRAY, BYTES):
        return piece  # tuples are never enum values
    if piece.kind == INT and piece.values.dtype == np.int64:
        keys, names = _enum_table(enum)
        values, valid = piece.values, piece.valid
        at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
        named = keys[at] == values
        if valid is not None:
            named &= valid
        if not named.any():
            return piece  # no value has a name: numbers stay numbers
        out = values.astype(object)
        out[named] = names[at[named]]
        if valid is not None:
            out[~valid] = None
        return Piece(OBJECT, out)
    return object_piece([render_one(v, enum) for v in piece.python_values()])


def render_one(value: object, enum: Mapping[int, str]) -> object:
    try:
        return enum.get(value, value)  # type: ignore[call-overload]
    except TypeError:  # unhashable: never the case for fitparse's values, kept for safety
        return value


# -- scale and offset --------------------------------------------------------------------------
def apply_scale(piece: Piece, scale: float | None, offset: float | None) -> Piece:
    if not scale and not offset:
        return piece
    if piece.kind in (INT, FLOAT, ARRAY):
        values = piece.values
        kind = ARRAY if piece.kind == ARRAY else FLOAT
        if scale:
            values = values.astype(np.float64) / scale
            if offset:
                values = values - offset
            return Piece(kind, values, piece.valid)
        # int - float gives a float in Python: only an integer offset keeps integers integers
        return Piece(piece.kind if isinstance(offset, int) else kind, values - offset, piece.valid)
    return object_piece([scale_one(v, scale, offset) for v in piece.python_values()])


def scale_one(value: object, scale: float | None, offset: float | None) -> object:
    if isinstance(value, tuple):
        return tuple(scale_one(v, scale, offset) for v in value)
    if isinstance(value, (int, float)):
        if scale:
            value = float(value) / scale
        if offset:
            value = value - offset
    return value


# -- type processors ---------------------------------------------------------------------------
def _fit_datetime(value: int | float) -> dt.datetime | int | float:
    try:
        return dt.datetime.fromtimestamp(FIT_EPOCH_UNIX + value, dt.timezone.utc).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return value  # out of datetime's range (a float field holding 1e31): fitparse fails here


def _time_of_day(value: int) -> dt.time | int:
    minutes, seconds = divmod(value, 60)
    hours, minutes = divmod(minutes, 60)
    return dt.time(hours, minutes, seconds) if 0 <= hours < 24 else value


def process_one(value: object, type_name: str) -> object:
    if value is None or isinstance(value, (tuple, str)):
        return value  # fitparse would fail on these (TypeError); leave them as they are
    if type_name == "bool":
        return bool(value)
    if type_name == "date_time":
        return _fit_datetime(value) if value >= MIN_WALL_CLOCK else value  # type: ignore[operator]
    if type_name == "local_date_time":
        return _fit_datetime(value)  # type: ignore[arg-type]
    if type_name == "localtime_into_day" and isinstance(value, int):
        return _time_of_day(value)
    return value


def _to_datetime64(seconds: np.ndarray) -> np.ndarray:
    return (seconds.astype(np.int64) + FIT_EPOCH_UNIX).astype("datetime64[s]")


def process_type(piece: Piece, type_name: str) -> Piece:
    if type_name not in ("bool", "date_time", "local_date_time", "localtime_into_day"):
        return piece
    if piece.kind in (ARRAY, BYTES):
        return piece  # fitparse's processors fail on tuples; leave them as they are
    if piece.kind == INT and type_name != "localtime_into_day":
        if type_name == "bool":
            return Piece(BOOL, piece.values != 0, piece.valid)
        values, valid = piece.values, piece.valid
        wall_clock = values >= MIN_WALL_CLOCK if type_name == "date_time" else None
        if wall_clock is None or wall_clock[valid if valid is not None else slice(None)].all():
            return Piece(DATETIME, _to_datetime64(values), valid)
    return object_piece([process_one(v, type_name) for v in piece.python_values()])


def finish(
    piece: Piece, enum: Mapping[int, str] | None, scale: float | None, offset: float | None, type_name: str
) -> Piece:
    """Enum names, then scale/offset, then the type processor: fitparse's order for a field's value."""
    return process_type(apply_scale(render_enum(piece, enum), scale, offset), type_name)
