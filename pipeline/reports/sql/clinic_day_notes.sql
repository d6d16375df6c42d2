-- Days of one clinic's patients that a physiotherapist should know about when reading the
-- numbers: implausible step counts, clock changes, days resting on daily totals only.
-- Parameters: $clinic_id, $participant_ids, $report_date (as in clinic_weeks.sql).
WITH clinic_patients AS (
    SELECT DISTINCT participant_id
    FROM weekly_adherence
    WHERE clinic_id = $clinic_id
      AND list_contains($participant_ids, participant_id)
),

days AS (
    SELECT d.*
    FROM daily_activity AS d
    INNER JOIN clinic_patients AS p USING (participant_id)
    WHERE d.local_date <= $report_date
),

final AS (
    SELECT
        participant_id,
        local_date,
        programme_week,
        steps,
        coalesce(implausible, false) AS implausible,
        coalesce(clock_adjusted, false) AS clock_adjusted,
        coalesce(low_confidence, false) AS low_confidence
    FROM days
    WHERE coalesce(implausible, false)
       OR coalesce(clock_adjusted, false)
       OR coalesce(low_confidence, false)
)

SELECT * FROM final
ORDER BY participant_id, local_date
