"""Fast FIT decoding of the messages Stepwise uses, with fitparse's exact values.

Strategy (details in each module):

1. :mod:`.walk` - one Python pass over the record headers frames every message, checks the file
   header, CRCs (:mod:`.crc`, NumPy) and everything else fitparse rejects, and records, per
   message layout (local definition), the byte offsets of its data messages.
2. :mod:`.rawvalues` - per layout, all its messages are gathered with one fancy-index into a
   structured NumPy array built from the definition (endianness from its architecture byte),
   with the base type's invalid values marked.
3. :mod:`.layoutdecode` / :mod:`.values` - invalid values, sub-fields, components, enum names,
   scale/offset and date conversions are applied column-wise, in fitparse's order.
4. :mod:`.sequences` - accumulated components and compressed-timestamp headers (roll-over
   counters) are resolved across layouts with cumulative sums.
5. :mod:`.assembly` - pieces are put in file order per message type (:mod:`.columns`,
   :class:`FitColumns`); layouts or message types with few messages are decoded message by message
   instead (:mod:`.pydecode`), where NumPy's fixed cost per call would dominate;
   :mod:`.messages` turns columns into fitparse-style dicts.

The profile (field names, types, scales, offsets, units, enum names, components, sub-fields) is
compiled from fitparse's generated profile (:mod:`.profile`).
"""

from __future__ import annotations

from pathlib import Path

from .assembly import assemble
from .columns import Column, FitColumns, MessageColumns
from .messages import columns_to_messages
from .profile import MESSAGE_NAMES
from .walk import walk


def decode_columns(data: bytes, *, path: str | Path | None = None) -> FitColumns:
    """Decode the messages we use (see MESSAGE_NAMES) into columns, in file order.

    Raises :class:`pipeline.errors.CorruptFile` for every file fitparse 1.2.0 rejects; ``path`` is
    only used in that error.
    """
    data = bytes(data) if not isinstance(data, bytes) else data
    return assemble(data, walk(data, path))


def decode_messages(path_or_bytes: str | Path | bytes) -> dict[str, list[dict]]:
    """Message name -> list of ``{field name: value}``, equal to fitparse's ``get_values()``.

    Every name in MESSAGE_NAMES is a key (an empty list when the file has none of that message).
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return columns_to_messages(decode_columns(bytes(path_or_bytes)))
    path = Path(path_or_bytes)
    return columns_to_messages(decode_columns(path.read_bytes(), path=path))


__all__ = [
    "Column",
    "FitColumns",
    "MESSAGE_NAMES",
    "MessageColumns",
    "decode_columns",
    "decode_messages",
]
