"""Text helpers for the CSV and JSON readers: every value keeps the line it came from.

A damaged file must be rejected with its physical line number (or byte offset), never with a
stack trace, so the readers here parse in two steps:

1. `decode_text` and `read_csv_table` / `iter_json_array` turn bytes into strings, remembering the
   line each CSV row or JSON array element starts on;
2. `parse_numbers` / `parse_naive_times` / `parse_instants` convert whole columns at once (polars)
   and raise `CorruptFile` naming the column, the value and its line when one does not parse.

An empty cell is "missing" (null), never 0; the caller decides what missing means.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipeline.errors import CorruptFile
from pipeline.sources.base import local_wall_clock_to_utc

# An ISO-8601 time that ends in an explicit UTC offset (or Z); a regex for polars and `re`.
OFFSET_SUFFIX = r"(?:[Zz]|[+-]\d{2}:?\d{2})$"


def head_text(head: bytes) -> str:
    """The head of a file as text for sniffing ('' when it is binary).

    Bytes that are not UTF-8 become U+FFFD here, so a text export saved in another encoding is
    still recognised and then rejected by `decode_text` naming the line of the first bad byte."""
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    return "" if "\x00" in text else text


def decode_text(path: Path, data: bytes, *, reader: str) -> str:
    """UTF-8 text of a file (BOM dropped); CorruptFile naming the line of the first bad byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CorruptFile(
            path,
            f"not UTF-8 text: byte {data[exc.start]:#04x} at byte offset {exc.start} ({exc.reason})",
            reader=reader,
            line=line,
        ) from exc
    nul = text.find("\x00")
    if nul >= 0:
        raise CorruptFile(
            path,
            "binary data (a NUL byte) inside a text file",
            reader=reader,
            line=text.count("\n", 0, nul) + 1,
        )
    return text


class SplitColumns(Mapping[str, pl.Series]):
    """The columns of unquoted CSV rows held as one list column, each column cut out (and
    trimmed) the first time it is asked for: a reader rarely needs all of them."""

    def __init__(self, header: list[str], fields: pl.Series) -> None:
        self._index = {name: index for index, name in enumerate(header)}
        self._fields = fields
        self._cache: dict[str, pl.Series] = {}

    def __getitem__(self, name: str) -> pl.Series:
        if name not in self._cache:
            column = self._fields.list.get(self._index[name], null_on_oob=True)
            self._cache[name] = column.str.strip_chars().alias(name)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def take(self, rows: pl.Series) -> SplitColumns:
        return SplitColumns(list(self._index), self._fields.gather(rows))


@dataclass(frozen=True)
class CsvTable:
    """A CSV as text columns, with the physical line each data row starts on."""

    path: Path
    header: list[str]
    header_line: int
    columns: Mapping[str, pl.Series]
    lines: pl.Series  # Int64, one per row

    @property
    def height(self) -> int:
        return self.lines.len()

    def column(self, name: str) -> pl.Series:
        return self.columns[name]

    def take(self, rows: pl.Series) -> CsvTable:
        """The table restricted to the rows at these indices (lines follow)."""
        if isinstance(self.columns, SplitColumns):
            columns: Mapping[str, pl.Series] = self.columns.take(rows)
        else:
            columns = {name: values.gather(rows) for name, values in self.columns.items()}
        return CsvTable(self.path, self.header, self.header_line, columns, self.lines.gather(rows))


def split_after_lines(text: str, count: int) -> tuple[list[str], str]:
    """The first `count` physical lines (without line endings) and the rest of the text."""
    skipped: list[str] = []
    position = 0
    for _ in range(count):
        end = text.find("\n", position)
        if end < 0:
            skipped.append(text[position:].rstrip("\r"))
            position = len(text)
            break
        skipped.append(text[position:end].rstrip("\r"))
        position = end + 1
    return skipped, text[position:]


def read_csv_table(
    path: Path,
    text: str,
    *,
    reader: str,
    delimiter: str = ",",
    skip_lines: int = 0,
) -> CsvTable:
    """Parse CSV text whose header follows `skip_lines` physical lines.

    Header names and values are stripped of spaces. Blank rows are ignored; a row with another
    number of fields than the header (a truncated or damaged file) raises CorruptFile naming its
    line. One trailing empty field (a trailing comma) is tolerated. Text without any quote is split
    in polars (a week of 1-second ActiGraph epochs is 600,000 rows); quoted CSV goes through the
    csv module, which follows quoted line breaks.
    """
    _, body = split_after_lines(text, skip_lines)
    if '"' not in body and body.count("\r") == body.count("\r\n"):
        return _read_unquoted(path, body, reader=reader, delimiter=delimiter, skip_lines=skip_lines)
    return _read_quoted(path, body, reader=reader, delimiter=delimiter, skip_lines=skip_lines)


def _wrong_width(path: Path, fields: int, header: list[str], *, reader: str, line: int) -> CorruptFile:
    return CorruptFile(
        path,
        f"the row has {fields} fields but the header has {len(header)} (truncated or damaged file)",
        reader=reader,
        line=line,
    )


