"""The glossary names every warehouse table and column, with the type the warehouse has."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from pipeline.registry import Participant
from tests.warehouse_helpers import build, worn_day

GLOSSARY = Path(__file__).resolve().parents[1] / "docs" / "glossary.md"


def documented() -> dict[str, dict[str, str]]:
    tables: dict[str, dict[str, str]] = {}
    current = None
    for line in GLOSSARY.read_text().splitlines():
        heading = re.match(r"^### (\w+)$", line)
        if heading:
            current = tables.setdefault(heading.group(1), {})
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if current is not None and len(cells) == 4 and cells[0] not in ("column", "---"):
            current[cells[0]] = cells[1]
    return tables


def test_glossary_matches_the_warehouse(tmp_path):
    p = Participant("p1", "c1", "UTC", date(2024, 1, 1))
    con = build(tmp_path, [p], worn_day("p1", date(2024, 1, 1), "UTC", walk=[(10, 0, 12)]), date(2024, 1, 9))
    actual = {}
    for table, column, dtype in con.sql(
        "select table_name, column_name, data_type from information_schema.columns order by table_name, ordinal_position"
    ).fetchall():
        actual.setdefault(table, {})[column] = dtype
    assert documented() == actual
