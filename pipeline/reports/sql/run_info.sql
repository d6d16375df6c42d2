-- The warehouse build this report is made from: one row.
-- built_at is returned as naive UTC so the result does not depend on the session time zone.
WITH run AS (
    SELECT report_date, definitions_version, built_at
    FROM run_info
),

final AS (
    SELECT
        report_date,
        definitions_version,
        timezone('UTC', built_at) AS built_at_utc
    FROM run
)

SELECT * FROM final
ORDER BY built_at_utc DESC
LIMIT 1
