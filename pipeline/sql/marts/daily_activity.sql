-- daily_activity: one row per participant and local day of the programme, from programme_start
-- to the report date (definitions v1 "Days"). A day with no step interval at all has NULL
-- metrics (never 0) and valid_day = false.
-- Units: steps (steps, rounded to whole steps); *_minutes (minutes); worn_hours (local clock
-- hours with >= 1 step); peak30_cadence (steps/min).
with calendar as (
    select
        p.participant_id,
        p.time_zone,
        p.programme_start,
        cast(unnest(generate_series(p.programme_start, p.report_date, interval 1 day)) as date) as local_date
    from participants as p
    where p.programme_start <= p.report_date
),

minute_days as (
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

day_source as (
    -- the day's highest-priority source, over minute and coarse data
    select
        cal.participant_id,
        cal.local_date,
        least(coalesce(md.top_minute_rank, 999), coalesce(cs.top_coarse_rank, 999)) as top_rank
    from calendar as cal
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

adjusted_days as (
    select participant_id, local_date, bool_or(clock_adjusted) as clock_adjusted
    from stg_step_intervals
    group by participant_id, local_date
),

bout_days as (
    select participant_id, local_date, sum(walking_minutes) as bout_minutes
    from walking_segments
    where is_bout
    group by participant_id, local_date
),

combined as (
    select
        cal.participant_id,
        cal.local_date,
        cal.programme_start,
        (md.minute_rows is not null or cs.top_coarse_rank is not null) as has_data,
        coalesce(md.minute_rows, 0) > 0 as has_minutes,
        cs.top_coarse_rank is not null as touched_by_coarse,
        coalesce(md.minute_steps, 0) + coalesce(cc.coarse_steps, 0) as raw_steps,
        md.worn_hours,
        md.walking_minutes_all,
        md.moderate_minutes,
        md.vigorous_minutes,
        bd.bout_minutes,
        pm.top30_cadence,
        coalesce(ad.clock_adjusted, false) as clock_adjusted,
        list_sort(list_distinct(list_concat(coalesce(md.minute_sources, []), coalesce(cc.coarse_sources, []))))
            as sources
    from calendar as cal
    left join minute_days as md using (participant_id, local_date)
    left join coarse_summary as cs using (participant_id, local_date)
    left join coarse_counted as cc using (participant_id, local_date)
    left join bout_days as bd using (participant_id, local_date)
    left join peak_minutes as pm using (participant_id, local_date)
    left join adjusted_days as ad using (participant_id, local_date)
),

judged as (
    select
        c.*,
        case
            when not c.has_data then false
            when not c.has_minutes then c.raw_steps >= d.coarse_valid_day_min_steps
            else coalesce(c.worn_hours, 0) >= d.valid_day_min_worn_hours
        end as valid_day,
        case when c.has_data then not c.has_minutes end as low_confidence,
        case when c.has_data then not c.touched_by_coarse end as minute_resolution
    from combined as c
    cross join definitions as d
),

final as (
    select
        j.participant_id,
        j.local_date,
        cast(datediff('day', j.programme_start, j.local_date) // 7 + 1 as integer) as programme_week,
        strftime(j.local_date, '%G-W%V') as iso_week,
        case when j.has_data then round(j.raw_steps) end as steps,
        case when j.has_data then cast(coalesce(j.walking_minutes_all, 0) as double) end as walking_minutes_all,
        case when j.has_data then cast(coalesce(j.bout_minutes, 0) as double) end as bout_minutes,
        case when j.has_data then cast(coalesce(j.moderate_minutes, 0) as double) end as moderate_minutes,
        case when j.has_data then cast(coalesce(j.vigorous_minutes, 0) as double) end as vigorous_minutes,
        case when j.has_data then cast(coalesce(j.worn_hours, 0) as integer) end as worn_hours,
        j.valid_day,
        case when j.has_data then coalesce(j.bout_minutes, 0) >= d.walking_day_min_bout_minutes end as walking_day,
        j.low_confidence,
        case when j.has_data then j.raw_steps > d.implausible_day_steps end as implausible,
        j.minute_resolution,
        case when j.valid_day and j.minute_resolution then j.top30_cadence end as peak30_cadence,
        case when j.has_data then j.clock_adjusted end as clock_adjusted,
        case when j.has_data then j.sources end as sources,
        case when j.has_data then j.raw_steps end as steps_unrounded
    from judged as j
    cross join definitions as d
)

select * from final
order by participant_id, local_date
