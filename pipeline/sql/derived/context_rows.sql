-- context_rows: the lake rows the changed days read (plan_context.sql): rows of the given files
-- ($1) starting inside one of their participant's context windows. $2 and $3 bound all the
-- windows (lets DuckDB skip row groups of the files by their start_utc statistics).
with rows as (
    select * from read_parquet($1, union_by_name = true, hive_partitioning = false)
    where start_utc between $2 and $3
),

final as (
    select r.*
    from rows as r
    semi join context_windows as w
        on r.participant_id = w.participant_id and r.start_utc between w.from_utc and w.to_utc
)

select * from final
