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

facts as (
    -- the day's own facts (pipeline/sql/derived/day_facts.sql), kept per day between runs
    select * from derived_day_facts
),

adjusted_days as (
    select participant_id, local_date, bool_or(clock_adjusted) as clock_adjusted
    from derived_day_sources
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
        (f.minute_rows is not null or f.top_coarse_rank is not null) as has_data,
        coalesce(f.minute_rows, 0) > 0 as has_minutes,
        f.top_coarse_rank is not null as touched_by_coarse,
        coalesce(f.minute_steps, 0) + coalesce(f.coarse_steps, 0) as raw_steps,
        f.worn_hours,
        f.walking_minutes_all,
        f.moderate_minutes,
        f.vigorous_minutes,
        bd.bout_minutes,
        f.top30_cadence,
        coalesce(ad.clock_adjusted, false) as clock_adjusted,
        list_sort(list_distinct(list_concat(coalesce(f.minute_sources, []), coalesce(f.coarse_sources, []))))
            as sources
    from calendar as cal
    left join facts as f using (participant_id, local_date)
    left join bout_days as bd using (participant_id, local_date)
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
