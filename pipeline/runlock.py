"""One run at a time per data folder: a lock file holding the holder's pid and start time.

A second run finds the lock and stops with RunLocked naming the holder. The lock is a kernel
lock (`flock`) on the file, so it dies with its process: a lock file left by a dead process is
not locked by anyone and the next run takes it over, and two runs that find the same stale
file at the same moment cannot both take it (only one gets the kernel lock). The file's
content (pid, host, start time) is only there to name the holder in the message. (On a network
file system the lock is as good as the server's flock support; NFS v4 has it.)
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import RunLocked, StorageError

HOLDER_WAIT_SECONDS = 2.0  # how long to wait for a new holder to write its pid and start time


def _holder(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _named_holder(path: Path) -> dict:
    """The holder's record; a run that has just taken the lock may not have written it yet."""
    deadline = time.monotonic() + HOLDER_WAIT_SECONDS
    while True:
        holder = _holder(path)
        if holder is not None or time.monotonic() > deadline:
            return holder or {}
        time.sleep(0.05)


def _same_file(fd: int, path: Path) -> bool:
    """True while `path` still names the file open as `fd` (a releasing holder unlinks it)."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _acquire(path: Path, me: dict) -> int:
    for _ in range(20):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _named_holder(path)
            raise RunLocked(
                f"{path.parent}: another run (pid {holder.get('pid', 'unknown')}, "
                f"started {holder.get('started_at', 'just now')}) is using this data folder"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if not _same_file(fd, path):  # locked a file the previous holder has just removed
            os.close(fd)
            continue
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(me).encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd
    raise RunLocked(f"{path.parent}: could not take the run lock")


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": datetime.now(UTC).isoformat()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(path, me)
    except OSError as exc:
        raise StorageError(path, exc, doing="take the run lock") from exc
    try:
        yield
    finally:
        # remove the file while still holding the lock, then release it (closing the file)
        if _same_file(fd, path):
            path.unlink(missing_ok=True)
        os.close(fd)
