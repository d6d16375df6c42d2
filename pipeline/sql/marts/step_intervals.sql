-- step_intervals: every normalised step interval (definitions v1 "Step interval"), after the
-- same record from several exports is kept once and FIT counters are re-derived.
-- Units: steps (steps), distance_m (metres); start_utc/end_utc UTC instants, end exclusive.
with intervals as (
    select * from stg_step_intervals
),

final as (
    select
        participant_id,
        source,
        device,
        file_sha256,
        start_utc,
        end_utc,
        steps,
        distance_m,
        activity_type
    from intervals
)

select * from final
order by participant_id, start_utc, source
