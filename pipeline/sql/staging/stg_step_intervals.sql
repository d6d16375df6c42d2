-- stg_step_intervals: the lake's step intervals, one row per real-world record.
-- Inputs: lake_step_intervals (the Parquet lake), participants, source_priority, definitions.
-- 1. The same record arriving in several exports is kept once: the newest export wins
--    (identity: participant, source, device, activity type, start and end; for cumulative
--    counters the end instant alone, since a counter row's start depends on its file).
-- 2. FIT monitoring counters (cumulative_steps not null) are re-derived across the sync files
--    of one device: steps = counter - previous counter of the same type and local reset day;
--    the start is never earlier than the device's previous message in any file.
-- Units: steps (steps), distance_m (metres), instants UTC.
with intervals as not materialized (
    -- _record: a hash of the record's identity (a row whose hash no other row has is unique)
    -- (not materialized: each use below scans the lake rows again, cheaper than a copy of them all)
    select
        *,
        hash(
            participant_id, source, coalesce(device, ''), coalesce(activity_type, ''), end_utc,
            case when cumulative_steps is null then start_utc end
        ) as _record
    from lake_step_intervals
),

repeated as (
    -- the identities that may occur more than once; only their rows need the window below
    -- (speed: most records arrive once, and a window over every row costs a sort of them all)
    select _record from intervals group by _record having count(*) > 1
),

newest_export as (
    select * exclude (_record)
    from intervals
    anti join repeated using (_record)
    union all
    select * exclude (_record)
    from (select * from intervals semi join repeated using (_record))
    qualify row_number() over (
        partition by
            participant_id, source, coalesce(device, ''), coalesce(activity_type, ''), end_utc,
            case when cumulative_steps is null then start_utc end
        order by ingested_at desc, file_sha256 desc
    ) = 1
),

counters as (
    select
        n.*,
        p.time_zone,
        -- a message at local 00:00 still carries the previous day's final count
        cast((n.end_utc - interval 1 microsecond) at time zone p.time_zone as date) as reset_day
    from newest_export as n
    join participants as p using (participant_id)
    where n.cumulative_steps is not null
),

counters_rederived as (
    select
        participant_id,
        source,
        device,
        file_sha256,
        greatest(
            start_utc,
            coalesce(
                max(end_utc) over (
                    partition by participant_id, source, device
                    order by end_utc
                    -- every earlier end instant (ties excluded); a RANGE offset frame is 5x slower
                    groups between unbounded preceding and 1 preceding
                ),
                start_utc
            )
        ) as start_utc,
        end_utc,
        case
            when lag(cumulative_steps) over same_counter is null then cumulative_steps
            when cumulative_steps < lag(cumulative_steps) over same_counter then cumulative_steps
            else cumulative_steps - lag(cumulative_steps) over same_counter
        end as steps,
        distance_m,
        activity_type,
        clock_adjusted,
        time_zone
    from counters
    window same_counter as (
        partition by participant_id, source, device, activity_type, reset_day
        order by end_utc
    )
),

all_intervals as (
    select
        participant_id, source, device, file_sha256, start_utc, end_utc, steps,
        distance_m, activity_type, local_date, clock_adjusted
    from newest_export
    where cumulative_steps is null
    union all
    select
        participant_id, source, device, file_sha256, start_utc, end_utc, steps,
        distance_m, activity_type,
        cast(start_utc at time zone time_zone as date) as local_date,
        clock_adjusted
    from counters_rederived
),

final as (
    select
        i.*,
        -- intervals longer than spread_max_minutes are coarse (day steps only)
        (i.end_utc - i.start_utc) > to_minutes(d.spread_max_minutes) as is_coarse,
        coalesce(sp.priority_rank, 999) as priority_rank
    from all_intervals as i
    cross join definitions as d
    left join source_priority as sp using (source)
)

select * from final
