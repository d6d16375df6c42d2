"""Values that depend on earlier messages: accumulated components and compressed timestamps.

Both are "roll-over" counters: a field stores only the low ``bits`` bits of a growing total, and the
decoder adds ``2**bits`` every time the stored value is smaller than the previous one. fitparse does
this message by message (``_apply_compressed_accumulation``); here it is computed for a whole
sequence with a cumulative sum of the roll-overs, which gives the same totals:

    total[i] = low[i] + (anchor & ~mask) + 2**bits * (number of j <= i with low[j] < low[j-1])

where the anchor is the last full value (0 after a reset) and ``low[0]`` compares with the anchor's
low bits. Accumulated components restart at every definition message that declares their source
field; compressed timestamps take their anchor from the last ``timestamp`` (field 253) of any message
and restart at each chained file.
"""

from __future__ import annotations

import numpy as np

from .layoutdecode import Pending
from .profile import TIMESTAMP_FIELD_NUM
from .rawvalues import gather_rows, raw_column
from .walk import FileLayout


def _rollover_totals(low: np.ndarray, anchor: np.ndarray, new_chain: np.ndarray, bits: int) -> np.ndarray:
    """Totals for values ``low`` in order; ``new_chain[i]`` starts a chain at ``anchor[i]``."""
    period = 1 << bits
    mask = period - 1
    previous_low = np.empty_like(low)
    previous_low[1:] = low[:-1]
    previous_low[new_chain] = anchor[new_chain] & mask
    wraps = np.cumsum(low < previous_low)
    chain_start = np.maximum.accumulate(np.where(new_chain, np.arange(len(low)), 0))
    wraps_before = wraps[chain_start] - (low[chain_start] < previous_low[chain_start])
    return low + (anchor & ~mask) + period * (wraps - wraps_before)


def resolve_accumulations(pendings: list[tuple[Pending, np.ndarray]], resets: dict[int, np.ndarray]) -> None:
    """Fill ``pending.piece`` for accumulated components of one message type.

    ``pendings`` pairs each Pending with the record offsets of its layout's rows, in emission order
    within a message; ``resets[key]`` holds the offsets of the definitions that restart ``key``.
    """
    by_key: dict[int, list[tuple[int, Pending, np.ndarray]]] = {}
    for seq, (pending, offsets) in enumerate(pendings):
        by_key.setdefault(pending.key, []).append((seq, pending, offsets))
    for key, items in by_key.items():
        offsets = np.concatenate([o[p.participates] for _, p, o in items])
        seqs = np.concatenate([np.full(int(p.participates.sum()), s) for s, p, _ in items])
        low = np.concatenate([p.values[p.participates] for _, p, _ in items]).astype(np.int64)
        order = np.lexsort((seqs, offsets))
        offsets, low = offsets[order], low[order]
        segment = np.searchsorted(np.sort(resets.get(key, np.empty(0, np.int64))), offsets)
        new_chain = np.ones(len(low), dtype=bool)
        new_chain[1:] = segment[1:] != segment[:-1]
        bits = {p.bits for _, p, _ in items}
        if len(bits) == 1:
            totals = _rollover_totals(low, np.zeros_like(low), new_chain, bits.pop())
        else:
            totals = _rollover_loop(low, new_chain, np.concatenate(
                [np.full(int(p.participates.sum()), p.bits) for _, p, _ in items])[order])
        result = np.empty_like(totals)
        result[order] = totals
        at = 0
        for _, pending, _ in items:
            count = int(pending.participates.sum())
            values = pending.values.astype(np.int64, copy=True)
            values[pending.participates] = result[at : at + count]
            at += count
            pending.piece = pending.complete(values)


def _rollover_loop(low: np.ndarray, new_chain: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """fitparse's accumulation step by step, for the rare key fed by components of different widths."""
    out = np.empty_like(low)
    total = 0
    for i, (value, start, width) in enumerate(zip(low.tolist(), new_chain.tolist(), bits.tolist())):
        if start:
            total = 0
        period = 1 << width
        base = value + (total & ~(period - 1))
        if value < (total & (period - 1)):
            base += period
        out[i] = total = base
    return out


def compressed_timestamps(data: bytes, file_layout: FileLayout) -> tuple[np.ndarray, np.ndarray]:
    """Record offsets of compressed-timestamp messages, sorted, and the timestamp of each (raw seconds)."""
    if not file_layout.compressed:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    anchor_offsets = [np.asarray(file_layout.part_starts, dtype=np.int64)]
    anchor_values = [np.zeros(len(file_layout.part_starts), dtype=np.int64)]
    for layout in file_layout.layouts:
        indices = [i for i, fd in enumerate((*layout.fields, *layout.dev_fields)) if fd.num == TIMESTAMP_FIELD_NUM]
        if not indices or not layout.offsets or not layout.readable:
            continue
        offsets = np.fromiter(layout.offsets, dtype=np.int64, count=len(layout.offsets))
        rows = gather_rows(data, layout, offsets)
        value = np.zeros(len(offsets), dtype=np.int64)
        known = np.zeros(len(offsets), dtype=bool)
        all_fields = (*layout.fields, *layout.dev_fields)
        for i in indices:  # the last valid timestamp field of a message is the one that counts
            raw = raw_column(rows, i, all_fields[i].base_type, all_fields[i].count)
            if raw.kind != "int":
                continue  # fitparse would store a non-integer and fail later; ignore it
            ok = np.ones(len(offsets), dtype=bool) if raw.valid is None else raw.valid
            value[ok] = raw.values[ok].astype(np.int64)
            known |= ok
        anchor_offsets.append(offsets[known])
        anchor_values.append(value[known])
    comp_offsets = np.array([o for o, _ in file_layout.compressed], dtype=np.int64)
    comp_low = np.array([t for _, t in file_layout.compressed], dtype=np.int64)
    a_off = np.concatenate(anchor_offsets)
    n_anchor = len(a_off)
    offsets = np.concatenate([a_off, comp_offsets])
    kinds = np.concatenate([np.zeros(n_anchor, dtype=np.int8), np.ones(len(comp_offsets), dtype=np.int8)])
    values = np.concatenate([*anchor_values, comp_low])
    order = np.lexsort((kinds, offsets))  # a message's own timestamp field counts before its header
    kinds, values = kinds[order], values[order]
    is_anchor = kinds == 0
    anchor = values[np.maximum.accumulate(np.where(is_anchor, np.arange(len(values)), 0))]
    # Chains start right after an anchor; the anchor rows themselves are dropped below.
    compressed = ~is_anchor
    new_chain = compressed & np.concatenate([[True], is_anchor[:-1]])
    low = values[compressed]
    totals = _rollover_totals(low, anchor[compressed], new_chain[compressed], 5)
    comp_sorted_offsets = offsets[order][compressed]
    return comp_sorted_offsets, totals
