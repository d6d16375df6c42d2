-- walking_segments: runs of walking minutes joined across gaps of at most bout_max_gap_minutes
-- non-walking minutes, computed by pipeline/sql/derived/walking_segments.sql; is_bout marks the
-- kept ones (definitions v1 "Walking bout").
-- A view over the derived Parquet files of one build (see pipeline/derived.py):
-- `derived_walking_segments` stands for those files.
-- Units: minutes.
select
    s.participant_id,
    s.segment_number,
    s.first_minute_utc,
    s.last_minute_utc,
    s.local_date,
    s.walking_minutes,
    s.span_minutes,
    s.span_minutes >= d.bout_min_span_minutes
        and s.walking_minutes / s.span_minutes >= d.bout_min_walking_fraction as is_bout
from derived_walking_segments as s
cross join definitions as d
