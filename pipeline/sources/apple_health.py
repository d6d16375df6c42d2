"""Apple Health exports: `export.zip` (holding `apple_health_export/export.xml`) or the bare XML.

What is read:
- `HKQuantityTypeIdentifierStepCount` records -> one interval each: `startDate`/`endDate` carry
  their own offset (`2019-03-04 08:01:13 -0500`) and are kept as instants (UTC); value = steps.
- `HKQuantityTypeIdentifierDistanceWalkingRunning` records -> `distance_m` (unit converted to
  metres) of the step interval of the same device with the same start and end. A distance record
  with no such step interval is not turned into a row: a zero-step row would state "worn, not
  walking" (definitions v1 keep that apart from "no data") for a moment the distance says the
  person walked, and could hide another writer's steps in that minute. Distance never creates
  steps. (In the real sample 1,524 of 1,587 distance records match.)
- Records inside a `Correlation` are skipped: the DTD says they repeat top-level records.
- `device` = the writer (`sourceName`) plus the model from the `device` attribute when there is
  one, e.g. `Ryan Phone (iPhone)`, `Ryan's Apple Watch (Watch)`, `Connect (Forerunner 245)`, so
  the iPhone, the Watch and third-party writers such as Garmin Connect stay distinct devices.
  Sources are never added together here; the warehouse picks one per minute.
- An exact repeat of a step record (same device, start, end and steps) is kept once; should a
  device give two distances for one window, the larger is attached. Records dated in the future
  are kept (the warehouse flags implausible data). Rows come out in order of start.

How: one streaming pass with the stdlib expat parser fed 1 MiB at a time; only the attributes of
the records we want are kept, in lists turned into polars frames every BATCH_ROWS records, so
memory does not grow with the size of the XML (real exports pass 1 GB). The parser is hardened
the way defusedxml hardens expat, and stricter: a DOCTYPE naming an external DTD, any entity
declaration (billion laughs, external entities) and any external entity reference are refused
with CorruptFile before anything is expanded or fetched; the inline DTD of real exports
(element and attribute declarations only) is accepted and ignored.

ZIP archives are read without extracting anything to disk: the member is streamed. An archive
holding a member with an absolute or `..` path (zip-slip) is refused, and so is an export member
whose uncompressed size or compression ratio is absurd (zip bomb), before it is decompressed.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO
from xml.parsers import expat

import polars as pl

from pipeline.errors import CorruptFile, UnrecognisedFormat
from pipeline.schema import conform_reader_frame, empty_reader_frame
from pipeline.sources.base import ReadContext, ReadResult

STEP_TYPE = "HKQuantityTypeIdentifierStepCount"
DISTANCE_TYPE = "HKQuantityTypeIdentifierDistanceWalkingRunning"
APPLE_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"  # 2019-05-14 18:52:09 -0400
METRES_PER_UNIT = {"m": 1.0, "cm": 0.01, "mm": 0.001, "km": 1000.0, "mi": 1609.344, "ft": 0.3048, "yd": 0.9144}

ZIP_MAGIC = b"PK\x03\x04"
EXPORT_FOLDER = "apple_health_export/"
EXPORT_MEMBER = EXPORT_FOLDER + "export.xml"
# Zip-bomb limits for the export member. Real export.xml files reach a few GB and compress about
# 10-30 times; deflate cannot do better than ~1,030 times.
MAX_MEMBER_BYTES = 16 * 2**30
MAX_COMPRESSION_RATIO = 200.0

CHUNK_BYTES = 1 << 20
BATCH_ROWS = 50_000
ASSEMBLY_ROWS = 50_000

_BATCH_SCHEMA = {"device": pl.String, "start": pl.String, "end": pl.String, "value": pl.String, "line": pl.Int64}
_DISTANCE_BATCH_SCHEMA = {**_BATCH_SCHEMA, "unit": pl.String}
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


class AppleHealthReader:
    name = "apple_health"

    def detect(self, path: Path, head: bytes) -> bool:
        if head.startswith(ZIP_MAGIC):
            return EXPORT_FOLDER.encode() in head or _zip_has_export_folder(path)
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        return text.startswith(b"<") and (b"<HealthData" in head or b"HealthKit Export" in head)

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        with _open_export_xml(path, self.name) as (stream, member):
            collector = _RecordCollector(path, member, self.name)
            collector.parse(stream)
        return ReadResult(collector.intervals())


# -- the XML ---------------------------------------------------------------------------------


class _RecordCollector:
    """Streams the export once, keeping step and distance records in bounded batches."""

    def __init__(self, path: Path, member: str | None, reader: str) -> None:
        self.path = path
        self.where = f" (in {member})" if member else ""
        self.reader = reader
        self.parser = self._hardened_parser()
        self.root_seen = False
        self.in_correlation = False
        self.steps: list[tuple] = []
        self.distances: list[tuple] = []
        self.step_frames: list[pl.DataFrame] = []
        self.distance_frames: list[pl.DataFrame] = []
        self.device_labels: dict[tuple[str | None, str | None], str] = {}

    def _hardened_parser(self) -> expat.XMLParserType:
        parser = expat.ParserCreate()
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._on_doctype
        parser.EntityDeclHandler = self._on_entity_declaration
        parser.UnparsedEntityDeclHandler = self._on_unparsed_entity
        parser.ExternalEntityRefHandler = self._on_external_reference
        parser.ordered_attributes = True
        parser.StartElementHandler = self._on_root
        return parser

    # security handlers: refuse before anything is expanded or fetched
    def _on_doctype(self, name, system_id, public_id, has_internal_subset) -> None:
        if system_id or public_id:
            self._refuse(f"the DOCTYPE refers to an external DTD ({system_id or public_id!r}); it is not fetched")

    def _on_entity_declaration(self, name, is_parameter, value, base, system_id, public_id, notation) -> None:
        self._refuse(f"the XML declares an entity ({name!r}); entity declarations are refused, never expanded")

    def _on_unparsed_entity(self, name, base, system_id, public_id, notation) -> None:
        self._refuse(f"the XML declares an unparsed entity ({name!r}); refused")

    def _on_external_reference(self, context, base, system_id, public_id) -> int:
        self._refuse(f"the XML refers to an external entity ({system_id!r}); it is not fetched")
        return 0

    def _refuse(self, problem: str) -> None:
        raise self._corrupt(problem + self.where, line=self.parser.CurrentLineNumber)

    def _corrupt(self, problem: str, *, line: int | None = None, offset: int | None = None) -> CorruptFile:
        """The error for a damaged export, naming this file (and the ZIP member, where the caller
        puts `self.where` in `problem`) and the line or byte offset."""
        return CorruptFile(self.path, problem, reader=self.reader, line=line, offset=offset)

    # records
    def _on_root(self, name: str, attrs: list[str]) -> None:
        self.root_seen = True
        if name != "HealthData":
            self._refuse(f"the root element is <{name}>, not <HealthData>: not an Apple Health export")
        self.parser.StartElementHandler = self._on_start

    def _on_start(self, name: str, attrs: list[str]) -> None:
        # attrs is [name, value, name, value, ...] (ordered_attributes: cheaper than a dict, and
        # `type` comes first in real exports)
        if name == "Record":
            kind = attrs[1] if attrs and attrs[0] == "type" else _attribute(attrs, "type")
            if kind == STEP_TYPE:
                batch = self.steps
            elif kind == DISTANCE_TYPE:
                batch = self.distances
            else:
                return
            if self.in_correlation:
                return
            fields = dict(zip(attrs[::2], attrs[1::2]))
            row = (
                self._device_label(fields.get("sourceName"), fields.get("device")),
                fields.get("startDate"),
                fields.get("endDate"),
                fields.get("value"),
                self.parser.CurrentLineNumber,
            )
            if batch is self.steps:
                if fields.get("unit", "count") != "count":
                    self._refuse(f"a step record has unit {fields.get('unit')!r} instead of 'count'")
                batch.append(row)
            else:
                batch.append((*row, fields.get("unit")))
            if len(batch) >= BATCH_ROWS:
                self._flush()
        elif name == "Correlation":
            self.in_correlation = True
            self.parser.EndElementHandler = self._on_end_in_correlation

    def _on_end_in_correlation(self, name: str) -> None:
        if name == "Correlation":
            self.in_correlation = False
            self.parser.EndElementHandler = None

    def _device_label(self, source_name: str | None, device: str | None) -> str:
        model = None
        if device:
            # "<<HKDevice: 0x282e3a260>, name:iPhone, manufacturer:Apple Inc., model:iPhone, ...>"
            at = device.find(", model:")
            if at >= 0:
                rest = device[at + 8 :]
                stop = rest.find(", ")
                model = (rest[:stop] if stop >= 0 else rest.rstrip(">")).strip() or None
        key = (source_name, model)
        label = self.device_labels.get(key)
        if label is None:
            label = source_name or "unknown writer"
            if model and model != source_name:
                label = f"{label} ({model})"
            self.device_labels[key] = label
        return label

    def parse(self, stream: IO[bytes]) -> None:
        try:
            while chunk := stream.read(CHUNK_BYTES):
                self.parser.Parse(chunk, False)
            self.parser.Parse(b"", True)
        except expat.ExpatError as exc:
            raise self._corrupt(f"not well-formed XML{self.where}: {expat.ErrorString(exc.code)}",
                                line=exc.lineno) from exc
        except LookupError as exc:
            if isinstance(exc, (KeyError, IndexError)):  # a fault of ours, not of the file
                raise
            # expat asks the codec registry for an encoding named in the XML declaration
            raise self._corrupt(f"the XML declaration names an encoding that does not exist{self.where}: {exc}",
                                line=self.parser.CurrentLineNumber) from exc
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise self._corrupt(f"the compressed export is damaged{self.where}: {exc}",
                                offset=self.parser.CurrentByteIndex) from exc
        if not self.root_seen:
            raise self._corrupt("no <HealthData> element", offset=0)
        self._flush()

    # batches -> typed frames
    def _flush(self) -> None:
        if self.steps:
            self.step_frames.append(self._typed(pl.DataFrame(self.steps, schema=_BATCH_SCHEMA, orient="row"), "steps"))
            self.steps = []
        if self.distances:
            raw = pl.DataFrame(self.distances, schema=_DISTANCE_BATCH_SCHEMA, orient="row")
            self.distance_frames.append(self._typed(raw, "distance_m"))
            self.distances = []

    def _typed(self, raw: pl.DataFrame, value_name: str) -> pl.DataFrame:
        typed = raw.select(
            "device",
            "line",
            pl.col("start").str.to_datetime(APPLE_DATE_FORMAT, strict=False, time_unit="us").alias("start_utc"),
            pl.col("end").str.to_datetime(APPLE_DATE_FORMAT, strict=False, time_unit="us").alias("end_utc"),
            pl.col("value").str.strip_chars().cast(pl.Float64, strict=False).alias("value"),
            (pl.col("unit").replace_strict(METRES_PER_UNIT, default=None, return_dtype=pl.Float64)
             if "unit" in raw.columns else pl.lit(1.0)).alias("factor"),
        )
        checks = [
            (typed["start_utc"].is_null(), "start", "a startDate that is not a time like 2019-05-14 18:52:09 -0400"),
            (typed["end_utc"].is_null(), "end", "an endDate that is not a time like 2019-05-14 18:52:09 -0400"),
            (typed["value"].is_null() | ~typed["value"].is_finite(), "value", "a value that is not a number"),
            (typed["value"] < 0, "value", "a negative value"),
            (typed["factor"].is_null(), "unit", "a distance unit that is not one of " + ", ".join(METRES_PER_UNIT)),
            (typed["end_utc"] < typed["start_utc"], "end", "an endDate before its startDate"),
        ]
        for bad, column, problem in checks:
            bad = bad.fill_null(False)
            if bad.any():
                row = int(bad.arg_true()[0])
                raise self._corrupt(f"a record has {problem} ({column}={raw[column][row]!r}){self.where}",
                                    line=int(raw["line"][row]))
        return typed.select(
            pl.col("device").cast(pl.Categorical),
            "start_utc",
            "end_utc",
            (pl.col("value") * pl.col("factor")).alias(value_name),
        )

    def intervals(self) -> pl.DataFrame:
        """Step intervals with exact repeats dropped and matching distance attached.

        Done in slices of about ASSEMBLY_ROWS rows in start order, all rows with the same start
        in the same slice; the frames are never copied whole in sorted order (only their start
        columns and the sort order are), so the extra memory stays bounded whatever the size of
        the export."""
        if not self.step_frames:
            return empty_reader_frame()
        steps = _InStartOrder(pl.concat(self.step_frames))
        distances = _InStartOrder(
            pl.concat(self.distance_frames)
            if self.distance_frames
            else pl.DataFrame(schema={"device": pl.Categorical, "start_utc": steps.starts.dtype,
                                      "end_utc": steps.starts.dtype, "distance_m": pl.Float64})
        )
        self.step_frames, self.distance_frames = [], []
        pieces = []
        low = 0
        while low < steps.height:
            high = steps.end_of_start_group(min(low + ASSEMBLY_ROWS, steps.height) - 1)
            first, last = steps.starts[low], steps.starts[high - 1]
            pieces.append(_attach_distance(steps.rows(low, high), distances.rows_starting(first, last)))
            low = high
        return conform_reader_frame(
            pl.concat(pieces, rechunk=False).with_columns(pl.lit("apple_health").alias("source"))
        )


class _InStartOrder:
    """A frame read in order of `start_utc` without sorting a copy of the whole frame."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        self.height = frame.height
        self.order = frame["start_utc"].arg_sort()
        self.starts = frame["start_utc"].gather(self.order)

    def end_of_start_group(self, index: int) -> int:
        """One past the last position holding the same start as position `index`."""
        return int(self.starts.search_sorted(self.starts[index], side="right"))

    def rows(self, low: int, high: int) -> pl.DataFrame:
        return self.frame[self.order.slice(low, high - low)]

    def rows_starting(self, first, last) -> pl.DataFrame:
        low = int(self.starts.search_sorted(first, side="left"))
        return self.rows(low, int(self.starts.search_sorted(last, side="right")))


