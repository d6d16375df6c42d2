"""Writing outbox files so that a reader never finds half a file."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import StepwiseError


class ReportWriteError(StepwiseError):
    """A clinic's summary cannot be written where it belongs."""

    hint = "Check that the outbox folder is writable and the clinic id can name a folder"


def write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to a temporary name beside `path`, flush it to disk, then rename it over `path`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ReportWriteError(f"{path}: cannot write the file ({exc.strerror or exc})") from exc
    return path
