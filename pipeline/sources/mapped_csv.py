"""Any other step CSV, read through a column mapping the study team declares (TOML or YAML).

Where a mapping is looked up, for a CSV at `<folder>/<name>.<ext>` (first level that has one wins):

1. `<folder>/<name>.mapping.toml` (or `.yaml` / `.yml`): the mapping of that one file
   (`export.csv` -> `export.mapping.toml`);
2. `<folder>/stepwise-mapping.toml` (or `.yaml` / `.yml`): the mapping of every CSV in the folder
   that no other reader recognises;
3. `mappings/*.toml|yaml|yml` in the nearest folder at or above `<folder>` that has a `mappings`
   directory (the data folder root, e.g. `<data>/mappings/` for `<data>/inbox/p01/x.csv`): a library
   of mappings, each used for the files whose header holds all of its `recognise` columns. When
   several match, the one that requires the most columns wins; a tie is an error.

A mapping at level 1 or 2 is declared for the file, so it claims the file (and `read` explains what
does not fit); a level-3 mapping claims only the files whose header matches it. Mapping files are
not data: the ingest should not offer them to the readers.

A mapping (TOML shown; YAML has the same keys):

    recognise = ["Start", "Finish", "Steps (count)"]  # header columns that identify the file
                                                      #   (default: every column named below)
    delimiter = ","              # default ","
    skip_lines = 0               # physical lines before the header (default 0)
    start = "Start"              # column of the interval start
    end = "Finish"               # exactly one of: end (a column of times),
    # duration = "Minutes"       #   duration (a column of numbers) + duration_unit (s|min|h|ms),
    # duration_unit = "min"
    # duration_seconds = 86400   #   or duration_seconds (every row lasts this long)
    steps = "Steps (count)"
    distance = "Distance (km)"   # optional, with distance_unit (m|km|mi|ft|yd)
    distance_unit = "km"
    time_format = "%d-%b-%Y %H:%M"   # strftime-style (chrono) pattern of start and end
                                     #   (quote it in YAML: a bare value cannot start with %)
    zone = "participant"         # participant: local wall clock in the participant's zone
                                 #   (definitions v1 DST rules); utc; offset-in-value: the
                                 #   value carries its offset (time_format has %z)
    decimal = "."                # optional, "." or ","
    thousands = ""               # optional thousands separator ("," or "." or " ")
    device = "QS Access"         # optional, the `device` of every row
    participant_column = "Id"    # optional: every row must hold the participant's id

An empty steps cell is missing (the row gives no interval), never 0. Errors name the column and
the row: "column 'Steps' row 14: 'abc' is not a number" (row = physical line of the CSV);
"mapping declares column 'Start' which the file does not have". A mistake inside the mapping
raises UnrecognisedFormat naming the mapping file and its line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from pipeline.errors import CorruptFile, UnrecognisedFormat, WrongParticipant
from pipeline.schema import conform_reader_frame
from pipeline.sources.base import ReadContext, ReadResult
from pipeline.sources.text_tools import (
    CsvTable,
    decode_text,
    head_text,
    parse_instants,
    parse_naive_times,
    parse_numbers,
    read_csv_table,
    reject_impossible_times,
    sniff_csv_header,
    wall_clock_to_utc,
)

READER = "mapped_csv"
MAPPING_SUFFIXES = (".toml", ".yaml", ".yml")
FOLDER_MAPPING = "stepwise-mapping"
LIBRARY_FOLDER = "mappings"
ZONES = ("participant", "utc", "offset-in-value")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}
DISTANCE_UNITS = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "ft": 0.3048, "yd": 0.9144}
KEYS = {
    "recognise",
    "delimiter",
    "skip_lines",
    "start",
    "end",
    "duration",
    "duration_unit",
    "duration_seconds",
    "steps",
    "distance",
    "distance_unit",
    "time_format",
    "zone",
    "decimal",
    "thousands",
    "device",
    "participant_column",
}
MAX_DURATION_SECONDS = 31 * 86400  # a row longer than a month is a mistake in the mapping
FIX_MAPPING = "Correct the mapping file named in the message (see pipeline/sources/mapped_csv.py)"


class MappingProblem(Exception):
    """A mapping file that cannot be used (raised as UnrecognisedFormat by the reader)."""

    def __init__(self, path: Path, problem: str, line: int) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem
        self.line = line

    def as_error(self) -> UnrecognisedFormat:
        return UnrecognisedFormat(self.path, self.problem, reader=READER, line=self.line, hint=FIX_MAPPING)


@dataclass(frozen=True)
class ColumnMapping:
    path: Path
    recognise: tuple[str, ...]
    delimiter: str
    skip_lines: int
    start: str
    end: str | None
    duration: str | None
    duration_unit: str | None
    duration_seconds: float | None
    steps: str
    distance: str | None
    distance_unit: str | None
    time_format: str
    zone: str
    decimal: str
    thousands: str | None
    device: str | None
    participant_column: str | None

    def columns(self) -> list[str]:
        named = [self.participant_column, self.start, self.end, self.duration, self.steps, self.distance]
        return list(dict.fromkeys([*self.recognise, *(name for name in named if name)]))

    def matches(self, header: list[str]) -> bool:
        return bool(header) and set(self.recognise) <= set(header)


# -- loading ------------------------------------------------------------------------------------


def load_mapping(path: Path) -> ColumnMapping:
    """Parse and validate one mapping file; MappingProblem naming its line otherwise."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MappingProblem(
            path, "the mapping is not UTF-8 text", data.count(b"\n", 0, exc.start) + 1
        ) from None
    if path.suffix == ".toml":
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"line (\d+)", str(exc))
            raise MappingProblem(
                path, f"not valid TOML ({exc})", int(found.group(1)) if found else 1
            ) from None
    else:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise MappingProblem(
                path, f"not valid YAML ({str(exc).splitlines()[0]})", mark.line + 1 if mark else 1
            ) from None
    if not isinstance(document, dict):
        raise MappingProblem(path, "the mapping must be a table of keys (start = ..., steps = ...)", 1)
    return _validate(path, text, document)


