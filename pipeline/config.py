"""Settings: the thresholds of definitions v1, the source priority and the data-folder layout.

One frozen object, built from defaults; every threshold named as in ../shared/DEFINITIONS.md so
that a reader can match a number to its definition. Changing a default means a new
definitions version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFINITIONS_VERSION = "1"

# Highest priority first. Tiers of definitions v1: FIT watch files, other wrist wearables,
# phones. Within a tier the order below decides.
DEFAULT_SOURCE_PRIORITY: tuple[str, ...] = (
    "fit_activity",
    "fit_monitoring",
    "fitbit",
    "withings",
    "garmin_connect",
    "actigraph",
    "apple_health",
    "samsung_health",
    "google_fit",
    "mapped_csv",
)


@dataclass(frozen=True)
class Definitions:
    """Thresholds of definitions v1 (units in the names)."""

    version: str = DEFINITIONS_VERSION
    spread_max_minutes: int = 15  # intervals longer than this are coarse
    walking_cadence_steps_min: float = 60.0
    moderate_cadence_steps_min: float = 100.0
    vigorous_cadence_steps_min: float = 130.0
    bout_max_gap_minutes: int = 2
    bout_min_span_minutes: int = 10
    bout_min_walking_fraction: float = 0.8
    peak_cadence_minutes: int = 30
    valid_day_min_worn_hours: int = 10
    coarse_valid_day_min_steps: float = 1000.0
    implausible_day_steps: float = 50000.0
    walking_day_min_bout_minutes: float = 10.0
    status_min_valid_days: int = 4
    partial_min_adherence_pct: float = 50.0
    overload_ratio: float = 1.5
    falling_behind_pct: float = 50.0
    falling_behind_min_valid_days: int = 4
    no_recent_data_days: int = 5
    # default progression
    start_minutes: float = 80.0
    week12_minutes: float = 130.0
    final_minutes: float = 150.0
    final_week: int = 26
    round_to_minutes: float = 5.0


@dataclass(frozen=True)
class DataFolder:
    """The data-folder contract (README, "The data folder")."""

    root: Path

    @property
    def participants_csv(self) -> Path:
        return self.root / "participants.csv"

    @property
    def prescriptions_csv(self) -> Path:
        return self.root / "prescriptions.csv"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def intervals_dir(self) -> Path:
        return self.lake / "step_intervals"

    @property
    def manifest(self) -> Path:
        return self.lake / "manifest.parquet"

    @property
    def ingest_finished(self) -> Path:
        """An empty file, there while the last ingest finished and no other has started since."""
        return self.lake / ".ingest-finished"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def config(self) -> Path:
        """Optional settings file (TOML), e.g. an [smtp] section for e-mail delivery."""
        return self.root / "stepwise.toml"

    @property
    def lock(self) -> Path:
        return self.root / ".stepwise.lock"


@dataclass(frozen=True)
class Settings:
    data: DataFolder
    definitions: Definitions = field(default_factory=Definitions)
    source_priority: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY

    @classmethod
    def for_folder(cls, root: Path | str) -> "Settings":
        return cls(data=DataFolder(Path(root).resolve()))
