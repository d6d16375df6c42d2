-- weekly_adherence: each programme week compared with the prescription (definitions v1
-- "Weeks and the prescription"): adherence %, status and flags. The week containing the report
-- date is 'in_progress' with no flags.
-- Units: *_minutes (minutes); adherence_pct (% of prescribed minutes, not capped).
with activity as (
    select * from weekly_activity
),

prescribed as (
    select * from prescription_weeks
),

recent_data as (
    -- days with any step interval among the no_recent_data_days local days before the report date
    select da.participant_id, count(da.steps) as recent_days_with_data
    from daily_activity as da
    join participants as p using (participant_id)
    cross join definitions as d
    where da.local_date >= p.report_date - cast(d.no_recent_data_days as integer)
      and da.local_date < p.report_date
    group by da.participant_id
),

last_data as (
    select participant_id, max(last_end_utc) as last_data_utc
    from derived_day_sources
    group by participant_id
),

joined as (
    select
        a.*,
        pw.prescribed_minutes,
        pw.prescribed_days,
        pw.plan_source,
        100 * a.walk_minutes / nullif(pw.prescribed_minutes, 0) as adherence_pct,
        a.week_end < p.report_date as completed
    from activity as a
    join prescribed as pw using (participant_id, programme_week)
    join participants as p using (participant_id)
),

with_context as (
    select
        j.*,
        lag(j.adherence_pct) over by_week as previous_adherence_pct,
        lag(j.valid_days) over by_week as previous_valid_days,
        max(case when j.completed then j.programme_week end) over (partition by j.participant_id)
            as latest_completed_week
    from joined as j
    window by_week as (partition by j.participant_id order by j.programme_week)
),

judged as (
    select
        c.*,
        case
            when not c.completed then 'in_progress'
            when c.valid_days = 0 and coalesce(c.walking_minutes_all, 0) = 0 then 'no_data'
            when c.walk_minutes >= c.prescribed_minutes and c.walking_days >= c.prescribed_days then 'met'
            when c.valid_days < d.status_min_valid_days then 'insufficient_data'
            when c.adherence_pct >= d.partial_min_adherence_pct then 'partial'
            else 'not_met'
        end as status,
        case when c.completed then list_sort(list_filter([
            case when c.walk_minutes > d.overload_ratio * c.prescribed_minutes then 'overload' end,
            case
                when c.adherence_pct < d.falling_behind_pct
                 and c.valid_days >= d.falling_behind_min_valid_days
                 and c.previous_adherence_pct < d.falling_behind_pct
                 and c.previous_valid_days >= d.falling_behind_min_valid_days
                then 'falling_behind'
            end,
            case
                when c.programme_week = c.latest_completed_week and coalesce(rd.recent_days_with_data, 0) = 0
                then 'no_recent_data'
            end,
            case when c.valid_days > 0 and c.low_confidence_days = c.valid_days then 'low_confidence' end
        ], lambda flag: flag is not null)) else [] end as flags
    from with_context as c
    cross join definitions as d
    left join recent_data as rd using (participant_id)
),

final as (
    select
        j.participant_id,
        j.clinic_id,
        j.programme_week,
        j.week_start,
        j.week_end,
        j.walk_minutes,
        j.walking_minutes_all,
        j.moderate_minutes,
        j.vigorous_minutes,
        j.steps,
        j.mean_daily_steps,
        j.walking_days,
        j.valid_days,
        j.peak30_cadence,
        j.prescribed_minutes,
        j.prescribed_days,
        j.adherence_pct,
        j.status,
        cast(j.flags as varchar[]) as flags,
        j.definitions_version,
        j.plan_source,
        j.low_confidence_days,
        j.sources,
        ld.last_data_utc
    from judged as j
    left join last_data as ld using (participant_id)
)

select * from final
order by participant_id, programme_week
