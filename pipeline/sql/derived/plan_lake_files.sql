-- plan_lake_files: one row per lake batch file not seen by the previous build: its participant,
-- the span of its interval starts and its longest interval (the reach of its records, seconds).
-- Input: new_lake_rows (the files' rows; file_index: the file's place in the list read).
with rows as (
    select * from new_lake_rows
),

final as (
    select
        file_index,
        any_value(participant_id) as participant_id,
        min(start_utc) as min_start_utc,
        max(start_utc) as max_start_utc,
        coalesce(max(epoch(end_utc - start_utc)), 0) as max_length_s,
        count(*) as rows
    from rows
    group by file_index
)

select * from final
