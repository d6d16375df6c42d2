-- walking_segments (derived): runs of walking minutes joined across gaps of at most
-- bout_max_gap_minutes non-walking minutes (definitions v1 "Walking bout"); the marts' view
-- (pipeline/sql/marts/walking_segments.sql) adds is_bout.
-- A segment belongs to the local day of its first minute. Minutes without data are non-walking.
-- Inputs (pipeline/derived.py, _Builder.segments): segment_minutes, the walking minutes from which
-- a participant's segments are recomputed (every minute from the first one of a segment on: the
-- segments before it are kept from the previous build), and segment_offsets, how many segments
-- of the participant come before them (segment_number continues from there).
-- Units: minutes.
-- One pass over the walking minutes (one sort) marks where segments start and end; only those
-- boundary minutes (about two per segment, not every minute) are then paired into segments.
with walking_minutes as (
    -- minute_us: the minute as microseconds since the epoch (integer arithmetic, not time-zone-aware)
    select participant_id, minute_utc, local_date, epoch_us(minute_utc) as minute_us from segment_minutes
),

marked as (
    -- a minute starts a segment when the walking minute before it is more than the allowed gap
    -- away (or there is none), and ends one when the walking minute after it is
    select
        w.*,
        row_number() over by_time as minute_number,
        coalesce(w.minute_us - lag(w.minute_us) over by_time > (d.bout_max_gap_minutes + 1) * 60000000, true)
            as starts_segment,
        coalesce(lead(w.minute_us) over by_time - w.minute_us > (d.bout_max_gap_minutes + 1) * 60000000, true)
            as ends_segment
    from walking_minutes as w
    cross join definitions as d
    window by_time as (partition by w.participant_id order by w.minute_us)
),

boundaries as (
    -- a segment's first minute, and its last: the same minute, else the next boundary minute
    select
        participant_id,
        starts_segment,
        sum(starts_segment::integer) over by_time as segment_number,
        minute_utc as first_minute_utc,
        minute_us as first_minute_us,
        local_date,
        minute_number as first_minute_number,
        case when ends_segment then minute_utc else lead(minute_utc) over by_time end as last_minute_utc,
        case when ends_segment then minute_us else lead(minute_us) over by_time end as last_minute_us,
        case when ends_segment then minute_number else lead(minute_number) over by_time end as last_minute_number
    from marked
    where starts_segment or ends_segment
    window by_time as (partition by participant_id order by minute_us)
),

final as (
    select
        b.participant_id,
        cast(coalesce(o.segments_before, 0) + b.segment_number as bigint) as segment_number,
        b.first_minute_utc,
        b.last_minute_utc,
        b.local_date,
        b.last_minute_number - b.first_minute_number + 1 as walking_minutes,
        ((b.last_minute_us - b.first_minute_us) / 1000000) / 60 + 1 as span_minutes
    from boundaries as b
    left join segment_offsets as o using (participant_id)
    where b.starts_segment
)

select * from final
