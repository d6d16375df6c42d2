-- walking_segments: runs of walking minutes joined across gaps of at most bout_max_gap_minutes
-- non-walking minutes; is_bout marks the kept ones (definitions v1 "Walking bout").
-- A segment belongs to the local day of its first minute. Minutes without data are non-walking.
-- Units: minutes.
with walking_minutes as (
    -- minutes with cadence >= walking_cadence_steps_min (pipeline/sql/derived/walking_minutes.sql)
    -- minute_us: the minute as microseconds since the epoch (integer arithmetic, not time-zone-aware)
    select participant_id, minute_utc, local_date, epoch_us(minute_utc) as minute_us from derived_walking_minutes
),

marked as (
    select
        w.*,
        case
            when lag(w.minute_us) over by_time is null then 1
            when w.minute_us - lag(w.minute_us) over by_time > (d.bout_max_gap_minutes + 1) * 60000000 then 1
            else 0
        end as starts_segment
    from walking_minutes as w
    cross join definitions as d
    window by_time as (partition by w.participant_id order by w.minute_us)
),

numbered as (
    select
        *,
        sum(starts_segment) over (
            partition by participant_id order by minute_us rows unbounded preceding
        ) as segment_number
    from marked
),

segments as (
    select
        participant_id,
        segment_number,
        min(minute_utc) as first_minute_utc,
        max(minute_utc) as last_minute_utc,
        arg_min(local_date, minute_us) as local_date,
        count(*) as walking_minutes,
        ((max(minute_us) - min(minute_us)) / 1000000) / 60 + 1 as span_minutes
    from numbered
    group by participant_id, segment_number
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
