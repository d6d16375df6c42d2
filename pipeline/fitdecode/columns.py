"""The decoded result: one :class:`Column` per field name and message type, in file order.

A column is filled by writes of pieces (one per layout, or per sub-field choice) in fitparse's
order, so a later value for the same name and message replaces an earlier one, exactly like
fitparse's ``get_values()`` dict. It records where a message has the field at all (``present``) and
where fitparse would report None (``valid``). Columns and fitparse-style dicts convert both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np

from .values import ARRAY, BOOL, BYTES, DATETIME, FLOAT, INT, NULL, OBJECT, Piece, piece_from_python, python_values

_DTYPES = {INT: np.int64, FLOAT: np.float64, DATETIME: "datetime64[s]", BOOL: bool, OBJECT: object}


@dataclass(slots=True)
class Column:
    """One field of one message type, for every message of that type in file order.

    ``kind`` is "int" (int64; uint64 for huge unsigned values), "float" (float64), "datetime"
    (datetime64[s], naive UTC), "bool", "array" (2-D: several numbers per message, ``valid`` per
    number), "bytes" (2-D uint8, a byte field) or "object" (Python values: enum names, strings,
    tuples, or a mix). ``valid`` is False where the value is missing (fitparse's None), ``present``
    is False where the message does not carry the field at all; None means all True.
    """

    kind: str
    values: np.ndarray
    valid: np.ndarray | None = None
    present: np.ndarray | None = None

    def python_values(self) -> list:
        """Values as fitparse reports them: None where invalid (and where absent)."""
        out = python_values(self.kind, self.values, self.valid)
        if self.present is not None:
            for i in np.flatnonzero(~self.present).tolist():
                out[i] = None
        return out


class MessageColumns:
    """All decoded messages of one type: record offsets and one Column per field name.

    Message types with many messages are decoded column-wise (``columns`` is filled directly);
    those with a few are decoded message by message into dicts (see :mod:`.pydecode`), and their
    columns are built from the dicts when first asked for.
    """

    def __init__(
        self,
        name: str,
        offsets: np.ndarray,
        columns: dict[object, Column] | None = None,
        rows: list[dict] | None = None,
    ) -> None:
        self.name = name
        self.offsets = offsets  # byte offset of each message's record header, file order
        self._columns = columns
        self._rows = rows

    def __len__(self) -> int:
        return len(self.offsets)

    def __repr__(self) -> str:
        return f"MessageColumns({self.name!r}, {len(self)} messages)"

    @property
    def columns(self) -> dict[object, Column]:
        if self._columns is None:
            self._columns = _columns_from_rows(self._rows or [])
        return self._columns

    def to_dicts(self) -> list[dict]:
        """The messages as fitparse ``get_values()`` dicts (a new list of new dicts each time)."""
        if self._rows is not None:
            return [dict(row) for row in self._rows]
        return _rows_from_columns(self.columns, len(self))


def _columns_from_rows(rows: list[dict]) -> dict[object, Column]:
    columns = {}
    for name, present, piece in pieces_from_rows(rows):
        builder = ColumnBuilder()
        builder.add(None if present is None else np.flatnonzero(present), None, piece)
        columns[name] = builder.build(len(rows))
    return columns


def pieces_from_rows(rows: list[dict]) -> list[tuple[object, np.ndarray | None, Piece]]:
    """Per name in the dicts: the rows that have it (None = all) and a typed piece of its values."""
    names: dict[object, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    out = []
    for name in names:
        present = [name in row for row in rows]
        if all(present):
            out.append((name, None, piece_from_python([row[name] for row in rows])))
        else:
            piece = piece_from_python([row[name] for row in rows if name in row])
            out.append((name, np.array(present, dtype=bool), piece))
    return out


def _rows_from_columns(columns: dict[object, Column], n: int) -> list[dict]:
    everywhere = [(name, col) for name, col in columns.items() if col.present is None]
    if everywhere:
        names = [name for name, _ in everywhere]
        rows = [dict(zip(names, values)) for values in zip(*(col.python_values() for _, col in everywhere))]
    else:
        rows = [{} for _ in range(n)]
    for name, col in columns.items():
        if col.present is not None:
            values = col.python_values()
            for i in np.flatnonzero(col.present).tolist():
                rows[i][name] = values[i]
    return rows


class FitColumns(Mapping[str, MessageColumns]):
    """Columns of the decoded message types present in a file, by message name."""

    def __init__(self, messages: dict[str, MessageColumns]) -> None:
        self._messages = messages

    def __getitem__(self, name: str) -> MessageColumns:
        return self._messages[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={len(m)}" for name, m in self._messages.items())
        return f"FitColumns({counts})"


class ColumnBuilder:
    """Collects writes into one column; the kind is promoted to "object" when writes disagree."""

    __slots__ = ("writes",)

    def __init__(self) -> None:
        self.writes: list[tuple[np.ndarray | None, np.ndarray | None, Piece]] = []

    def add(self, targets: np.ndarray | None, rows: np.ndarray | None, piece: Piece) -> None:
        """Write ``piece`` (its ``rows``, None = all) to the column's ``targets`` (None = all, in order)."""
        self.writes.append((targets, rows, piece))

    def build(self, n: int) -> Column:
        writes = self.writes
        if len(writes) == 1 and writes[0][0] is None and writes[0][1] is None and writes[0][2].kind != NULL:
            piece = writes[0][2]  # one write covering every message in order: use it as it is
            return Column(piece.kind, piece.values, piece.valid)
        kind = self.kind()
        if kind in (ARRAY, BYTES):
            first = next(p.values for _, _, p in writes if p.kind == kind)
            values = np.empty((n, first.shape[1]), dtype=first.dtype)
            valid = np.ones(values.shape if kind == ARRAY else n, dtype=bool)
        else:
            values = np.empty(n, dtype=_DTYPES[kind])
            valid = np.ones(n, dtype=bool)
        present = np.zeros(n, dtype=bool)
        for targets, rows, piece in writes:
            where = slice(None) if targets is None else targets
            present[where] = True
            if piece.kind == NULL:
                valid[where] = False
                if kind == OBJECT:
                    values[where] = None
            elif kind == OBJECT and piece.kind != OBJECT:
                values[where] = piece.python_values(rows)
                valid[where] = True
            else:
                values[where] = piece.values if rows is None else piece.values[rows]
                if piece.valid is None:
                    valid[where] = True
                else:
                    valid[where] = piece.valid if rows is None else piece.valid[rows]
        if kind == OBJECT:  # None is inline; ``valid`` only matters for the other kinds
            return Column(kind, values, None, None if present.all() else present)
        return Column(kind, values, None if valid.all() else valid, None if present.all() else present)

    def kind(self) -> str:
        """The column's kind: the pieces' common kind, else "object"."""
        pieces = [p for _, _, p in self.writes if p.kind != NULL]
        kinds = {p.kind for p in pieces}
        if len(kinds) != 1:
            return OBJECT  # disagreeing kinds, or nothing but None
        kind = kinds.pop()
        if kind == INT and any(p.values.dtype == np.uint64 for p in pieces):
            return OBJECT  # 64-bit unsigned values beside signed ones: keep exact Python ints
        if kind in (ARRAY, BYTES) and len({(p.values.dtype, p.values.shape[1]) for p in pieces}) > 1:
            return OBJECT  # arrays of different widths or number types
        if kind == ARRAY and len(pieces) < len(self.writes):
            return OBJECT  # a None among tuples: ARRAY columns only have None inside tuples
        return kind