def _read_unquoted(path: Path, body: str, *, reader: str, delimiter: str, skip_lines: int) -> CsvTable:
    blank = delimiter + " \t\r"
    kept = [
        (number, line.rstrip("\r"))
        for number, line in enumerate(body.split("\n"), start=skip_lines + 1)
        if line.strip(blank)
    ]
    if not kept:
        raise CorruptFile(path, "the file has no header row", reader=reader, line=skip_lines + 1)
    header_line, header_text = kept[0]
    header = [name.strip() for name in header_text.split(delimiter)]
    _check_header(path, header, reader=reader, line=header_line)
    lines = pl.Series("line", [number for number, _ in kept[1:]], dtype=pl.Int64)
    fields = pl.Series("row", [line for _, line in kept[1:]], dtype=pl.String).str.split(delimiter)
    width = fields.list.len()
    trailing = (width == len(header) + 1) & (fields.list.last().str.strip_chars() == "")
    bad = ((width != len(header)) & ~trailing).arg_true()
    if bad.len():
        row = int(bad[0])
        raise _wrong_width(path, int(width[row]), header, reader=reader, line=int(lines[row]))
    return CsvTable(path, header, header_line, SplitColumns(header, fields), lines)


def _read_quoted(path: Path, body: str, *, reader: str, delimiter: str, skip_lines: int) -> CsvTable:
    rows = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    header_line = skip_lines + 1
    values: list[list[str]] = []
    lines: list[int] = []
    consumed = 0  # physical lines of `body` consumed so far
    try:
        for row in rows:
            start = skip_lines + consumed + 1
            consumed = rows.line_num
            if not "".join(row).strip():
                continue  # a blank line
            if header is None:
                header = [name.strip() for name in row]
                header_line = start
                _check_header(path, header, reader=reader, line=start)
                continue
            if len(row) == len(header) + 1 and not row[-1].strip():
                row = row[:-1]
            if len(row) != len(header):
                raise _wrong_width(path, len(row), header, reader=reader, line=start)
            values.append(row)
            lines.append(start)
    except csv.Error as exc:
        raise CorruptFile(
            path, f"not a well-formed CSV ({exc})", reader=reader, line=skip_lines + max(rows.line_num, 1)
        ) from exc
    if header is None:
        raise CorruptFile(path, "the file has no header row", reader=reader, line=skip_lines + 1)
    transposed = list(zip(*values, strict=True)) if values else [() for _ in header]
    columns = {
        name: pl.Series(name, transposed[index], dtype=pl.String).str.strip_chars()
        for index, name in enumerate(header)
    }
    return CsvTable(path, header, header_line, columns, pl.Series("line", lines, dtype=pl.Int64))


def _check_header(path: Path, header: list[str], *, reader: str, line: int) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen and name:
            raise CorruptFile(path, f"the header names column {name!r} twice", reader=reader, line=line)
        seen.add(name)


def sniff_csv_header(head: bytes, *, delimiter: str = ",", skip_lines: int = 0) -> list[str]:
    """The header names of a CSV head (after `skip_lines` lines), [] if it is not text."""
    text = head_text(head)
    if not text:
        return []
    _, body = split_after_lines(text, skip_lines)
    for line in body.splitlines():
        if line.strip():
            try:
                row = next(csv.reader([line], delimiter=delimiter))
            except (csv.Error, StopIteration):
                return []
            return [name.strip().strip('"').strip() for name in row]
    return []


def missing_columns(table_header: list[str], wanted: list[str]) -> list[str]:
    return [name for name in wanted if name not in table_header]


def _first_bad(mask: pl.Series) -> int | None:
    hits = mask.fill_null(False).arg_true()
    return int(hits[0]) if hits.len() else None


def parse_numbers(
    table: CsvTable,
    column: str,
    *,
    reader: str,
    values: pl.Series | None = None,
    thousands: str | None = None,
    decimal: str = ".",
) -> pl.Series:
    """A text column as Float64 (empty = null). A value that is not a finite number, or a negative
    one, raises CorruptFile naming the column, the value and its line."""
    raw = table.column(column) if values is None else values
    text = raw.str.strip_chars()
    cleaned = text
    if thousands:
        cleaned = cleaned.str.replace_all(thousands, "", literal=True)
    if decimal != ".":
        cleaned = cleaned.str.replace_all(".", "\x01", literal=True).str.replace_all(
            decimal, ".", literal=True
        )
    numbers = cleaned.cast(pl.Float64, strict=False)
    present = text.is_not_null() & (text != "")
    bad = present & (numbers.is_null() | numbers.is_nan() | numbers.is_infinite())
    row = _first_bad(bad)
    if row is not None:
        raise CorruptFile(
            table.path,
            f"column {column!r} row {table.lines[row]}: {raw[row]!r} is not a number",
            reader=reader,
            line=int(table.lines[row]),
        )
    result = numbers.alias(column)  # an empty cell is already null
    row = _first_bad(result < 0)
    if row is not None:
        raise CorruptFile(
            table.path,
            f"column {column!r} row {table.lines[row]}: {raw[row]!r} is negative "
            "(a step count, distance or duration cannot be)",
            reader=reader,
            line=int(table.lines[row]),
        )
    return result


