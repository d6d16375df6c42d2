"""Small helpers shared by the CSV readers: header sniffing and typed parse errors."""

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
    return text.splitlines()[0].strip() if text else ""


def header_names(head: bytes) -> list[str]:
    return [name.strip().strip('"') for name in first_line(head).split(",")]


def read_text_csv(path: Path, *, reader: str, skip_lines: int = 0) -> pl.DataFrame:
    """Read a CSV with every column as text (ids stay strings; we parse values ourselves)."""
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorruptFile(path, f"not UTF-8 text ({exc.reason})", reader=reader, offset=exc.start) from exc
    try:
        return pl.read_csv(
            io.StringIO(raw),
            infer_schema=False,
            skip_lines=skip_lines,
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise CorruptFile(path, f"not a well-formed CSV: {str(exc).splitlines()[0]}", reader=reader) from exc


def parse_numbers(
    frame: pl.DataFrame, column: str, path: Path, *, reader: str, header_lines: int = 1
) -> pl.Series:
    """Column as Float64; a value that is not a number raises with its line number."""
    values = frame[column].str.strip_chars().cast(pl.Float64, strict=False)
    bad = frame[column].is_not_null() & (frame[column].str.strip_chars() != "") & values.is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise CorruptFile(
            path,
            f"column {column!r} holds {frame[column][row]!r}, which is not a number",
            reader=reader,
            line=row + 1 + header_lines,
        )
    negative = values < 0
    if negative.any():
        row = int(negative.arg_true()[0])
        raise CorruptFile(
            path,
            f"column {column!r} holds a negative value ({frame[column][row]})",
            reader=reader,
            line=row + 1 + header_lines,
        )
    return values


def parse_times(
    frame: pl.DataFrame, column: str, fmt: str, path: Path, *, reader: str, header_lines: int = 1
) -> pl.Series:
    """Column of naive local times; a value that does not parse raises with its line number."""
    text = frame[column].str.strip_chars()
    values = text.str.to_datetime(fmt, strict=False, time_unit="us")
    bad = values.is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise CorruptFile(
            path,
            f"column {column!r} holds {frame[column][row]!r}, which is not a time in the form {fmt}",
            reader=reader,
            line=row + 1 + header_lines,
        )
    return values
