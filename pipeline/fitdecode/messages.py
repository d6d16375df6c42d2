"""Messages as fitparse's ``get_values()`` dicts."""

from __future__ import annotations

from .columns import FitColumns
from .profile import MESSAGE_NAMES


def columns_to_messages(columns: FitColumns) -> dict[str, list[dict]]:
    """Message name -> list of value dicts, for each of the message types we use (empty if none)."""
    return {name: columns[name].to_dicts() if name in columns else [] for name in MESSAGE_NAMES}
