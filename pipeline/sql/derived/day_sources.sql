-- day_sources: per participant, local day (the interval's local_date) and source, the facts of
-- stg_step_intervals that the marts need: summed steps (daily_crosscheck), the latest end
-- (weekly_adherence.last_data_utc) and whether a local time was moved out of the spring gap
-- (daily_activity.clock_adjusted).
-- Units: steps (steps), last_end_utc (UTC instant).
with intervals as (
    select * from stg_step_intervals
),

final as (
    select
        participant_id,
        local_date,
        source,
        sum(steps) as steps,
        max(end_utc) as last_end_utc,
        bool_or(clock_adjusted) as clock_adjusted
    from intervals
    group by participant_id, local_date, source
)

select * from final
