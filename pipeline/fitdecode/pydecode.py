"""Message-by-message decoding in plain Python, for message types or layouts with few messages.

NumPy pays ~1 us per call whatever the array size, and the vectorised path makes ~10 calls per
field; a ``session`` message with 100 fields would cost ~1 ms that way. For message types with few
messages (file_id, session, activity, usually lap and device_info), and for layouts used by only a
few messages of the other types, this module decodes each message
with one ``struct.unpack_from`` and applies fitparse's rules value by value, producing the
``get_values()`` dicts directly. Semantics are the same as the vectorised path (both are tested
against fitparse on the whole corpus): sub-fields, components, accumulation restarting at each
definition, compressed timestamps, last value wins for a repeated name.
"""

from __future__ import annotations

import struct
from typing import Sequence

import numpy as np

from .profile import Component, MessageSpec, TIMESTAMP_VARIANT, Variant
from .rawvalues import parse_string
from .values import process_one, render_one, scale_one
from .walk import Layout


class _Unpacker:
    """Reads all raw values of one message of a layout with a single struct call."""

    def __init__(self, layout: Layout) -> None:
        fmt = [">" if layout.big_endian else "<"]
        self.slots: list[tuple[int, int, str, object]] = []  # (start in tuple, count, kind, invalid)
        at = 0
        for fd in (*layout.fields, *layout.dev_fields):
            bt = fd.base_type
            if bt.kind == "string":
                fmt.append(f"{fd.count}s")
                self.slots.append((at, 1, "string", None))
                at += 1
            else:
                fmt.append(f"{fd.count}{bt.numpy_char}")
                self.slots.append((at, fd.count, bt.kind, bt.invalid))
                at += fd.count
        self.struct = struct.Struct("".join(fmt))
        # Only single numbers (the usual case): one comprehension; NaN is the float invalid (v != v).
        self.simple = all(count == 1 and kind in ("int", "float") for _, count, kind, _ in self.slots)
        self.invalids = [invalid for _, _, _, invalid in self.slots]

    def raw_values(self, data: bytes, payload: int) -> list[object]:
        flat = self.struct.unpack_from(data, payload)
        if self.simple:
            return [None if v == invalid or v != v else v for v, invalid in zip(flat, self.invalids)]
        out: list[object] = []
        for start, count, kind, invalid in self.slots:
            if kind == "int" and count == 1:
                v = flat[start]
                out.append(None if v == invalid else v)
            elif kind == "string":
                out.append(parse_string(flat[start]))
            elif kind == "byte":
                raw = flat[start : start + count]
                out.append(None if all(b == 0xFF for b in raw) else raw)
            elif kind == "float":
                vals = tuple(None if v != v else v for v in flat[start : start + count])
                out.append(vals[0] if count == 1 else vals)
            else:
                out.append(tuple(None if v == invalid else v for v in flat[start : start + count]))
        return out


_PROCESSED_TYPES = frozenset({"bool", "date_time", "local_date_time", "localtime_into_day"})
_PLAIN, _SCALED, _GENERAL = 0, 1, 2


def _plan(layout: Layout, spec: MessageSpec) -> list[tuple]:
    """Per field, the cheapest rule that gives fitparse's value (general rule when in doubt)."""
    plan: list[tuple] = []
    for index, fd in enumerate(layout.fields):
        field_spec = spec.fields.get(fd.num)
        if field_spec is None:
            plan.append((_PLAIN, index, f"unknown_{fd.num}", None, None))
            continue
        main = field_spec.main
        if field_spec.subfields or main.components or main.enum or main.type_name in _PROCESSED_TYPES:
            plan.append((_GENERAL, index, field_spec, None, None))
        elif main.scale or main.offset:
            plan.append((_SCALED, index, main.name, main.scale, main.offset))
        else:
            plan.append((_PLAIN, index, main.name, None, None))
    return plan


def _variant(spec_field, nums: Sequence[int], raws: Sequence[object]) -> Variant:  # noqa: ANN001
    """fitparse's ``_resolve_subfield``: the first sub-field one of whose references matches."""
    for sub in spec_field.subfields:
        for ref_num, ref_value in sub.refs:
            for num, raw in zip(nums, raws):
                if num == ref_num and raw == ref_value:
                    return sub.variant
    return spec_field.main


