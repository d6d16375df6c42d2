-- day_facts: per participant and local day with any data, the day's facts that depend only on
-- that day's minutes and intervals (definitions v1 "Days"); daily_activity adds the calendar,
-- the bouts and the verdicts. Kept per day so that a nightly run recomputes only changed days.
-- Units: minute_steps, coarse_steps (steps); worn_hours (local clock hours with >= 1 step);
-- *_minutes (minutes); top30_cadence (steps/min).
with minute_days as (
    select
        m.participant_id,
        m.local_date,
        count(*) as minute_rows,
        sum(m.steps) as minute_steps,
        min(m.priority_rank) as top_minute_rank,
        count(distinct case when m.steps > 0 then date_trunc('hour', m.minute_utc at time zone p.time_zone) end)
            as worn_hours,
        count(*) filter (where m.steps >= d.walking_cadence_steps_min) as walking_minutes_all,
        count(*) filter (where m.steps >= d.moderate_cadence_steps_min) as moderate_minutes,
        count(*) filter (where m.steps >= d.vigorous_cadence_steps_min) as vigorous_minutes,
        list(distinct m.source) as minute_sources
    from minute_steps as m
    join participants as p using (participant_id)
    cross join definitions as d
    group by m.participant_id, m.local_date
),

top_minutes as (
    select participant_id, local_date, steps
    from minute_steps
    qualify row_number() over (partition by participant_id, local_date order by steps desc) <= 30
),

peak_minutes as (
    -- minutes without data count as 0, hence the division by 30 rather than an average
    select t.participant_id, t.local_date, sum(t.steps) / any_value(d.peak_cadence_minutes) as top30_cadence
    from top_minutes as t
    cross join definitions as d
    group by t.participant_id, t.local_date
),

coarse_days as (
    -- every local day a coarse interval touches
    select
        c.participant_id,
        cast(touched.local_date as date) as local_date,
        c.source,
        c.priority_rank,
        c.steps,
        c.local_date = cast(touched.local_date as date) as starts_this_day
    from stg_step_intervals as c
    join participants as p using (participant_id),
        lateral (
            select unnest(generate_series(
                c.local_date,
                greatest(c.local_date, cast((c.end_utc - interval 1 microsecond) at time zone p.time_zone as date)),
                interval 1 day
            )) as local_date
        ) as touched
    where c.is_coarse
),

coarse_summary as (
    select participant_id, local_date, min(priority_rank) as top_coarse_rank
    from coarse_days
    group by participant_id, local_date
),

data_days as (
    select participant_id, local_date from minute_days
    union
    select participant_id, local_date from coarse_summary
),

day_source as (
    -- the day's highest-priority source, over minute and coarse data
    select
        dd.participant_id,
        dd.local_date,
        least(coalesce(md.top_minute_rank, 999), coalesce(cs.top_coarse_rank, 999)) as top_rank
    from data_days as dd
    left join minute_days as md using (participant_id, local_date)
    left join coarse_summary as cs using (participant_id, local_date)
),

coarse_counted as (
    -- coarse intervals that start this day and belong to the day's highest-priority source
    select cd.participant_id, cd.local_date, sum(cd.steps) as coarse_steps, list(distinct cd.source) as coarse_sources
    from coarse_days as cd
    join day_source as ds using (participant_id, local_date)
    where cd.starts_this_day and cd.priority_rank = ds.top_rank
    group by cd.participant_id, cd.local_date
),

final as (
    select
        dd.participant_id,
        dd.local_date,
        md.minute_rows,
        md.minute_steps,
        md.worn_hours,
        md.walking_minutes_all,
        md.moderate_minutes,
        md.vigorous_minutes,
        md.minute_sources,
        pm.top30_cadence,
        cs.top_coarse_rank,
        cc.coarse_steps,
        cc.coarse_sources
    from data_days as dd
    left join minute_days as md using (participant_id, local_date)
    left join coarse_summary as cs using (participant_id, local_date)
    left join coarse_counted as cc using (participant_id, local_date)
    left join peak_minutes as pm using (participant_id, local_date)
)

select * from final
