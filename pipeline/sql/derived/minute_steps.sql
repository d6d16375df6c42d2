-- minute_steps: one row per participant and UTC minute that any minute-resolution interval
-- covers (zero-step minutes included: they prove the device reported).
-- Spreading: an interval of <= spread_max_minutes is spread over the UTC minutes it overlaps in
-- proportion to the seconds of overlap. Source priority: the minute takes the steps of the single
-- highest-priority source (then the device with more steps); sources are never added.
-- Units: steps (steps in the minute = cadence, steps/min).
with intervals as (
    -- instants as microseconds since the epoch: whole-minute arithmetic on integers, not on
    -- time-zone-aware timestamps (the same values, several times faster)
    select i.*, p.time_zone, epoch_us(i.start_utc) as start_us, epoch_us(i.end_utc) as end_us
    from stg_step_intervals as i
    join participants as p using (participant_id)
    where not i.is_coarse
),

minute_span as (
    select
        *,
        -- the zone's UTC offset at the first and the last minute: when they agree (and the interval
        -- is shorter than a day, so no two offset changes can lie within it), every minute's local
        -- date is plain arithmetic; else each minute is converted (speed: a conversion per minute
        -- costs more than the rest of the spread)
        epoch_us(to_timestamp(first_minute_us / 1000000) at time zone time_zone) - first_minute_us
            as first_offset_us,
        epoch_us(to_timestamp(last_minute_us / 1000000) at time zone time_zone) - last_minute_us
            as last_offset_us
    from (
        select
            *,
            greatest(first_minute_us, (end_us - 1) - (((end_us - 1) % 60000000) + 60000000) % 60000000)
                as last_minute_us
        from (
            select *, start_us - ((start_us % 60000000) + 60000000) % 60000000 as first_minute_us
            from intervals
        )
    )
),

several_devices as (
    -- the participants with more than one source or device among these rows: only they can have
    -- minutes that several report
    select participant_id
    from (select distinct participant_id, source, device from intervals)
    group by participant_id
    having count(*) > 1
),

alone as (
    -- is_alone: the interval shares no UTC minute with another interval of its source and device,
    -- so its minutes need no sum (speed: minute-aligned data, such as monitoring files and minute
    -- exports, is nearly all such; sub-minute activity records are not)
    select
        *,
        coalesce(max(last_minute_us) over earlier < first_minute_us, true)
            and coalesce(lead(first_minute_us) over in_order > last_minute_us, true) as is_alone,
        participant_id in (select participant_id from several_devices) as several
    from minute_span
    window
        in_order as (partition by participant_id, source, device order by first_minute_us, last_minute_us),
        earlier as (in_order rows between unbounded preceding and 1 preceding)
),

spread as not materialized (
    -- (not materialized: each use below reads only its own rows)
    select
        participant_id,
        source,
        device,
        priority_rank,
        to_timestamp(minute_us // 1000000) as minute_utc,
        case
            when first_offset_us = last_offset_us and last_minute_us - first_minute_us < 86400000000
                then date '1970-01-01' + cast((minute_us + first_offset_us) // 86400000000 as integer)
            else cast(to_timestamp(minute_us // 1000000) at time zone time_zone as date)
        end as local_date,
        case
            when end_us = start_us then steps
            -- seconds of overlap / seconds of the interval
            else steps
                * ((least(end_us, minute_us + 60000000) - greatest(start_us, minute_us)) / 1000000)
                / ((end_us - start_us) / 1000000)
        end as steps,
        is_alone,
        several
    from (select *, unnest(range(first_minute_us, last_minute_us + 1, 60000000)) as minute_us from alone)
),

per_device as not materialized (
    -- one row per participant, minute, source and device
    select participant_id, minute_utc, local_date, source, device, priority_rank, steps, several
    from spread
    where is_alone
    union all
    select participant_id, minute_utc, local_date, source, device, priority_rank, sum(steps) as steps, several
    from spread
    where not is_alone
    -- (local_date is the minute's: one per group)
    group by participant_id, minute_utc, local_date, source, device, priority_rank, several
),

several_device_rows as (
    select * exclude (several) from per_device where several
),

shared_minutes as (
    -- the minutes more than one source or device reported; only their rows need the window below
    -- (speed: most minutes have one, and a window over every minute costs a sort of them all)
    select participant_id, minute_utc
    from several_device_rows
    group by participant_id, minute_utc
    having count(*) > 1
),

chosen as (
    select * exclude (several)
    from per_device
    where not several
    union all
    select *
    from several_device_rows
    anti join shared_minutes using (participant_id, minute_utc)
    union all
    select *
    from (select * from several_device_rows semi join shared_minutes using (participant_id, minute_utc))
    qualify row_number() over (
        partition by participant_id, minute_utc
        order by priority_rank, steps desc, source, device
    ) = 1
),

final as (
    select participant_id, minute_utc, local_date, steps, source, device, priority_rank
    from chosen
)

select * from final

