-- Every programme week of one clinic's patients that has started by the report date.
-- Parameters: $clinic_id (VARCHAR), $participant_ids (VARCHAR[]: the clinic's patients in the
-- registry; a row must match both, so no other clinic's patient can appear), $report_date (DATE).
-- Units: minutes, steps, days, steps/min, percent; last_data_utc as naive UTC.
WITH weeks AS (
    SELECT *
    FROM weekly_adherence
    WHERE clinic_id = $clinic_id
      AND list_contains($participant_ids, participant_id)
      AND week_start <= $report_date
),

final AS (
    SELECT
        participant_id,
        clinic_id,
        programme_week,
        week_start,
        week_end,
        walk_minutes,
        walking_minutes_all,
        moderate_minutes,
        vigorous_minutes,
        steps,
        mean_daily_steps,
        walking_days,
        valid_days,
        low_confidence_days,
        peak30_cadence,
        prescribed_minutes,
        prescribed_days,
        adherence_pct,
        status,
        coalesce(flags, []::VARCHAR[]) AS flags,
        coalesce(sources, []::VARCHAR[]) AS sources,
        definitions_version,
        timezone('UTC', last_data_utc) AS last_data_utc
    FROM weeks
)

SELECT * FROM final
ORDER BY participant_id, programme_week
