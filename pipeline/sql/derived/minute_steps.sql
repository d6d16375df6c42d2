-- minute_steps: one row per participant and UTC minute that any minute-resolution interval
-- covers (zero-step minutes included: they prove the device reported).
-- Spreading: an interval of <= spread_max_minutes is spread over the UTC minutes it overlaps in
-- proportion to the seconds of overlap. Source priority: the minute takes the steps of the single
-- highest-priority source (then the device with more steps); sources are never added.
-- Units: steps (steps in the minute = cadence, steps/min).
with intervals as (
    select * from stg_step_intervals
    where not is_coarse
),

spread as (
    select
        i.participant_id,
        i.source,
        i.device,
        i.priority_rank,
        m.minute_utc,
        case
            when i.end_utc = i.start_utc then i.steps
            else i.steps
                * epoch(least(i.end_utc, m.minute_utc + interval 1 minute) - greatest(i.start_utc, m.minute_utc))
                / epoch(i.end_utc - i.start_utc)
        end as steps
    from intervals as i,
        lateral (
            select unnest(generate_series(
                date_trunc('minute', i.start_utc),
                greatest(date_trunc('minute', i.start_utc), i.end_utc - interval 1 microsecond),
                interval 1 minute
            )) as minute_utc
        ) as m
),

per_device as (
    select participant_id, minute_utc, source, device, priority_rank, sum(steps) as steps
    from spread
    group by all
),

chosen as (
    select *
    from per_device
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

