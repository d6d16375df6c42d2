-- minute_steps: one row per participant and UTC minute that any minute-resolution interval
-- covers (zero-step minutes included), computed by pipeline/sql/derived/minute_steps.sql.
-- A view over the derived Parquet files of one build (see pipeline/derived.py):
-- `derived_minute_steps` stands for those files.
-- Units: steps (steps in the minute = cadence, steps/min).
select
    participant_id,
    minute_utc,
    local_date,
    steps,
    source,
    device,
    priority_rank
from derived_minute_steps
