"""Whether processes a test started (or a process it killed started) have ended."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path


def alive(pid: int) -> bool:
    """Running, not a zombie (a zombie has ended; its new parent may not reap it at once)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_all_end(pids: Iterable[int], seconds: float, message: str) -> None:
    """Fail with `message` unless every process in `pids` has ended within `seconds`."""
    pids = list(pids)
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"{message}: {[pid for pid in pids if alive(pid)]}"
        time.sleep(0.05)
