"""Small helpers shared by the CSV readers: header sniffing and typed parse errors.

Lines are what polars reads as lines: a file is split at `\n` only (a `\r` before it is dropped).
A vertical tab, form feed or other character that `str.splitlines` would split at stays inside
its line, so the header that detection sees is the one the reader gets, and line numbers in
errors are physical lines of the file. Header names are compared with outer blanks and quotes
dropped (`column_name`), in detection and in the frame `read_text_csv` returns alike."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from pipeline.errors import CorruptFile


def first_line(head: bytes) -> str:
    """The first line of a text file's head, without BOM and line ending ('' if not text)."""
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        # the head may cut a multi-byte character; only the first line matters
        text = head.decode("utf-8-sig", errors="ignore")
    if "\x00" in text:
        return ""
    return text.split("\n", 1)[0].strip()


def column_name(name: str) -> str:
    """A header cell as detection and the readers compare it: outer blanks and quotes dropped."""
    return name.strip().strip('"')


def header_names(head: bytes) -> list[str]:
    return [column_name(name) for name in first_line(head).split(",")]


def read_text_csv(path: Path, *, reader: str, skip_lines: int = 0) -> pl.DataFrame:
    """Read a CSV with every column as text (ids stay strings; we parse values ourselves)."""
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorruptFile(path, f"not UTF-8 text ({exc.reason})", reader=reader, offset=exc.start) from exc
    try:
        frame = pl.read_csv(
            io.StringIO(raw),
            infer_schema=False,
            skip_lines=skip_lines,
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise CorruptFile(path, f"not a well-formed CSV: {str(exc).splitlines()[0]}", reader=reader) from exc
    names = [column_name(name) for name in frame.columns]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        raise CorruptFile(
            path, f"the header names the column {repeated!r} twice", reader=reader, line=skip_lines + 1
        )
    return frame.rename(dict(zip(frame.columns, names, strict=True)))


def require_column(frame: pl.DataFrame, column: str, path: Path, *, reader: str, header_lines: int = 1) -> pl.Series:
    """The column, or CorruptFile naming the header line when the file has no such column."""
    if column not in frame.columns:
        raise CorruptFile(path, f"the header has no column {column!r}", reader=reader, line=header_lines)
    return frame[column]


def parse_numbers(
    frame: pl.DataFrame, column: str, path: Path, *, reader: str, header_lines: int = 1
) -> pl.Series:
    """Column as Float64; a value that is not a number raises with its line number."""
    cells = require_column(frame, column, path, reader=reader, header_lines=header_lines)
    values = cells.str.strip_chars().cast(pl.Float64, strict=False)
    bad = cells.is_not_null() & (cells.str.strip_chars() != "") & values.is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise CorruptFile(
            path,
            f"column {column!r} holds {cells[row]!r}, which is not a number",
            reader=reader,
            line=row + 1 + header_lines,
        )
    negative = values < 0
    if negative.any():
        row = int(negative.arg_true()[0])
        raise CorruptFile(
            path,
            f"column {column!r} holds a negative value ({cells[row]})",
            reader=reader,
            line=row + 1 + header_lines,
        )
    return values


def parse_times(
    frame: pl.DataFrame, column: str, fmt: str, path: Path, *, reader: str, header_lines: int = 1
) -> pl.Series:
    """Column of naive local times; a value that does not parse raises with its line number."""
    cells = require_column(frame, column, path, reader=reader, header_lines=header_lines)
    text = cells.str.strip_chars()
    values = text.str.to_datetime(fmt, strict=False, time_unit="us")
    bad = values.is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise CorruptFile(
            path,
            f"column {column!r} holds {cells[row]!r}, which is not a time in the form {fmt}",
            reader=reader,
            line=row + 1 + header_lines,
        )
    return values
