-- walking_segments: runs of walking minutes joined across gaps of at most bout_max_gap_minutes
-- non-walking minutes; is_bout marks the kept ones (definitions v1 "Walking bout").
-- A segment belongs to the local day of its first minute. Minutes without data are non-walking.
-- Units: minutes.
-- One pass over the walking minutes (one sort) marks where segments start and end; only those
-- boundary minutes (about two per segment, not every minute) are then paired into segments.
with walking_minutes as (
    -- minutes with cadence >= walking_cadence_steps_min (pipeline/sql/derived/walking_minutes.sql)
    -- minute_us: the minute as microseconds since the epoch (integer arithmetic, not time-zone-aware)
    select participant_id, minute_utc, local_date, epoch_us(minute_utc) as minute_us from derived_walking_minutes
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

segments as (
    select
        participant_id,
        segment_number,
        first_minute_utc,
        last_minute_utc,
        local_date,
        last_minute_number - first_minute_number + 1 as walking_minutes,
        ((last_minute_us - first_minute_us) / 1000000) / 60 + 1 as span_minutes
    from boundaries
    where starts_segment
),

final as (
    select
        s.*,
        s.span_minutes >= d.bout_min_span_minutes
            and s.walking_minutes / s.span_minutes >= d.bout_min_walking_fraction as is_bout
    from segments as s
    cross join definitions as d
)

select * from final
order by participant_id, first_minute_utc
