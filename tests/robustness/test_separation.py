"""Separation: a clinic's outputs hold only its patients; the warehouse holds no display names or
free text; every SQL statement takes values as bound parameters, so ids and paths full of quotes
and SQL fragments go through the whole run unharmed and stay inside the data folder."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipeline.lake import partition_name
from pipeline.warehouse import INTERMEDIATE_TABLES, MODELS
from tests.robustness import helpers as h
from tests.robustness.corpus import narrow_csv

AS_OF = "2024-01-17"


def _walks(pid: str, day: int, minutes: int = 30, cadence: int = 110) -> str:
    """A Fitabase narrow file: a walk of `minutes` at `cadence` plus worn hours, on 1 January + day."""
    rows = [(f"1/{day}/2024 {hour}:00:00 AM", "5") for hour in range(1, 12)]
    rows += [(f"1/{day}/2024 {hour - 12 if hour > 12 else hour}:00:00 PM", "5") for hour in range(12, 20)]
    rows += [(f"1/{day}/2024 10:{m + 1:02d}:00 AM", str(cadence)) for m in range(minutes)]
    return narrow_csv(pid, rows)


def _folder(data: Path, people: list[dict], extra_columns: tuple[str, ...] = ()) -> Path:
    h.write_participants(data, people, extra_columns)
    for number, person in enumerate(people):
        folder = data / "inbox" / person["participant_id"]
        folder.mkdir(parents=True, exist_ok=True)
        for day in (2, 3, 9):
            (folder / f"steps {day}.csv").write_text(_walks(person["participant_id"], day, 20 + number))
    return data


# ------------------------------------------------------------------ clinics with similar ids

SIMILAR = [
    {"participant_id": "P1", "clinic_id": "north", "display_name": "Ada North-One"},
    {"participant_id": "p1", "clinic_id": "North", "display_name": "Ben Upper-North"},
    {"participant_id": "P10", "clinic_id": "north_", "display_name": "Cy Underscore"},
    {"participant_id": "P1 0", "clinic_id": "north", "display_name": "Di Spaced"},
    {"participant_id": "0P1", "clinic_id": "north 2", "display_name": "Ed Second"},
    {"participant_id": "P01", "clinic_id": "North", "display_name": "Flo Zero"},
]


@pytest.fixture(scope="module")
def clinics(tmp_path_factory):
    people = [{**p, "time_zone": "Europe/London", "programme_start": "2024-01-01"} for p in SIMILAR]
    data = _folder(tmp_path_factory.mktemp("clinics") / "data", people)
    h.run_ok(data, as_of=AS_OF)
    return data


def test_each_clinic_summary_holds_only_its_own_patients(clinics):
    by_clinic: dict[str, set[str]] = {}
    for person in SIMILAR:
        by_clinic.setdefault(person["clinic_id"], set()).add(person["participant_id"])
    names = {p["participant_id"]: p["display_name"] for p in SIMILAR}
    assert sorted(p.name for p in (clinics / "outbox").iterdir()) == sorted(by_clinic)
    for clinic, members in by_clinic.items():
        folder = clinics / "outbox" / clinic / AS_OF
        document = json.loads((folder / "summary.json").read_text())
        assert document["clinic_id"] == clinic
        assert {p["participant_id"] for p in document["patients"]} == members
        assert {a["participant_id"] for a in document["attention"]} <= members
        rows = list(csv.DictReader(io.StringIO((folder / "summary.csv").read_text())))
        assert {r["participant_id"] for r in rows} == members and {r["clinic_id"] for r in rows} == {clinic}
        page = (folder / "summary.html").read_text()
        for pid, name in names.items():
            assert (name in page) == (pid in members), (clinic, name)
            assert (name in json.dumps(document)) == (pid in members)


# ------------------------------------------------------------------ no names or free text in the warehouse

FREE_TEXT = {"display_name": "Zebedee Quillfeather", "notes": "lives alone, knee surgery 2023",
             "email": "zebedee@example.org"}


def test_the_warehouse_holds_no_display_names_or_free_text(tmp_path):
    people = [{"participant_id": "w1", "clinic_id": "c1", "time_zone": "UTC", "programme_start": "2024-01-01",
               **FREE_TEXT}]
    data = _folder(tmp_path / "data", people, extra_columns=("notes", "email"))
    h.run_ok(data, "--no-reports", as_of=AS_OF)
    needles = [value for value in FREE_TEXT.values()] + ["Zebedee", "Quillfeather", "knee surgery"]
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        tables = [t for (t,) in con.sql("select table_name from information_schema.tables").fetchall()]
        assert {t for t, _ in MODELS} - set(INTERMEDIATE_TABLES) <= set(tables)
        for table in tables:
            columns = [c for (c,) in con.execute("select column_name from information_schema.columns "
                                                 "where table_name = ?", [table]).fetchall()]
            assert "display_name" not in columns and "notes" not in columns and "email" not in columns
            for column in columns:
                for needle in needles:
                    hits = con.execute(f'select count(*) from "{table}" '  # names from the catalogue
                                       f'where contains(lower(cast("{column}" as varchar)), lower(?))', [needle]).fetchall()
                    assert hits == [(0,)], (table, column, needle)
    finally:
        con.close()
    stored = [data / "warehouse.duckdb", *h.visible_files(data / "lake")]
    for path in stored:
        content = path.read_bytes()
        for needle in needles:
            assert needle.encode() not in content, (path, needle)


# ------------------------------------------------------------------ quotes and SQL fragments

HOSTILE_IDS = [
    ("O'Brien", "St. Mary's"),
    ('x"; DROP TABLE weekly_adherence; --', "St. Mary's"),
    ("' OR '1'='1", 'clinic"; DROP TABLE participants; --'),
    ("Robert'); DROP TABLE participants;--", 'clinic"; DROP TABLE participants; --'),
    ("%_*?[a]$1:name", "100% {clinic} $x"),
    ("Zoë ü 日本", "100% {clinic} $x"),
    ("..%2f..%2fetc", "c1"),
]


@pytest.fixture(scope="module")
def hostile_ids(tmp_path_factory):
    root = tmp_path_factory.mktemp("sql") / "it's \"data\"; DROP TABLE x;--"
    people = [{"participant_id": pid, "clinic_id": clinic, "time_zone": "America/New_York",
               "programme_start": "2024-01-01", "display_name": f"Name {number}"}
              for number, (pid, clinic) in enumerate(HOSTILE_IDS)]
    data = _folder(root / "data ' or 1=1", people)
    before = set(os.listdir(root))
    result = h.run_ok(data, as_of=AS_OF)
    second = h.run_ok(data, as_of=AS_OF)  # and again: everything already seen
    return root, data, before, result, second


def test_ids_and_paths_full_of_quotes_and_sql_go_through_the_whole_run(hostile_ids):
    _, data, _, result, second = hostile_ids
    assert (result.summary["ingested"], result.summary["quarantined"]) == (3 * len(HOSTILE_IDS), 0)
    assert (second.summary["ingested"], second.summary["skipped"]) == (0, 3 * len(HOSTILE_IDS))
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        tables = {t for (t,) in con.sql("select table_name from information_schema.tables").fetchall()}
        assert {t for t, _ in MODELS} - set(INTERMEDIATE_TABLES) <= tables  # nothing dropped
        assert sorted(con.sql("select participant_id, clinic_id from participants").fetchall()) == sorted(HOSTILE_IDS)
        for pid, clinic in HOSTILE_IDS:
            weeks = con.execute("select count(*), sum(walk_minutes) from weekly_adherence "
                                "where participant_id = ? and clinic_id = ?", [pid, clinic]).fetchall()
            assert weeks[0][0] == 3 and weeks[0][1] > 0, pid
            days = con.execute("select count(*) from minute_steps where participant_id = ?", [pid]).fetchall()
            assert days[0][0] > 0
    finally:
        con.close()
    for pid, clinic in HOSTILE_IDS:
        document = json.loads((data / "outbox" / clinic / AS_OF / "summary.json").read_text())
        assert pid in {p["participant_id"] for p in document["patients"]}
        assert (data / "lake" / "step_intervals" / partition_name(pid)).is_dir()


def test_every_path_the_run_wrote_stays_inside_the_data_folder(hostile_ids):
    root, data, before, _, _ = hostile_ids
    assert set(os.listdir(root)) == before
    real = Path(os.path.realpath(data))
    for dirpath, dirnames, filenames in os.walk(data):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            assert not path.is_symlink() or "inbox" in path.relative_to(data).parts
            assert Path(os.path.realpath(path)).is_relative_to(real), path
    for path in (data / "lake").rglob("*"):
        part = path.relative_to(data / "lake").parts
        assert all("'" not in p and '"' not in p and "/" not in p for p in part)


SQL_CALLS = {"execute", "executemany", "sql", "query", "read_csv", "from_query"}
# f-string SQL allowed only for identifiers the code itself owns (never a value):
ALLOWED_INTERPOLATIONS = {
    ("pipeline/warehouse.py", "name"),  # table names of _register_inputs' own list
    ("pipeline/warehouse.py", "table"),  # MODELS / INTERMEDIATE_TABLES
    ("pipeline/warehouse.py", "sql"),  # the model's .sql file (a view: with its build folder, quoted)
    ("pipeline/derived.py", "table"),  # DERIVED_MODELS / the derived module's own temporary tables
    ("pipeline/derived.py", "sql"),  # the model's .sql file or a constant query
    ("pipeline/derived.py", "target"),  # a COPY target: our own file path, quoted by sql_literal
    ("pipeline/reports/synthetic.py", "table"),  # the reports' own synthetic contract tables
    ("pipeline/reports/synthetic.py", "columns"),
}


def test_every_sql_statement_in_the_library_takes_values_as_bound_parameters():
    """No value is ever formatted into SQL: the only f-strings given to DuckDB interpolate
    identifiers the code owns (listed above); everything else is a constant or a .sql file."""
    found = []
    for path in sorted((h.ROOT / "pipeline").rglob("*.py")):
        tree = ast.parse(path.read_text())
        relative = path.relative_to(h.ROOT).as_posix()
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SQL_CALLS and node.args):
                continue
            first = node.args[0]
            if isinstance(first, ast.JoinedStr):
                for part in first.values:
                    if isinstance(part, ast.FormattedValue):
                        found.append((relative, ast.unparse(part.value)))
            elif isinstance(first, ast.BinOp) or (isinstance(first, ast.Call) and getattr(first.func, "attr", "") == "format"):
                found.append((relative, ast.unparse(first)))
    assert set(found) <= ALLOWED_INTERPOLATIONS, sorted(set(found) - ALLOWED_INTERPOLATIONS)
    assert found, "the scan found no SQL at all: the call names above are out of date"


def test_sql_files_use_named_parameters_only():
    """The report queries take $name parameters; no .sql file leaves a Python format slot."""
    for path in sorted((h.ROOT / "pipeline").rglob("*.sql")):
        text = path.read_text()
        assert not re.search(r"%s|%\(\w+\)|\{\w*\}", text), path


def test_a_clinic_id_that_cannot_name_a_folder_fails_clearly(tmp_path):
    pytest.importorskip("pipeline.reports.render")
    people = [{"participant_id": "a1", "clinic_id": "../escape", "time_zone": "UTC", "programme_start": "2024-01-01"}]
    data = _folder(tmp_path / "data", people)
    result = h.run(data, as_of=AS_OF)
    assert not (tmp_path / "escape").exists() and not (data / "escape").exists()
    if result.returncode == 0:
        pytest.fail("a clinic id with '/' was accepted as an outbox folder")
    assert len(result.error_lines) == 1 and result.error_lines[0].startswith("stepwise: ")
    # refused by the registry before anything is read: named there, and the inbox is left as it was
    assert "participants.csv" in result.error_lines[0] and "clinic_id" in result.error_lines[0]
    assert len([p for p in (data / "inbox").rglob("*") if p.is_file()]) == 3
