"""Decode the message types we use from a walked file into columns, in file order.

A message type can use several layouts (local definitions), interleaved in the file. Each layout
is decoded on its own, column-wise with NumPy (:mod:`.layoutdecode`) or, when it has only a few
messages, message by message (:mod:`.pydecode`, NumPy's per-call cost would dominate); a message
type with few messages in all is decoded message by message straight into dicts. Rows are then
put in file order by their record offsets and the pieces written into the columns in fitparse's
order; accumulated components and compressed timestamps are resolved across layouts first
(:mod:`.sequences`).
"""

from __future__ import annotations

import numpy as np

from .columns import ColumnBuilder, FitColumns, MessageColumns, pieces_from_rows
from .layoutdecode import Emission, Pending, decode_layout
from .profile import MESSAGES, TIMESTAMP_VARIANT, MessageSpec
from .pydecode import decode_rows
from .sequences import compressed_timestamps, resolve_accumulations
from .values import INT, OBJECT, Piece, finish
from .walk import FileLayout, Layout

#: Message types with at most this many messages are decoded message by message (see pydecode);
#: so are, in other message types, layouts with at most SMALL_LAYOUT_COUNT messages.
SMALL_MESSAGE_COUNT = 32
# A day's monitoring file has one layout of ~24 messages with full timestamps (one an hour) beside
# its timestamp_16 messages: at 12 that layout is decoded column-wise, and such a file decodes in
# 1.19 ms instead of 1.58 (medians of six interleaved passes over 400 files, CPU time), with no
# loss on the real corpus (27.4 against 24.5 MB/s, within this machine's spread).
SMALL_LAYOUT_COUNT = 12


def _emissions_from_rows(rows: list[dict]) -> list[Emission]:
    """Emissions (one per name) for messages decoded one by one (see pydecode)."""
    return [
        Emission(name, present, piece if present is None else _spread(piece, present))
        for name, present, piece in pieces_from_rows(rows)
    ]


def _spread(piece: Piece, present: np.ndarray) -> Piece:
    """A piece over the present rows, spread over all rows (absent rows are never read)."""
    where = np.flatnonzero(present)
    if piece.kind == OBJECT:
        values = np.empty(len(present), dtype=object)
    else:
        values = np.zeros((len(present), *piece.values.shape[1:]), dtype=piece.values.dtype)
    values[where] = piece.values
    valid = None
    if piece.valid is not None:
        valid = np.zeros((len(present), *piece.valid.shape[1:]), dtype=bool)
        valid[where] = piece.valid
    return Piece(piece.kind, values, valid)


def _accumulator_resets(spec: MessageSpec, layouts: list[Layout]) -> dict[int, np.ndarray]:
    """Per accumulated field, the offsets of the definitions that restart its running total."""
    resets: dict[int, list[int]] = {}
    for layout in layouts:
        for fd in layout.fields:
            field_spec = spec.fields.get(fd.num)
            for key in field_spec.accumulated_targets if field_spec else ():
                resets.setdefault(key, []).extend(layout.definition_offsets)
    return {key: np.asarray(offsets, dtype=np.int64) for key, offsets in resets.items()}


def _accumulates(spec: MessageSpec, layouts: list[Layout]) -> bool:
    for layout in layouts:
        for fd in layout.fields:
            field_spec = spec.fields.get(fd.num)
            if field_spec and field_spec.accumulated_targets:
                return True
    return False


def _message_columns(
    data: bytes,
    name: str,
    layouts: list[Layout],
    comp_offsets: np.ndarray,
    comp_times: np.ndarray,
    comp_by_offset: dict[int, int],
) -> MessageColumns:
    spec = MESSAGES[layouts[0].global_num]
    # Layouts with a few messages go message by message, unless running totals tie them to others.
    small = SMALL_LAYOUT_COUNT if not _accumulates(spec, layouts) else 0
    resets = _accumulator_resets(spec, layouts)  # definitions count even when no message uses them
    layouts = [layout for layout in layouts if layout.offsets]
    layout_offsets = [np.fromiter(lay.offsets, dtype=np.int64, count=len(lay.offsets)) for lay in layouts]
    all_offsets = np.concatenate(layout_offsets)
    single = len(layouts) == 1
    order = None if single else np.argsort(all_offsets, kind="stable")
    file_offsets = all_offsets if order is None else all_offsets[order]
    n = len(all_offsets)

    decoded: list[tuple[np.ndarray | None, list[Emission]]] = []
    pendings: list[tuple[Pending, np.ndarray]] = []
    rank = None if order is None else np.empty(n, dtype=np.int64)
    if rank is not None:
        rank[order] = np.arange(n)
    start = 0
    for layout, offsets in zip(layouts, layout_offsets):
        if len(offsets) <= small:
            emissions = _emissions_from_rows(decode_rows(data, [layout], spec, comp_by_offset)[1])
        else:
            emissions = decode_layout(data, layout, spec, offsets)
        positions = None if rank is None else rank[start : start + len(offsets)]
        start += len(offsets)
        decoded.append((positions, emissions))
        for emission in emissions:
            if isinstance(emission.piece, Pending):
                pendings.append((emission.piece, offsets))
    if pendings:
        resolve_accumulations(pendings, resets)

    builders: dict[object, ColumnBuilder] = {}
    for positions, emissions in decoded:
        for emission in emissions:
            piece = emission.piece.piece if isinstance(emission.piece, Pending) else emission.piece
            assert piece is not None
            if positions is None:
                targets = None if emission.rows is None else np.flatnonzero(emission.rows)
            else:
                targets = positions if emission.rows is None else positions[emission.rows]
            builders.setdefault(emission.name, ColumnBuilder()).add(targets, emission.rows, piece)
    if len(comp_offsets):
        hit = np.isin(file_offsets, comp_offsets)
        if hit.any():
            raw_seconds = comp_times[np.searchsorted(comp_offsets, file_offsets[hit])]
            v = TIMESTAMP_VARIANT
            piece = finish(Piece(INT, raw_seconds), v.enum, v.scale, v.offset, v.type_name)
            builders.setdefault(v.name, ColumnBuilder()).add(np.flatnonzero(hit), None, piece)
    columns = {name: builder.build(n) for name, builder in builders.items()}
    return MessageColumns(name, file_offsets, columns=columns)


def assemble(data: bytes, file_layout: FileLayout) -> FitColumns:
    """Decode the message types we use from a walked file."""
    by_message: dict[int, list[Layout]] = {}
    for layout in file_layout.layouts:  # with or without messages: definitions restart totals
        if layout.global_num in MESSAGES:
            by_message.setdefault(layout.global_num, []).append(layout)
    comp_offsets, comp_times = compressed_timestamps(data, file_layout)
    comp_by_offset = dict(zip(comp_offsets.tolist(), comp_times.tolist()))
    messages = {}
    for num, spec in MESSAGES.items():
        layouts = by_message.get(num, [])
        if not any(layout.offsets for layout in layouts):
            continue
        if sum(len(layout.offsets) for layout in layouts) <= SMALL_MESSAGE_COUNT:
            offsets, rows = decode_rows(data, layouts, spec, comp_by_offset)
            messages[spec.name] = MessageColumns(spec.name, offsets, rows=rows)
        else:
            messages[spec.name] = _message_columns(
                data, spec.name, layouts, comp_offsets, comp_times, comp_by_offset
            )
    return FitColumns(messages)
