-- daily_crosscheck: a device's own daily total (where the format gives one) beside the total we
-- computed from that source's intervals for the same local day. Never used in any metric.
-- Units: steps (steps); difference = device_steps - computed_steps.
with device_totals as (
    -- the device's total per day: the largest it reported (pipeline/sql/derived/device_totals.sql)
    select * from derived_device_totals
),

computed as (
    -- steps of that source's intervals per local day (pipeline/sql/derived/day_sources.sql)
    select participant_id, local_date, source, sum(steps) as computed_steps
    from derived_day_sources
    group by participant_id, local_date, source
),

final as (
    select
        t.participant_id,
        t.local_date,
        t.source,
        t.device,
        t.steps as device_steps,
        round(c.computed_steps) as computed_steps,
        t.steps - round(c.computed_steps) as difference
    from device_totals as t
    left join computed as c using (participant_id, local_date, source)
)

select * from final
order by participant_id, local_date, source, device
