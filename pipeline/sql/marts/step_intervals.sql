-- step_intervals: every normalised step interval (definitions v1 "Step interval"), after the
-- same record from several exports is kept once and FIT counters are re-derived.
-- A view over the derived Parquet files of one build (pipeline/sql/derived/; see
-- pipeline/derived.py): `derived_intervals` stands for those files.
-- Units: steps (steps), distance_m (metres); start_utc/end_utc UTC instants, end exclusive.
select
    participant_id,
    source,
    device,
    file_sha256,
    start_utc,
    end_utc,
    steps,
    distance_m,
    activity_type
from derived_intervals
