"""Decode every data message of one layout at once into named value columns ("emissions").

For each field of the layout, in definition order, fitparse produces: first one value per component
(bits of this field that make up another field, e.g. ``enhanced_speed`` from ``speed``), then the
field's own value, under the name of the sub-field whose reference field matches in that message
(e.g. ``steps`` instead of ``cycles`` when ``activity_type`` is walking) or else the field's name;
unknown fields are ``unknown_<n>`` with their raw value; developer fields come last under their
described names. When a name repeats in a message the last value wins, as in ``get_values()``.

Here each of those becomes an :class:`Emission` covering all messages of the layout: a name, the
rows it applies to (sub-field choice varies per message) and a :class:`~.values.Piece`. Components
that accumulate (``distance`` from ``compressed_speed_distance``) depend on earlier messages, so
they are emitted as :class:`Pending` and completed once all layouts are known (:mod:`.sequences`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .profile import Component, FieldSpec, MessageSpec, Variant
from .rawvalues import RawColumn, raw_columns
from .values import INT, OBJECT, Piece, apply_scale, finish, object_piece, process_type, raw_piece, render_enum
from .walk import Layout


@dataclass(slots=True)
class Pending:
    """An accumulating component: raw values known now, running totals known after all layouts."""

    key: int  # target field number: fitparse keeps one running total per (message, target field)
    bits: int
    values: np.ndarray  # int64, one per row of the layout
    participates: np.ndarray  # rows where the total advances (the component was read and valid)
    complete: Callable[[np.ndarray], Piece]  # running totals -> the emitted piece
    piece: Piece | None = None


@dataclass(slots=True)
class Emission:
    name: object  # str, except for odd developer field names, which fitparse uses as they are
    rows: np.ndarray | None  # bool mask over the layout's messages; None = all
    piece: Piece | Pending


def _variant_rows(
    spec: FieldSpec, raws_by_num: dict[int, list[RawColumn]], n: int
) -> list[tuple[Variant, np.ndarray | None]]:
    """Which variant (the field or one of its sub-fields) applies to which rows."""
    if not spec.subfields:
        return [(spec.main, None)]
    choice = np.zeros(n, dtype=np.int8)  # 0 = main field, k = k-th sub-field
    for k in range(len(spec.subfields), 0, -1):  # the first matching sub-field wins
        match = np.zeros(n, dtype=bool)
        for ref_num, ref_value in spec.subfields[k - 1].refs:
            for raw in raws_by_num.get(ref_num, ()):
                if raw.kind in ("int", "float"):
                    hit = raw.values == ref_value
                    match |= hit if raw.valid is None else hit & raw.valid
        choice[match] = k
    if not choice.any():
        return [(spec.main, None)]
    variants = [spec.main] + [sf.variant for sf in spec.subfields]
    return [(variants[k], choice == k) for k in np.unique(choice).tolist()]


def _and(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    return a if b is None else a & b


def _component_raw(raw: RawColumn, comp: Component) -> tuple[Piece, np.ndarray | None]:
    """fitparse's ``ComponentField.render``: the component's bits of each raw value.

    Returns the piece and the rows where the component exists (None = all rows); a byte field too
    short for the component's bit offset yields no value at all, except where the field is invalid.
    """
    mask = (1 << comp.bits) - 1
    if raw.kind == "int":
        values = raw.values
        if values.dtype == np.uint64:
            values = ((values >> np.uint64(comp.bit_offset)) & np.uint64(mask)).astype(np.int64)
        else:
            values = (values >> comp.bit_offset) & mask
        return Piece(INT, values, raw.valid), None
    if raw.kind == "byte":
        width = raw.values.shape[1]
        if comp.bit_offset >= width * 8:
            return Piece(OBJECT, np.full(len(raw.values), None, dtype=object)), ~raw.valid
        if width <= 8:
            packed = np.zeros(len(raw.values), dtype=np.uint64)
            for k in range(width):
                packed |= raw.values[:, k].astype(np.uint64) << np.uint64(8 * k)
            values = ((packed >> np.uint64(comp.bit_offset)) & np.uint64(mask)).astype(np.int64)
            return Piece(INT, values, None if raw.valid.all() else raw.valid), None
    if raw.kind in ("byte", "array"):
        width = raw.values.shape[1]
        if comp.bit_offset >= width * 8:
            exists = np.array([v is None for v in raw.python_values()], dtype=bool)
            return object_piece([None] * len(exists)), exists
        return object_piece([_unpack_tuple(v, comp, mask) for v in raw.python_values()]), None
    return raw_piece(raw), None  # float or string: fitparse passes it through unchanged


def _unpack_tuple(value: tuple | None, comp: Component, mask: int) -> int | None:
    if value is None or None in value:
        return None  # fitparse fails on a None inside the tuple; report no value instead
    number = 0
    for item in reversed(value):
        number = (number << 8) + item
    return (number >> comp.bit_offset) & mask


def _component_emissions(
    comp: Component,
    raw: RawColumn,
    rows: np.ndarray | None,
    spec: MessageSpec,
    raws_by_num: dict[int, list[RawColumn]],
    n: int,
) -> list[Emission]:
    piece, exists = _component_raw(raw, comp)
    rows = _and(rows, exists)
    out: list[Emission] = []
    for target, target_rows in _variant_rows(spec.fields[comp.target_num], raws_by_num, n):

        def complete(values: Piece, target: Variant = target) -> Piece:
            scaled = apply_scale(values, comp.scale, comp.offset)
            return process_type(render_enum(scaled, target.enum), target.type_name)

        emit_rows = _and(rows, target_rows)
        if comp.accumulate and piece.kind == INT:
            participates = np.ones(n, dtype=bool) if emit_rows is None else emit_rows.copy()
            if piece.valid is not None:
                participates &= piece.valid
            valid = piece.valid

            def complete_totals(totals: np.ndarray, complete=complete, valid=valid) -> Piece:
                return complete(Piece(INT, totals, valid))

            pending = Pending(comp.target_num, comp.bits, piece.values, participates, complete_totals)
            out.append(Emission(target.name, emit_rows, pending))
        else:
            out.append(Emission(target.name, emit_rows, complete(piece)))
    return out


def decode_layout(data: bytes, layout: Layout, spec: MessageSpec, offsets: np.ndarray) -> list[Emission]:
    """All emissions of one layout, in fitparse's order (later ones win for a repeated name)."""
    n = len(offsets)
    raws = raw_columns(data, layout, offsets)
    raws_by_num: dict[int, list[RawColumn]] = {}
    for fd, raw in zip(layout.fields, raws):
        raws_by_num.setdefault(fd.num, []).append(raw)
    emissions: list[Emission] = []
    for fd, raw in zip(layout.fields, raws):
        field_spec = spec.fields.get(fd.num)
        if field_spec is None:
            emissions.append(Emission(f"unknown_{fd.num}", None, raw_piece(raw)))
            continue
        for variant, rows in _variant_rows(field_spec, raws_by_num, n):
            for comp in variant.components:
                emissions.extend(_component_emissions(comp, raw, rows, spec, raws_by_num, n))
            value = finish(raw_piece(raw), variant.enum, variant.scale, variant.offset, variant.type_name)
            emissions.append(Emission(variant.name, rows, value))
    for dev_fd, raw in zip(layout.dev_fields, raws[len(layout.fields) :]):
        emissions.append(Emission(dev_fd.name, None, raw_piece(raw)))
    return emissions