def _attach_distance(steps: pl.DataFrame, distances: pl.DataFrame) -> pl.DataFrame:
    """Exact repeats dropped; the distance of the same device, start and end attached (the
    largest, should one device report two distances for the same window)."""
    key = ["device", "start_utc", "end_utc"]
    steps = steps.unique(subset=[*key, "steps"]).sort(["start_utc", "device", "end_utc", "steps"])
    distances = distances.group_by(key).agg(pl.col("distance_m").max())
    return steps.join(distances, on=key, how="left", maintain_order="left").with_columns(
        pl.col("device").cast(pl.String)
    )


# -- the container ---------------------------------------------------------------------------


@contextmanager
def _open_export_xml(path: Path, reader: str) -> Iterator[tuple[IO[bytes], str | None]]:
    """The export XML as a binary stream: the file itself, or the member of the ZIP archive."""
    with open(path, "rb") as handle:
        if handle.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            handle.seek(0)
            yield handle, None
            return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptFile(path, f"the ZIP archive's directory cannot be read ({exc})", reader=reader, offset=0) from exc
    with archive:
        member = _export_member(archive, path, reader)
        try:
            stream = archive.open(member)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, zlib.error) as exc:
            raise CorruptFile(
                path, f"the member {member.filename} cannot be opened ({exc})", reader=reader, offset=member.header_offset
            ) from exc
        with stream:
            yield stream, member.filename


