"""The scheduled nightly deployment (needs a Prefect server: `prefect server start`).

A temporary (ephemeral) API server registers deployments but never schedules them, so `serve`
refuses to start without PREFECT_API_URL. The README also shows a system-timer alternative.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect.schedules import Cron

from flows.nightly import nightly

DEFAULT_CRON = "0 2 * * *"


def serve_nightly(data_dir: Path, cron: str = DEFAULT_CRON, time_zone: str = "UTC") -> None:
    """Register the nightly deployment and run it on schedule until interrupted."""
    nightly.serve(
        name="stepwise-nightly",
        schedules=[Cron(cron, timezone=time_zone)],
        parameters={"data_dir": str(Path(data_dir).resolve())},
        description="Ingest new exports, rebuild the warehouse, write clinic summaries.",
        tags=["stepwise"],
    )


def server_configured() -> bool:
    return bool(os.environ.get("PREFECT_API_URL"))
