"""One run at a time per data folder: a lock file holding the holder's pid and start time.

A second run finds the lock and stops with RunLocked naming the holder. A lock left by a dead
process (its pid no longer exists on this host) is taken over.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import RunLocked


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": datetime.now(UTC).isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            stale = holder is None or (holder.get("host") == me["host"] and not _alive(int(holder.get("pid", -1))))
            if not stale:
                raise RunLocked(
                    f"{path.parent}: another run (pid {holder.get('pid')}, started {holder.get('started_at')}) "
                    "is using this data folder"
                ) from None
            path.unlink(missing_ok=True)  # a dead process's lock: take it over
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        break
    else:
        raise RunLocked(f"{path.parent}: could not take the run lock")
    try:
        yield
    finally:
        if (_holder(path) or {}).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)
