"""Raw field values: all data messages of one layout at once with NumPy, or one value in Python.

"Raw" means what fitparse calls the raw value: the stored number with the base type's invalid
value replaced by None, before any scale, offset, enum name or component is applied. Arrays (a
field holding several values) become tuples of such values; ``byte`` fields are tuples of bytes,
None when every byte is 0xFF; strings are cut at the first NUL, decoded as UTF-8 with
replacement, and None when empty.

The vectorised reader views the file buffer as an array of opaque records whose element ``i`` is the
message payload starting at byte ``i`` (stride 1, no copy), gathers the rows of one layout with a
single fancy-index (one memcpy per message, whatever the number of fields), and views the result
with a structured dtype built from the definition.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .profile import BaseType

if TYPE_CHECKING:
    from .walk import Layout


def parse_string(raw: bytes) -> str | None:
    end = raw.find(b"\x00")
    if end >= 0:
        raw = raw[:end]
    return raw.decode("utf-8", errors="replace") or None


def _scrub(value: int | float, base_type: BaseType) -> int | float | None:
    if base_type.kind == "float":
        return None if math.isnan(value) else value
    return None if value == base_type.invalid else value


def parse_raw_python(data: bytes, at: int, base_type: BaseType, count: int, big_endian: bool) -> object:
    """fitparse's raw value of one field stored at ``data[at:]``."""
    if base_type.kind == "string":
        return parse_string(bytes(data[at : at + count]))
    if base_type.kind == "byte":
        raw = tuple(data[at : at + count])
        return None if all(b == 0xFF for b in raw) else raw
    values = struct.unpack_from(f"{'>' if big_endian else '<'}{count}{base_type.numpy_char}", data, at)
    if count == 1:
        return _scrub(values[0], base_type)
    return tuple(_scrub(v, base_type) for v in values)


@dataclass(slots=True)
class RawColumn:
    """Raw values of one field for every message of a layout.

    kind "int": ``values`` int64 (uint64 for 64-bit unsigned), ``valid`` marks non-invalid values;
    kind "float": float64, NaN where invalid; kind "array": 2-D values, ``valid`` 2-D per element;
    kind "byte": 2-D uint8, ``valid`` marks rows that are not all 0xFF; kind "string": an object
    array of str or None (``valid`` is None).
    """

    kind: str
    values: np.ndarray
    valid: np.ndarray | None
    base_type: BaseType

    def python_values(self, rows: np.ndarray | None = None) -> list:
        """The raw values as fitparse has them (None, int, float, tuple or str), optionally for some rows."""
        values = self.values if rows is None else self.values[rows]
        valid = self.valid if rows is None or self.valid is None else self.valid[rows]
        if self.kind == "string":
            return values.tolist()
        if self.kind == "byte":
            return [tuple(r) if ok else None for r, ok in zip(values.tolist(), valid.tolist())]
        if self.kind == "array":
            return [
                tuple(v if ok else None for v, ok in zip(r, oks))
                for r, oks in zip(values.tolist(), valid.tolist())
            ]
        out = values.tolist()
        if valid is not None and not valid.all():
            for i in np.flatnonzero(~valid).tolist():
                out[i] = None
        return out


@functools.lru_cache(maxsize=4096)
def _field_dtype(kind: str, numpy_char: str, count: int, big_endian: bool) -> np.dtype:
    if kind in ("string", "byte"):
        return np.dtype((np.uint8, (count,)))
    scalar = np.dtype(numpy_char).newbyteorder(">" if big_endian else "<")
    return scalar if count == 1 else np.dtype((scalar, (count,)))


def layout_dtype(layout: Layout) -> np.dtype:
    """Structured dtype of a layout's payload: fields ``f0..`` then developer fields ``d0..``."""
    names, formats, offsets = [], [], []
    for i, (fd, at) in enumerate(zip((*layout.fields, *layout.dev_fields), layout.field_byte_offsets())):
        names.append(f"f{i}")
        formats.append(_field_dtype(fd.base_type.kind, fd.base_type.numpy_char, fd.count, layout.big_endian))
        offsets.append(at)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": layout.payload_size})


def gather_rows(data: bytes, layout: Layout, offsets: np.ndarray) -> np.ndarray:
    """Payloads of the messages whose record headers are at ``offsets``, as one structured array."""
    dtype = layout_dtype(layout)
    # Gather as opaque records (one memcpy each), then view them with the fields: 25x faster than
    # fancy-indexing the structured view directly, which copies field by field.
    record = np.dtype((np.void, dtype.itemsize))
    windows = np.ndarray(shape=(len(data) - dtype.itemsize + 1,), dtype=record, buffer=data, strides=(1,))
    return windows[offsets + 1].view(dtype)


def raw_column(rows: np.ndarray, index: int, base_type: BaseType, count: int) -> RawColumn:
    """Parse field number ``index`` (position in the layout) of gathered ``rows``."""
    stored = rows[f"f{index}"]
    kind = base_type.kind
    if kind == "string":
        width = stored.shape[1] if stored.ndim == 2 else 1
        blob = np.ascontiguousarray(stored).tobytes()
        strings = [parse_string(blob[i : i + width]) for i in range(0, len(blob), width)]
        return RawColumn("string", np.array(strings + [None], dtype=object)[:-1], None, base_type)
    if kind == "byte":
        stored = stored.reshape(len(stored), -1)
        return RawColumn("byte", stored, (stored != 0xFF).any(axis=1), base_type)
    if kind == "float":
        with np.errstate(invalid="ignore"):  # signalling NaNs: still NaN, so still invalid
            values = stored.astype(np.float64)
        valid = ~np.isnan(values)
    else:
        values = stored.astype(np.uint64 if base_type.size == 8 and base_type.name.startswith("u") else np.int64)
        valid = stored != base_type.invalid
    if count > 1:
        return RawColumn("array", values, valid, base_type)
    return RawColumn(kind, values, None if valid.all() else valid, base_type)


def raw_columns(data: bytes, layout: Layout, offsets: np.ndarray) -> list[RawColumn]:
    """Raw columns of every field then every developer field of ``layout`` for the given messages."""
    all_fields: Sequence = (*layout.fields, *layout.dev_fields)
    if not all_fields:
        return []
    rows = gather_rows(data, layout, offsets)
    return [raw_column(rows, i, fd.base_type, fd.count) for i, fd in enumerate(all_fields)]
