"""ActiGraph ActiLife epoch CSV (recognised by its first line, `------------ Data File Created By
ActiGraph ...` or `... Data Table File Created By ActiGraph ...`).

    ------------ Data Table File Created By ActiGraph Link ActiLife v6.13.3 Firmware v1.7.2 date format
      M/d/yyyy Filter LowFrequencyExtension -----------      (one line in the file)
    Serial Number: TAS1E31150129
    Start Time 08:58:00
    Start Date 2/14/2019
    Epoch Period (hh:mm:ss) 00:00:01
    Download Time 09:03:03
    Download Date 2/14/2019
    Current Memory Address: 0
    Current Battery Voltage: 4.15     Mode = 61
    --------------------------------------------------
    Date, Time, Axis1,Axis2,Axis3,Steps,Lux,...
    2/14/2019,08:58:00,0,0,0,0,0,1,0,0,0,0

- The 10-line header block ends with a line of dashes; the column header follows, its names
  padded with spaces. Columns are found by name; only `Steps` is used.
- One interval per epoch row: [Date Time, Date Time + epoch period) with that row's `Steps`.
  The epoch period comes from the header (1 s to 60 s in practice).
- Dates use the .NET pattern given in the first line (`date format M/d/yyyy`, `d/MM/yyyy`,
  `yyyy-MM-dd`, ...); older files without it are read as ActiLife's default `M/d/yyyy`.
- Times are the device's local wall clock with no zone: read in the participant's zone through
  `local_wall_clock_to_utc` (definitions v1). Note that the device clock itself does not follow
  daylight saving: a recording across a DST change keeps the offset it was initialised with.
- Files exported without the Date and Time columns are timed from `Start Date`/`Start Time` plus
  the row index times the epoch period.
- The device is `ActiGraph <model>:<serial number>` from the header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from pipeline.errors import CorruptFile
from pipeline.schema import conform_reader_frame
from pipeline.sources.base import ReadContext, ReadResult
from pipeline.sources.text_tools import (
    decode_text,
    head_text,
    parse_naive_times,
    parse_numbers,
    read_csv_table,
    reject_impossible_times,
    split_after_lines,
    wall_clock_to_utc,
)

FIRST_LINE = re.compile(r"^-+\s*Data (?:Table )?File Created By ActiGraph\b", re.IGNORECASE)
DATE_FORMAT = re.compile(r"\bdate format\s+(\S+)", re.IGNORECASE)
MODEL = re.compile(r"Created By (ActiGraph\s+.*?)\s+ActiLife\b", re.IGNORECASE)
DEFAULT_DATE_FORMAT = "M/d/yyyy"
MAX_HEADER_LINES = 20

# .NET custom date tokens -> strftime (chrono parses single- and double-digit numbers alike)
_NET_TOKENS = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "M": "%m", "dd": "%d", "d": "%d"}
_NET_TOKEN = re.compile(r"yyyy|yy|MM|M|dd|d")


def net_date_format_to_strftime(pattern: str) -> str | None:
    """`M/d/yyyy` -> `%m/%d/%Y`; None unless the pattern is day, month and year, once each."""
    converted = _NET_TOKEN.sub(lambda match: _NET_TOKENS[match.group(0)], pattern)
    if re.search(r"[A-Za-z]", re.sub(r"%[Yymd]", "", converted)):
        return None
    counts = [converted.count(token) for token in ("%d", "%m")] + [
        converted.count("%Y") + converted.count("%y")
    ]
    return converted if counts == [1, 1, 1] else None


class ActiGraphReader:
    name = "actigraph"

    def detect(self, path: Path, head: bytes) -> bool:
        text = head_text(head)
        return bool(text) and bool(FIRST_LINE.match(text.lstrip()))

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        text = decode_text(path, path.read_bytes(), reader=self.name)
        header = self._header_block(path, text)
        table = read_csv_table(
            path, text, reader=self.name, delimiter=header.delimiter, skip_lines=header.line_count
        )
        if "Steps" not in table.header:
            raise CorruptFile(
                path,
                "the file has no Steps column (export it from ActiLife with steps included)",
                reader=self.name,
                line=table.header_line,
            )
        steps = parse_numbers(table, "Steps", reader=self.name)
        missing = steps.is_null().arg_true()
        if missing.len():
            row = int(missing[0])
            raise CorruptFile(
                path,
                f"column 'Steps' row {table.lines[row]} is empty",
                reader=self.name,
                line=int(table.lines[row]),
            )
        if "Date" in table.header and "Time" in table.header:
            stamps = table.column("Date") + " " + table.column("Time")
            local = parse_naive_times(
                table, "Date", f"{header.date_format} %H:%M:%S", reader=self.name, values=stamps
            )
        else:
            local = pl.Series(
                "local",
                [header.start + header.epoch * index for index in range(table.height)],
                dtype=pl.Datetime("us"),
            )
        instants = wall_clock_to_utc(local, context.time_zone)
        frame = pl.DataFrame(
            {
                "source": self.name,
                "device": header.device,
                "start_utc": instants["utc"],
                "end_utc": instants["utc"] + header.epoch,
                "steps": steps,
                "clock_adjusted": instants["clock_adjusted"],
            }
        )
        reject_impossible_times(path, frame, table.lines, reader=self.name)
        return ReadResult(conform_reader_frame(frame))

    def _header_block(self, path: Path, text: str) -> _HeaderBlock:
        lines, _ = split_after_lines(text, MAX_HEADER_LINES + 1)
        if not lines or not FIRST_LINE.match(lines[0].lstrip()):
            raise CorruptFile(path, "the ActiGraph header line is missing", reader=self.name, line=1)
        end = next(
            (number for number, line in enumerate(lines[1:], start=2) if re.fullmatch(r"\s*-{5,}\s*", line)),
            None,
        )
        if end is None:
            # where the dashes were due: before the first line that looks like a column header
            due = next((number for number, line in enumerate(lines, start=1) if "," in line), len(lines))
            raise CorruptFile(
                path,
                "the ActiGraph header block does not end with a line of dashes (truncated or edited file)",
                reader=self.name,
                line=due,
            )
        block = lines[:end]
        pattern_match = DATE_FORMAT.search(lines[0])
        pattern = pattern_match.group(1) if pattern_match else DEFAULT_DATE_FORMAT
        date_format = net_date_format_to_strftime(pattern)
        if date_format is None:
            raise CorruptFile(
                path, f"unsupported date format {pattern!r} in the header", reader=self.name, line=1
            )
        epoch_line, epoch_text = self._field(
            path, block, r"Epoch Period \(hh:mm:ss\)\s+(\S+)", "Epoch Period"
        )
        epoch = _parse_clock_duration(epoch_text)
        if epoch is None or epoch <= timedelta(0):
            raise CorruptFile(
                path,
                f"epoch period {epoch_text!r} is not a positive hh:mm:ss",
                reader=self.name,
                line=epoch_line,
            )
        date_line, date_text = self._field(path, block, r"Start Date\s+(\S+)", "Start Date")
        time_line, time_text = self._field(path, block, r"Start Time\s+(\S+)", "Start Time")
        try:
            start = datetime.strptime(f"{date_text} {time_text}", f"{date_format} %H:%M:%S")
        except ValueError:
            raise CorruptFile(
                path,
                f"start {date_text} {time_text} does not match the date format {pattern!r}",
                reader=self.name,
                line=date_line,
            ) from None
        serial = next(
            (re.sub(r"^.*Serial Number:\s*", "", line).strip() for line in block if "Serial Number:" in line),
            "",
        )
        model_match = MODEL.search(lines[0])
        model = model_match.group(1).strip() if model_match else "ActiGraph"
        column_line = lines[end] if len(lines) > end else ""
        delimiter = max((",", ";", "\t"), key=column_line.count)
        return _HeaderBlock(
            line_count=end,
            date_format=date_format,
            epoch=epoch,
            start=start,
            device=f"{model}:{serial}" if serial else model,
            delimiter=delimiter,
        )

    def _field(self, path: Path, block: list[str], pattern: str, label: str) -> tuple[int, str]:
        for number, line in enumerate(block, start=1):
            match = re.search(pattern, line, re.IGNORECASE)
            if match:
                return number, match.group(1)
        raise CorruptFile(path, f"the header block has no {label!r} line", reader=self.name, line=len(block))


@dataclass(frozen=True)
class _HeaderBlock:
    """What the header block says about the epochs that follow it."""

    line_count: int  # physical lines before the column header
    date_format: str  # strftime
    epoch: timedelta
    start: datetime  # local wall clock
    device: str
    delimiter: str


def _parse_clock_duration(text: str) -> timedelta | None:
    match = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2})", text.strip())
    if not match:
        return None
    hours, minutes, seconds = (int(part) for part in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)