def _key_line(text: str, key: str) -> int:
    pattern = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*[=:]""", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def _validate(path: Path, text: str, document: dict) -> ColumnMapping:
    def problem(key: str, message: str) -> MappingProblem:
        return MappingProblem(path, message, _key_line(text, key))

    for key in document:
        if key not in KEYS:
            raise problem(str(key), f"unknown key {key!r} (known keys: {', '.join(sorted(KEYS))})")

    def text_value(key: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = document.get(key, default)
        if value is None:
            if required:
                raise MappingProblem(path, f"the mapping has no {key!r} key", 1)
            return None
        if not isinstance(value, str) or (not value and key not in ("thousands",)):
            raise problem(key, f"{key!r} must be a non-empty text, not {value!r}")
        return value

    start = text_value("start", required=True)
    steps = text_value("steps", required=True)
    time_format = text_value("time_format", required=True)
    zone = text_value("zone", required=True)
    if zone not in ZONES:
        raise problem("zone", f"zone {zone!r} must be one of {', '.join(ZONES)}")
    has_offset = re.search(r"%[:#]?z", time_format) is not None
    if zone == "offset-in-value" and not has_offset:
        raise problem("time_format", "zone offset-in-value needs %z in time_format")
    if zone != "offset-in-value" and has_offset:
        raise problem("time_format", f"time_format has %z: declare zone = offset-in-value, not {zone}")
    end = text_value("end")
    duration = text_value("duration")
    duration_unit = text_value("duration_unit")
    duration_seconds = document.get("duration_seconds")
    declared = [
        key
        for key, value in (("end", end), ("duration", duration), ("duration_seconds", duration_seconds))
        if value is not None
    ]
    if len(declared) != 1:
        raise problem(
            declared[1] if len(declared) > 1 else "start",
            "declare exactly one of end, duration (+ duration_unit) or duration_seconds"
            + (f" (found {', '.join(declared)})" if declared else ""),
        )
    if duration is not None and duration_unit not in DURATION_UNITS:
        raise problem(
            "duration_unit",
            f"duration_unit must be one of {', '.join(DURATION_UNITS)}, not {duration_unit!r}",
        )
    if duration_seconds is not None and (
        isinstance(duration_seconds, bool)
        or not isinstance(duration_seconds, (int, float))
        or not 0 < duration_seconds <= MAX_DURATION_SECONDS
    ):
        raise problem(
            "duration_seconds",
            f"duration_seconds must be a number of seconds above 0 and at most {MAX_DURATION_SECONDS}, "
            f"not {duration_seconds!r}",
        )
    distance = text_value("distance")
    distance_unit = text_value("distance_unit")
    if distance is not None and distance_unit not in DISTANCE_UNITS:
        raise problem(
            "distance_unit",
            f"distance_unit must be one of {', '.join(DISTANCE_UNITS)}, not {distance_unit!r}",
        )
    delimiter = text_value("delimiter", default=",")
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise problem("delimiter", f"delimiter must be one character, not {delimiter!r}")
    skip_lines = document.get("skip_lines", 0)
    if isinstance(skip_lines, bool) or not isinstance(skip_lines, int) or skip_lines < 0:
        raise problem("skip_lines", f"skip_lines must be a whole number >= 0, not {skip_lines!r}")
    decimal = text_value("decimal", default=".")
    if decimal not in (".", ","):
        raise problem("decimal", f"decimal must be '.' or ',', not {decimal!r}")
    thousands = text_value("thousands") or None
    if thousands is not None and (thousands == decimal or len(thousands) != 1):
        raise problem(
            "thousands", f"thousands must be one character other than the decimal mark, not {thousands!r}"
        )
    participant_column = text_value("participant_column")
    named = [name for name in (participant_column, start, end, duration, steps, distance) if name]
    recognise = document.get("recognise", named)
    if (
        not isinstance(recognise, list)
        or not recognise
        or not all(isinstance(name, str) and name for name in recognise)
    ):
        raise problem("recognise", "recognise must be a non-empty list of column names")
    return ColumnMapping(
        path=path,
        recognise=tuple(recognise),
        delimiter=delimiter,
        skip_lines=skip_lines,
        start=start,
        end=end,
        duration=duration,
        duration_unit=duration_unit,
        duration_seconds=float(duration_seconds) if duration_seconds is not None else None,
        steps=steps,
        distance=distance,
        distance_unit=distance_unit,
        time_format=time_format,
        zone=zone,
        decimal=decimal,
        thousands=thousands,
        device=text_value("device"),
        participant_column=participant_column,
    )


# -- lookup -------------------------------------------------------------------------------------


def declared_mappings(path: Path) -> list[Path]:
    """Level 1, else level 2: the mapping files declared for this file or its folder."""
    folder = path.parent
    for stem in (f"{path.stem}.mapping", FOLDER_MAPPING):
        found = [
            folder / f"{stem}{suffix}"
            for suffix in MAPPING_SUFFIXES
            if (folder / f"{stem}{suffix}").is_file()
        ]
        if found:
            return found
    return []


def library_mappings(path: Path) -> list[Path]:
    """Level 3: the mapping files of the nearest `mappings/` folder at or above the file's folder,
    never above the data folder (the first folder holding participants.csv)."""
    here = path.resolve().parent
    for folder in (here, *here.parents):
        library = folder / LIBRARY_FOLDER
        if library.is_dir():
            return sorted(
                candidate
                for candidate in library.iterdir()
                if candidate.suffix in MAPPING_SUFFIXES and candidate.is_file()
            )
        if (folder / "participants.csv").exists():
            break
    return []


def is_mapping_file(path: Path) -> bool:
    """A column-mapping declaration (configuration, not data): ingest leaves it in place."""
    if path.suffix not in MAPPING_SUFFIXES:
        return False
    return path.stem.endswith(".mapping") or path.stem == FOLDER_MAPPING or path.parent.name == LIBRARY_FOLDER


def header_for(mapping: ColumnMapping, text: str) -> list[str]:
    return sniff_csv_header(text.encode("utf-8"), delimiter=mapping.delimiter, skip_lines=mapping.skip_lines)


def select_mapping(path: Path, text: str) -> ColumnMapping:
    """The mapping for this CSV, by the lookup rule in the module docstring."""
    declared = declared_mappings(path)
    if len(declared) > 1:
        raise MappingProblem(
            declared[1],
            f"two mappings are declared for the same files: {declared[0].name} and {declared[1].name}",
            1,
        ).as_error()
    if declared:
        try:
            return load_mapping(declared[0])
        except MappingProblem as problem:
            raise problem.as_error() from None
    matching: list[ColumnMapping] = []
    broken: list[MappingProblem] = []
    for candidate in library_mappings(path):
        try:
            mapping = load_mapping(candidate)
        except MappingProblem as problem:
            broken.append(problem)
            continue
        if mapping.matches(header_for(mapping, text)):
            matching.append(mapping)
    if not matching:
        if broken:
            raise broken[0].as_error()
        raise UnrecognisedFormat(path, "no column mapping matches this file's header", reader=READER, line=1)
    matching.sort(key=lambda mapping: len(mapping.recognise), reverse=True)
    if len(matching) > 1 and len(matching[0].recognise) == len(matching[1].recognise):
        raise UnrecognisedFormat(
            path,
            f"two mappings match this file equally: {matching[0].path.name} and {matching[1].path.name}",
            reader=READER,
            line=1,
            hint="Make one mapping's recognise list more specific, "
            "or put a <name>.mapping.toml beside the file",
        )
    return matching[0]


# -- the reader ---------------------------------------------------------------------------------


class MappedCsvReader:
    name = READER

    def detect(self, path: Path, head: bytes) -> bool:
        text = head_text(head)
        if not text.strip():
            return False
        try:
            if declared_mappings(path):
                return True
            for candidate in library_mappings(path):
                try:
                    mapping = load_mapping(candidate)
                except MappingProblem:
                    continue
                if mapping.matches(header_for(mapping, text)):
                    return True
        except OSError:
            return False
        return False

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        text = decode_text(path, path.read_bytes(), reader=self.name)
        mapping = select_mapping(path, text)
        table = read_csv_table(
            path, text, reader=self.name, delimiter=mapping.delimiter, skip_lines=mapping.skip_lines
        )
        for column in mapping.columns():
            if column not in table.header:
                raise UnrecognisedFormat(
                    path,
                    f"mapping {mapping.path.name} declares column {column!r} which the file does not have",
                    reader=self.name,
                    line=table.header_line,
                    hint=FIX_MAPPING,
                )
        if mapping.participant_column:
            self._check_participant(table, mapping.participant_column, context)
        steps = self._numbers(table, mapping, mapping.steps)
        present = steps.is_not_null()
        table = table.take(present.arg_true())
        steps = steps.filter(present)
        start, start_adjusted = self._instants(table, mapping, mapping.start, context)
        if mapping.end is not None:
            end, _ = self._instants(table, mapping, mapping.end, context)
        else:
            if mapping.duration is not None:
                seconds = (
                    self._numbers(table, mapping, mapping.duration) * DURATION_UNITS[mapping.duration_unit]
                )
                self._require(table, seconds, mapping.duration)
                too_long = (seconds > MAX_DURATION_SECONDS).arg_true()
                if too_long.len():
                    line = int(table.lines[int(too_long[0])])
                    raise CorruptFile(
                        table.path,
                        f"column {mapping.duration!r} row {line}: "
                        f"{table.column(mapping.duration)[int(too_long[0])]!r} lasts more than 31 days",
                        reader=self.name,
                        line=line,
                    )
            else:
                seconds = pl.Series([mapping.duration_seconds] * table.height, dtype=pl.Float64)
            end = start + (seconds * 1_000_000).round().cast(pl.Int64).cast(pl.Duration("us"))
        backwards = (end < start).arg_true()
        if backwards.len():
            line = int(table.lines[int(backwards[0])])
            raise CorruptFile(path, f"row {line} ends before it starts", reader=self.name, line=line)
        distance = None
        if mapping.distance is not None:
            distance = self._numbers(table, mapping, mapping.distance) * DISTANCE_UNITS[mapping.distance_unit]
        frame = pl.DataFrame(
            {
                "source": self.name,
                "device": pl.Series([mapping.device] * table.height, dtype=pl.String),
                "start_utc": start,
                "end_utc": end,
                "steps": steps,
                "distance_m": distance
                if distance is not None
                else pl.Series([None] * table.height, dtype=pl.Float64),
                "clock_adjusted": start_adjusted,
            }
        )
        reject_impossible_times(path, frame, table.lines, reader=self.name)
        return ReadResult(conform_reader_frame(frame))

    def _numbers(self, table: CsvTable, mapping: ColumnMapping, column: str) -> pl.Series:
        return parse_numbers(
            table, column, reader=self.name, thousands=mapping.thousands, decimal=mapping.decimal
        )

    def _require(self, table: CsvTable, values: pl.Series, column: str) -> None:
        missing = values.is_null().arg_true()
        if missing.len():
            line = int(table.lines[int(missing[0])])
            raise CorruptFile(
                table.path, f"column {column!r} row {line} is empty", reader=self.name, line=line
            )

    def _instants(
        self, table: CsvTable, mapping: ColumnMapping, column: str, context: ReadContext
    ) -> tuple[pl.Series, pl.Series]:
        """UTC instants of a time column, and whether each was moved out of a DST gap."""
        try:
            if mapping.zone == "offset-in-value":
                instants = parse_instants(table, column, mapping.time_format, reader=self.name)
                return instants, pl.Series([False] * table.height, dtype=pl.Boolean)
            naive = parse_naive_times(table, column, mapping.time_format, reader=self.name)
        except pl.exceptions.PolarsError as exc:
            raise MappingProblem(
                mapping.path,
                f"time_format {mapping.time_format!r} is not a valid pattern ({str(exc).splitlines()[0]})",
                _key_line(mapping.path.read_text(errors="replace"), "time_format"),
            ).as_error() from None
        if mapping.zone == "utc":
            return naive.dt.replace_time_zone("UTC"), pl.Series([False] * table.height, dtype=pl.Boolean)
        converted = wall_clock_to_utc(naive, context.time_zone)
        return converted["utc"], converted["clock_adjusted"]

    def _check_participant(self, table: CsvTable, column: str, context: ReadContext) -> None:
        ids = table.column(column)
        foreign = (ids != context.participant_id).arg_true()
        if foreign.len():
            row = int(foreign[0])
            raise WrongParticipant(
                table.path,
                f"column {column!r} row {table.lines[row]} holds {ids[row]!r} but the file is in the folder "
                f"of participant {context.participant_id!r}",
                reader=self.name,
                line=int(table.lines[row]),
            )