def parse_naive_times(
    table: CsvTable, column: str, fmt: str, *, reader: str, values: pl.Series | None = None
) -> pl.Series:
    """A text column of zone-less times (strftime `fmt`) as naive Datetime(us); an empty or
    unparseable value raises CorruptFile naming the column, the value and its line."""
    raw = table.column(column) if values is None else values
    times = raw.str.strip_chars().str.to_datetime(fmt, strict=False, time_unit="us")
    row = _first_bad(times.is_null())
    if row is not None:
        raise CorruptFile(
            table.path,
            f"column {column!r} row {table.lines[row]}: {raw[row]!r} is not a time in the form {fmt}",
            reader=reader,
            line=int(table.lines[row]),
        )
    return times


def parse_instants(
    table: CsvTable, column: str, fmt: str, *, reader: str, values: pl.Series | None = None
) -> pl.Series:
    """A text column of times that carry their UTC offset (`fmt` with %z) as UTC instants."""
    raw = table.column(column) if values is None else values
    times = raw.str.strip_chars().str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
    row = _first_bad(times.is_null())
    if row is not None:
        raise CorruptFile(
            table.path,
            f"column {column!r} row {table.lines[row]}: {raw[row]!r} is not a time with a UTC offset "
            f"in the form {fmt}",
            reader=reader,
            line=int(table.lines[row]),
        )
    return times


def iter_json_array(path: Path, text: str, *, reader: str) -> Iterator[tuple[int, object, int, int]]:
    """The elements of a top-level JSON array: (line it starts on, element, start, end index).

    Malformed JSON (a truncated file, junk between elements) raises CorruptFile naming the line.
    """
    decoder = json.JSONDecoder()
    length = len(text)
    position = 0
    line = 1

    def skip_space(index: int) -> int:
        while index < length and text[index] in " \t\r\n":
            index += 1
        return index

    def line_at(index: int) -> int:
        nonlocal position, line
        line += text.count("\n", position, index)
        position = index
        return line

    def fail(index: int, problem: str) -> CorruptFile:
        return CorruptFile(path, problem, reader=reader, line=text.count("\n", 0, index) + 1)

    index = skip_space(0)
    if index >= length or text[index] != "[":
        raise fail(index, "not a JSON array (the file should start with '[')")
    index = skip_space(index + 1)
    if index < length and text[index] == "]":
        index += 1
    else:
        while True:
            if index >= length:
                raise fail(index, "the JSON array ends early (truncated file)")
            try:
                element, end = decoder.raw_decode(text, index)
            except json.JSONDecodeError as exc:
                raise fail(exc.pos, f"not valid JSON ({exc.msg})") from exc
            yield line_at(index), element, index, end
            index = skip_space(end)
            if index >= length:
                raise fail(index, "the JSON array ends early (truncated file)")
            if text[index] == "]":
                index += 1
                break
            if text[index] != ",":
                raise fail(index, f"unexpected {text[index]!r} between JSON array elements")
            index = skip_space(index + 1)
    index = skip_space(index)
    if index < length:
        raise fail(index, "unexpected data after the end of the JSON array")


def wall_clock_to_utc(naive: pl.Series, time_zone: str) -> pl.DataFrame:
    """`local_wall_clock_to_utc`, safe for an empty series (polars 2.1 panics on one there)."""
    if naive.len() == 0:
        return pl.DataFrame(schema={"utc": pl.Datetime("us", "UTC"), "clock_adjusted": pl.Boolean})
    return local_wall_clock_to_utc(naive, time_zone)


def json_key_line(text: str, start: int, end: int, key: str, start_line: int) -> int:
    """The line of `"key"` inside the JSON text[start:end] that starts on `start_line`."""
    found = text.find(f'"{key}"', start, end)
    return start_line + text.count("\n", start, found) if found >= 0 else start_line


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def reject_impossible_times(path: Path, frame: pl.DataFrame, lines: pl.Series, *, reader: str) -> None:
    """CorruptFile naming the line of the first interval outside 1900-2199 (a damaged date, not a
    wrong device clock: those stay, the warehouse flags them). `frame` has start_utc and end_utc."""
    if frame.height == 0:
        return
    outside = (
        (frame["start_utc"] < EARLIEST)
        | (frame["end_utc"] >= LATEST)
        | frame["start_utc"].is_null()
        | frame["end_utc"].is_null()
    ).arg_true()
    if outside.len():
        row = int(outside[0])
        raise CorruptFile(
            path,
            f"the interval starting {frame['start_utc'].dt.to_string('%Y-%m-%d %H:%M:%S')[row]} UTC "
            "lies outside the years 1900-2199",
            reader=reader,
            line=int(lines[row]),
        )
