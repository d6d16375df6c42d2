"""The registry of readers. Adding a format = one module in this package + one line below.

Formats are recognised by content, never by file name: `detect_reader` offers each reader the
first bytes of the file, in the order below (most specific first).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import UnrecognisedFormat
from pipeline.sources.base import HEAD_BYTES, Reader, ReadContext
from pipeline.sources.actigraph import ActiGraphReader
from pipeline.sources.apple_health import AppleHealthReader
from pipeline.sources.fit import FitReader
from pipeline.sources.fitbit import FitabaseReader
from pipeline.sources.fitbit_takeout import FitbitTakeoutReader
from pipeline.sources.garmin_connect import GarminConnectReader
from pipeline.sources.google_fit import GoogleFitReader
from pipeline.sources.mapped_csv import MappedCsvReader
from pipeline.sources.samsung_health import SamsungHealthReader
from pipeline.sources.withings import WithingsReader

READERS: tuple[Reader, ...] = (
    FitReader(),
    FitabaseReader(),
    FitbitTakeoutReader(),
    GarminConnectReader(),
    ActiGraphReader(),
    WithingsReader(),
    AppleHealthReader(),
    SamsungHealthReader(),
    GoogleFitReader(),
    MappedCsvReader(),  # last: it claims any CSV a declared mapping describes
)


def detect_reader(path: Path, head: bytes | None = None) -> Reader:
    """The reader for `path`, or UnrecognisedFormat naming the file. `head`: the file's first
    HEAD_BYTES when the caller has already read them."""
    if head is None:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    if not head:
        raise UnrecognisedFormat(path, "the file is empty")
    for reader in READERS:
        if reader.detect(path, head):
            return reader
    raise UnrecognisedFormat(path, "not a format Stepwise can read (recognised by content)")



