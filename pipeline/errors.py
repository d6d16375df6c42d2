"""Typed errors. Every error names the file and, where known, the line or byte offset, and says
what to do. The library raises them; only the CLI turns them into one printed line."""

from __future__ import annotations

from pathlib import Path


class StepwiseError(Exception):
    """Base of every error the library raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def one_line(self) -> str:
        return f"{self.message}. {self.hint}".strip() if self.hint else self.message


class InputFileError(StepwiseError):
    """A file a user gave us cannot be read. The file is quarantined with this reason."""

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        reader: str | None = None,
        line: int | None = None,
        offset: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if line is not None:
            where = f" (line {line})"
        elif offset is not None:
            where = f" (byte offset {offset})"
        super().__init__(f"{path}{where}: {problem}", hint=hint)
        self.path = str(path)
        self.problem = problem
        self.reader = reader
        self.line = line
        self.offset = offset

    def as_record(self) -> dict:
        """What the quarantine sidecar stores."""
        return {
            "path": self.path,
            "reader": self.reader,
            "error": type(self).__name__,
            "problem": self.problem,
            "line": self.line,
            "offset": self.offset,
            "hint": self.hint,
        }


class UnrecognisedFormat(InputFileError):
    hint = "Export the data in one of the formats listed in the README, or declare a column mapping"


class CorruptFile(InputFileError):
    hint = "Export the file again from the device or app; the copy we received is damaged"


class WrongParticipant(InputFileError):
    hint = "Put each participant's exports in inbox/<participant_id>/ only"


class ImplausibleData(InputFileError):
    hint = "Check the device's clock and settings, then export again"


class RegistryError(StepwiseError):
    """participants.csv / prescriptions.csv is invalid; the run cannot compute adherence."""

    def __init__(self, path: Path | str, problem: str, *, line: int | None = None) -> None:
        where = f" (line {line})" if line is not None else ""
        super().__init__(
            f"{path}{where}: {problem}",
            hint="Correct the file and run again",
        )
        self.path = str(path)
        self.line = line


class RunLocked(StepwiseError):
    hint = "Wait for the other run to finish; a lock left by a dead process is taken over automatically"


class StorageError(StepwiseError):
    """Writing into the data folder failed (disk full, file too large, permission denied, a file
    where a folder must be). Nothing already stored is changed: every write goes to a temporary
    name first, and the next run starts again from what was last committed."""

    hint = (
        "Free disk space or fix the data folder's permissions, then run again; "
        "data already stored is unchanged"
    )

    def __init__(self, path: Path | str, error: BaseException, *, doing: str = "write") -> None:
        text = str(error).strip()
        reason = getattr(error, "strerror", None) or (text.splitlines()[0] if text else type(error).__name__)
        super().__init__(f"{path}: cannot {doing} ({reason})")
        self.path = str(path)
        self.errno = getattr(error, "errno", None)
