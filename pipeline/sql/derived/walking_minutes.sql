-- walking_minutes: the minutes of minute_steps with cadence >= walking_cadence_steps_min, kept per
-- local day so that walking_segments can join them across the whole history cheaply.
-- Units: minute_utc (start of the UTC minute).
with minutes as (
    select * from minute_steps
),

final as (
    select m.participant_id, m.minute_utc, m.local_date
    from minutes as m
    cross join definitions as d
    where m.steps >= d.walking_cadence_steps_min
)

select * from final
