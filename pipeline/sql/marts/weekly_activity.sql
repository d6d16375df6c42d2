-- weekly_activity: walking volume and intensity per programme week (definitions v1 "Weeks"),
-- for weeks 1 .. the week containing the report date. Sums are NULL for a week with no data.
-- Units: *_minutes (minutes); steps (steps, rounded); mean_daily_steps (steps/day over valid
-- days); peak30_cadence (steps/min, mean over valid days).
with days as (
    select * from daily_activity
),

weeks as (
    select
        d.participant_id,
        d.programme_week,
        sum(d.bout_minutes) as walk_minutes,
        sum(d.walking_minutes_all) as walking_minutes_all,
        sum(d.moderate_minutes) as moderate_minutes,
        sum(d.vigorous_minutes) as vigorous_minutes,
        cast(round(sum(d.steps_unrounded)) as bigint) as steps,
        avg(d.steps_unrounded) filter (where d.valid_day) as mean_daily_steps,
        cast(count(*) filter (where d.walking_day) as integer) as walking_days,
        cast(count(*) filter (where d.valid_day) as integer) as valid_days,
        avg(d.peak30_cadence) filter (where d.valid_day) as peak30_cadence,
        cast(count(*) filter (where d.valid_day and d.low_confidence) as integer) as low_confidence_days,
        list_sort(list_distinct(flatten(list(d.sources) filter (where d.sources is not null)))) as sources
    from days as d
    group by d.participant_id, d.programme_week
),

final as (
    select
        w.participant_id,
        p.clinic_id,
        w.programme_week,
        cast(p.programme_start + 7 * (w.programme_week - 1) as date) as week_start,
        cast(p.programme_start + 7 * (w.programme_week - 1) + 6 as date) as week_end,
        w.walk_minutes,
        w.walking_minutes_all,
        w.moderate_minutes,
        w.vigorous_minutes,
        w.steps,
        w.mean_daily_steps,
        w.walking_days,
        w.valid_days,
        w.peak30_cadence,
        w.low_confidence_days,
        coalesce(w.sources, []) as sources,
        d.version as definitions_version
    from weeks as w
    join participants as p using (participant_id)
    cross join definitions as d
)

select * from final
order by participant_id, programme_week
