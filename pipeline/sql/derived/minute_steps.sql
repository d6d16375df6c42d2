-- minute_steps: one row per participant and UTC minute that any minute-resolution interval
-- covers (zero-step minutes included: they prove the device reported).
-- Spreading: an interval of <= spread_max_minutes is spread over the UTC minutes it overlaps in
-- proportion to the seconds of overlap. Source priority: the minute takes the steps of the single
-- highest-priority source (then the device with more steps); sources are never added.
-- Units: steps (steps in the minute = cadence, steps/min).
with intervals as (
    -- instants as microseconds since the epoch: whole-minute arithmetic on integers, not on
    -- time-zone-aware timestamps (the same values, several times faster)
    select *, epoch_us(start_utc) as start_us, epoch_us(end_utc) as end_us
    from stg_step_intervals
    where not is_coarse
),

minute_span as (
    select
        *,
        start_us - ((start_us % 60000000) + 60000000) % 60000000 as first_minute_us,
        (end_us - 1) - (((end_us - 1) % 60000000) + 60000000) % 60000000 as last_minute_us
    from intervals
),

spread as (
    select
        i.participant_id,
        i.source,
        i.device,
        i.priority_rank,
        to_timestamp(m.minute_us // 1000000) as minute_utc,
        case
            when i.end_us = i.start_us then i.steps
            -- seconds of overlap / seconds of the interval
            else i.steps
                * ((least(i.end_us, m.minute_us + 60000000) - greatest(i.start_us, m.minute_us)) / 1000000)
                / ((i.end_us - i.start_us) / 1000000)
        end as steps
    from minute_span as i,
        lateral (
            select unnest(range(
                i.first_minute_us,
                greatest(i.first_minute_us, i.last_minute_us) + 1,
                60000000
            )) as minute_us
        ) as m
),

per_device as (
    select participant_id, minute_utc, source, device, priority_rank, sum(steps) as steps
    from spread
    group by all
),

several_devices as (
    -- the participants with more than one source or device among these rows: only they can have
    -- minutes that several report
    select participant_id
    from (select distinct participant_id, source, device from intervals)
    group by participant_id
    having count(*) > 1
),

shared_minutes as (
    -- the minutes more than one source or device reported; only their rows need the window below
    -- (speed: most minutes have one, and a window over every minute costs a sort of them all)
    select participant_id, minute_utc
    from per_device
    semi join several_devices using (participant_id)
    group by participant_id, minute_utc
    having count(*) > 1
),

chosen as (
    select *
    from per_device
    anti join shared_minutes using (participant_id, minute_utc)
    union all
    select *
    from (select * from per_device semi join shared_minutes using (participant_id, minute_utc))
    qualify row_number() over (
        partition by participant_id, minute_utc
        order by priority_rank, steps desc, source, device
    ) = 1
),

final as (
    select
        c.participant_id,
        c.minute_utc,
        cast(c.minute_utc at time zone p.time_zone as date) as local_date,
        c.steps,
        c.source,
        c.device,
        c.priority_rank
    from chosen as c
    join participants as p using (participant_id)
)

select * from final

