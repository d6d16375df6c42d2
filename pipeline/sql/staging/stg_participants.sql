-- stg_participants: the registry as the warehouse keeps it (no display names or free text),
-- with each participant's report date (the --as-of date, or today in their own zone).
with registry as (
    select * from registry_participants
),

final as (
    select
        cast(participant_id as varchar) as participant_id,
        cast(clinic_id as varchar) as clinic_id,
        cast(time_zone as varchar) as time_zone,
        cast(programme_start as date) as programme_start,
        cast(report_date as date) as report_date
    from registry
)

select * from final
order by participant_id
