"""Writing outbox files so that a reader never finds half a file.

A file is written to a hidden temporary beside it (`.<name>.<pid>.tmp`) and renamed over it. A run
killed mid-write leaves its temporary behind; the next run, holding the run lock (so no live writer
owns one), removes them with `remove_stale_temporaries` before writing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline.errors import StepwiseError


class ReportWriteError(StepwiseError):
    """A clinic's summary cannot be written where it belongs."""

    hint = "Check that the outbox folder is writable and the clinic id can name a folder"


# what `_temporary_name` makes: `.summary.pdf.12345.tmp`
_TEMPORARY_NAME = re.compile(r"\..+\.[0-9]+\.tmp")


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to a temporary name beside `path`, flush it to disk, then rename it over `path`."""
    temporary = _temporary_name(path)
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


def remove_stale_temporaries(outbox: Path) -> list[Path]:
    """Delete the temporaries `write_atomic` left in `outbox` (any depth) when a run was killed
    mid-write. Call only under the run lock, so that no live writer owns one. Symbolic links are
    neither followed nor removed. Returns the files removed."""
    removed = []
    for folder, _, names in os.walk(outbox):
        for name in names:
            path = Path(folder, name)
            if _TEMPORARY_NAME.fullmatch(name) and path.is_file() and not path.is_symlink():
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise ReportWriteError(
                        f"{path}: cannot remove a stale temporary file ({exc.strerror or exc})"
                    ) from exc
                removed.append(path)
    return removed