def _export_member(archive: zipfile.ZipFile, path: Path, reader: str) -> zipfile.ZipInfo:
    infos = archive.infolist()
    for info in infos:
        if _unsafe_member_name(info.filename):
            raise CorruptFile(
                path,
                f"the archive holds a member with an unsafe path ({info.filename!r}): refused",
                reader=reader,
                offset=info.header_offset,
            )
    member = next((info for info in infos if info.filename == EXPORT_MEMBER), None)
    if member is None:
        # other languages name the file differently (exporteren.xml); recognise it by content
        member = next((info for info in infos if _looks_like_export_member(archive, info)), None)
    if member is None:
        raise UnrecognisedFormat(
            path, f"the ZIP archive holds no {EXPORT_MEMBER}: not an Apple Health export", reader=reader, offset=0
        )
    ratio = member.file_size / member.compress_size if member.compress_size else float("inf")
    if member.file_size > MAX_MEMBER_BYTES or (member.file_size and ratio > MAX_COMPRESSION_RATIO):
        raise CorruptFile(
            path,
            f"{member.filename} would expand to {member.file_size:,} bytes from {member.compress_size:,} "
            f"(ratio {ratio:,.0f}): refused as a zip bomb",
            reader=reader,
            offset=member.header_offset,
        )
    return member


def _attribute(attrs: list[str], name: str) -> str | None:
    for index in range(0, len(attrs) - 1, 2):
        if attrs[index] == name:
            return attrs[index + 1]
    return None


def _unsafe_member_name(name: str) -> bool:
    normalised = name.replace("\\", "/")
    return (
        normalised.startswith("/")
        or bool(_DRIVE_LETTER.match(normalised))
        or "\x00" in normalised
        or ".." in PurePosixPath(normalised).parts
    )


def _looks_like_export_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    name = info.filename
    if not (name.startswith(EXPORT_FOLDER) and name.count("/") == 1 and name.endswith(".xml")):
        return False
    if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
        return True  # let the zip-bomb check refuse it by name
    try:
        with archive.open(info) as member:
            head = member.read(4096)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, zlib.error):
        return False
    return b"<!DOCTYPE HealthData" in head or b"<HealthData" in head


def _zip_has_export_folder(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.startswith(EXPORT_FOLDER) for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
