-- plan_context: the lake rows each run of changed days needs (see plan_changed_days.sql): from
-- the first day's local midnight - 2 x reach - margin to the instant after the last day + reach
-- + margin. Consecutive changed days form one window.
-- Inputs: changed_days, participants, participant_reach; $1 = margin (s).
with numbered as (
    select
        participant_id,
        local_date,
        local_date - cast(row_number() over (partition by participant_id order by local_date) as integer) as island
    from changed_days
),

islands as (
    select participant_id, min(local_date) as first_day, max(local_date) as last_day
    from numbered
    group by participant_id, island
),

final as (
    select
        i.participant_id,
        cast(i.first_day as timestamp) at time zone p.time_zone - to_seconds(2 * pr.reach_s + $1) as from_utc,
        cast(i.last_day + 1 as timestamp) at time zone p.time_zone + to_seconds(pr.reach_s + $1) as to_utc
    from islands as i
    join participants as p using (participant_id)
    join participant_reach as pr using (participant_id)
)

select * from final
