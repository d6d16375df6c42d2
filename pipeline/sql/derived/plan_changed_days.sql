-- plan_changed_days: the local days whose derived rows may change because of new lake rows.
-- A day d reads the lake rows starting in [d's first instant - 2 x reach - margin,
-- d's last instant + reach + margin] (plan_context.sql), where reach is the participant's longest
-- interval: a record's duplicates, counter predecessors and overlapping records all lie within
-- it. So a new row starting at s changes the days overlapping [s - 2 x reach - margin,
-- s + 3 x reach + margin] (a duplicate it replaces starts within one reach of s).
-- Inputs: new_lake_rows, participants, participant_reach (participant_id, reach_s); $1 = margin (s).
with starts as (
    select
        r.participant_id,
        p.time_zone,
        min(r.start_utc) as first_start_utc,
        max(r.start_utc) as last_start_utc
    from new_lake_rows as r
    join participants as p using (participant_id)
    group by r.participant_id, p.time_zone, cast(r.start_utc at time zone p.time_zone as date)
),

spans as (
    select
        s.participant_id,
        cast((s.first_start_utc - to_seconds(2 * pr.reach_s + $1)) at time zone s.time_zone as date) as first_day,
        cast((s.last_start_utc + to_seconds(3 * pr.reach_s + $1)) at time zone s.time_zone as date) as last_day
    from starts as s
    join participant_reach as pr using (participant_id)
),

final as (
    select distinct
        participant_id,
        cast(unnest(generate_series(first_day, last_day, interval 1 day)) as date) as local_date
    from spans
)

select * from final
