-- Days where a device's own daily step total differs from the steps we computed, for one
-- clinic's patients: the five largest differences per patient, and how many days differ.
-- Parameters: $clinic_id, $participant_ids, $report_date (as in clinic_weeks.sql). Units: steps.
WITH clinic_patients AS (
    SELECT DISTINCT participant_id
    FROM weekly_adherence
    WHERE clinic_id = $clinic_id
      AND list_contains($participant_ids, participant_id)
),

differing AS (
    SELECT c.*
    FROM daily_crosscheck AS c
    INNER JOIN clinic_patients AS p USING (participant_id)
    WHERE c.local_date <= $report_date
      AND c.difference IS NOT NULL
      AND round(c.difference) <> 0
),

final AS (
    SELECT
        participant_id,
        local_date,
        source,
        device,
        device_steps,
        computed_steps,
        difference,
        count(*) OVER (PARTITION BY participant_id) AS days_differing
    FROM differing
    QUALIFY row_number() OVER (
        PARTITION BY participant_id ORDER BY abs(difference) DESC, local_date, source
    ) <= 5
)

SELECT * FROM final
ORDER BY participant_id, abs(difference) DESC, local_date, source