_SKIP = object()


def _component_value(raw: object, comp: Component) -> object:
    """fitparse's ``ComponentField.render``; _SKIP where it raises ValueError (no value at all)."""
    if raw is None:
        return None
    if isinstance(raw, tuple):
        if comp.bit_offset and comp.bit_offset >= len(raw) << 3:
            return _SKIP
        if None in raw:
            return None  # fitparse fails here (TypeError); report no value
        number = 0
        for item in reversed(raw):
            number = (number << 8) + item
        raw = number
    if isinstance(raw, int):
        return (raw >> comp.bit_offset) & ((1 << comp.bits) - 1)
    return raw


def _accumulate(value: int, total: int, bits: int) -> int:
    period = 1 << bits
    base = value + (total & ~(period - 1))
    if value < (total & (period - 1)):
        base += period
    return base


def decode_rows(
    data: bytes, layouts: list[Layout], spec: MessageSpec, compressed_times: dict[int, int]
) -> tuple[np.ndarray, list[dict]]:
    """Record offsets (file order) and value dicts of the messages of ``layouts`` (one message type).

    ``layouts`` should include the type's layouts that no message uses: their definitions still
    restart accumulated totals, as in fitparse.
    """
    events: list[tuple[int, int, Layout]] = []  # (offset, 0 = definition / 1 = message, layout)
    for layout in layouts:
        events.extend((off, 0, layout) for off in layout.definition_offsets)
        events.extend((off, 1, layout) for off in layout.offsets)
    events.sort(key=lambda e: e[0])
    unpackers: dict[int, tuple[_Unpacker, list[tuple], list[int]]] = {}
    totals: dict[int, int] = {}
    offsets: list[int] = []
    rows: list[dict] = []
    for offset, is_message, layout in events:
        if not is_message:
            for fd in layout.fields:
                field_spec = spec.fields.get(fd.num)
                for key in field_spec.accumulated_targets if field_spec else ():
                    totals[key] = 0
            continue
        prepared = unpackers.get(id(layout))
        if prepared is None:
            nums = [fd.num for fd in layout.fields]
            prepared = unpackers[id(layout)] = (_Unpacker(layout), _plan(layout, spec), nums)
        unpacker, plan, nums = prepared
        raws = unpacker.raw_values(data, offset + 1)
        offsets.append(offset)
        rows.append(_message_values(layout, spec, plan, nums, raws, totals, compressed_times.get(offset)))
    return np.asarray(offsets, dtype=np.int64), rows


def _message_values(
    layout: Layout,
    spec: MessageSpec,
    plan: list[tuple],
    nums: list[int],
    raws: list[object],
    totals: dict[int, int],
    compressed_time: int | None,
) -> dict:
    values: dict = {}
    for rule, index, what, scale, offset in plan:
        raw = raws[index]
        if rule == _PLAIN:
            values[what] = raw
            continue
        if rule == _SCALED:
            values[what] = raw if raw is None else scale_one(raw, scale, offset)
            continue
        field_spec = what
        variant = _variant(field_spec, nums, raws) if field_spec.subfields else field_spec.main
        for comp in variant.components:
            value = _component_value(raw, comp)
            if value is _SKIP:
                continue
            if comp.accumulate and isinstance(value, int):
                value = totals[comp.target_num] = _accumulate(value, totals.get(comp.target_num, 0), comp.bits)
            value = scale_one(value, comp.scale, comp.offset)
            target_spec = spec.fields[comp.target_num]
            target = _variant(target_spec, nums, raws) if target_spec.subfields else target_spec.main
            if target.enum:
                value = render_one(value, target.enum)
            values[target.name] = process_one(value, target.type_name)
        value = render_one(raw, variant.enum) if variant.enum else raw
        if variant.scale or variant.offset:
            value = scale_one(value, variant.scale, variant.offset)
        values[variant.name] = process_one(value, variant.type_name)
    for dev_fd, raw in zip(layout.dev_fields, raws[len(nums) :]):
        values[dev_fd.name] = raw
    if compressed_time is not None:
        values[TIMESTAMP_VARIANT.name] = process_one(compressed_time, TIMESTAMP_VARIANT.type_name)
    return values
