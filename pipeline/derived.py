"""Derived rows kept between runs, so that a nightly build recomputes only the days that changed.

The expensive part of the warehouse (de-duplicated intervals, the minute series, per-day facts) is
computed by the models in pipeline/sql/derived/ and kept as Parquet under DIR/lake/derived/:

  build-<id>/<table>/<origin build>-<n>.parquet   the rows of one build, every file immutable
  build-<id>/.state.json, .lake_files.parquet,    what the build was computed from
            .totals_files.parquet
  build-<id>/.index.parquet                       per file and participant: first and last local day
  build-<id>/.warehouse.duckdb                    hard link to the warehouse that reads this build

Every row carries its participant and local day (the day of the interval, the minute or the day
itself; a walking segment's is the day of its first minute). A build starts from the build the
current warehouse reads:

* new lake batch files: the local days they can change (plan_changed_days.sql; the reach of a
  record is the participant's longest interval) are recomputed from the lake rows those days read
  (plan_context.sql). Files holding rows of those days are rewritten without them; every other
  file is hard-linked unchanged into the new build's folder. Rows are written one file per local
  month, and a full build writes each chunk's last RECENT_DAYS days in a file of their own, so
  that the next night rewrites those days and not the month.
* a lake file changed or gone, a participant added to or removed from the registry, a changed
  time zone (local days move), or lake rows of a participant the registry does not know: that
  participant's days are all recomputed. Programme starts, clinics, report dates and
  prescriptions only change the marts, which are rebuilt from the derived rows every run.
* different models or settings (or no previous build): everything is.

walking_segments join walking minutes across days, so they come after the rest, from the build's
complete walking minutes (_Builder.segments): a participant's segments that end well before their
earliest changed day are kept, the others recomputed from there on and numbered on. Changed
segment rules (their model or the definitions) recompute every segment, nothing else.
The devices' own daily totals (lake/device_daily_totals, for daily_crosscheck) are kept as each
day's largest: a build reads only the lake's new total files and rewrites the months they touch
(_Builder.device_totals).

A build folder is written hidden (.build-<id>), renamed when complete, and only then read by a new
warehouse; the warehouse's views name that folder, so an analyst holding an old warehouse open keeps
reading the old folder, which is deleted by a later run only when no process holds that old
warehouse open (its hard link is probed with a non-blocking lock, the lock DuckDB readers take).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline.lake import batch_files, fsync_dir, make_dirs, make_durable

SQL_DIR = Path(__file__).resolve().parent / "sql"
DERIVED_FORMAT = "1"  # bump when the layout or the meaning of a derived table changes

# (table, model) run in this order on the lake rows of one chunk of participants. Each table has
# participant_id and local_date columns: the key by which rows are replaced.
DERIVED_MODELS: tuple[tuple[str, str], ...] = (
    ("stg_step_intervals", "staging/stg_step_intervals.sql"),
    ("minute_steps", "derived/minute_steps.sql"),
    ("walking_minutes", "derived/walking_minutes.sql"),
    ("day_facts", "derived/day_facts.sql"),
    ("day_sources", "derived/day_sources.sql"),
)
# The stored tables: derived table name -> the model table it keeps.
DERIVED_TABLES: dict[str, str] = {
    "intervals": "stg_step_intervals",
    "minute_steps": "minute_steps",
    "walking_minutes": "walking_minutes",
    "day_facts": "day_facts",
    "day_sources": "day_sources",
}
# walking_segments join walking minutes across days, so they are not computed per chunk of changed
# days but after them, from the build's complete walking minutes (_Builder.segments).
SEGMENTS = "walking_segments"
SEGMENTS_MODEL = "derived/walking_segments.sql"
# The devices' own daily totals (lake/device_daily_totals), kept as their per-day largest, so that a
# night reads only the lake's new total files (_Builder.device_totals).
TOTALS = "device_totals"
TOTALS_MODEL = "derived/device_totals.sql"
STORED_TABLES = (*DERIVED_TABLES, SEGMENTS, TOTALS)
BUILD_NAME = re.compile(r"(build-\d{8}T\d{6}-[0-9a-f]{8})/minute_steps/")
MARGIN_SECONDS = 3600  # slack around every day's window (DST, rounding)
WRITERS = 2  # connections writing one table's files at once: a COPY of one month's rows kept 1.1-1.5 of
# the 2 cores busy (it encodes a row group or two, alone), so two COPYs side by side fill them
CHUNK_ROWS = 1_000_000  # lake rows computed at once: bounds memory (a year of 40 participants built from
# scratch: 71 s at 1M, 82 s at 2M, which spilled 750 MB past the 1.5 GB limit)

LAKE_FILES_SCHEMA = {
    "relpath": pl.String, "size_bytes": pl.Int64, "mtime_ns": pl.Int64, "participant_id": pl.String,
    "min_start_utc": pl.Datetime("us", "UTC"), "max_start_utc": pl.Datetime("us", "UTC"),
    "max_length_s": pl.Float64, "rows": pl.Int64,
}
TOTALS_FILES_SCHEMA = {"relpath": pl.String, "size_bytes": pl.Int64, "mtime_ns": pl.Int64}
INDEX_SCHEMA = {"table": pl.String, "file": pl.String, "participant_id": pl.String,
                "min_date": pl.Date, "max_date": pl.Date,
                "last_utc": pl.Datetime("us", "UTC")}  # walking_segments: the latest last_minute_utc; else null


@dataclass
class DerivedBuild:
    folder: Path  # DIR/lake/derived/build-<id>
    mode: str  # full | incremental | unchanged
    recomputed_participants: int
    changed_days: int
    files_written: int
    files_linked: int

    def files(self, table: str) -> list[Path]:
        """The build's files of a derived table (every table has at least one)."""
        return sorted((self.folder / table).glob("*.parquet"))

    def glob(self, table: str) -> str:
        return str(self.folder / table / "*.parquet")


@dataclass
class _State:
    folder: Path
    code: str
    segments_code: str | None  # None: a build from before walking_segments were derived rows
    zones: dict[str, str]  # participant_id -> time_zone the build used
    lake_files: pl.DataFrame
    index: pl.DataFrame
    totals_code: str | None  # None: a build from before device totals were derived rows
    totals_files: pl.DataFrame | None  # the lake's daily total files the build read


# --------------------------------------------------------------------------- fingerprints


def code_fingerprint(frames: dict[str, pl.DataFrame]) -> str:
    """The models, the derived format and the settings they read: any change means a full build."""
    digest = hashlib.sha256(DERIVED_FORMAT.encode())
    for _, model in DERIVED_MODELS:
        digest.update(model.encode() + (SQL_DIR / model).read_bytes())
    for name in ("definitions", "source_priority"):
        digest.update(name.encode() + json.dumps(frames[name].rows(), default=str).encode())
    return digest.hexdigest()


def totals_fingerprint() -> str:
    return hashlib.sha256((TOTALS_MODEL + _model(TOTALS_MODEL)).encode()).hexdigest()


def segments_fingerprint(frames: dict[str, pl.DataFrame]) -> str:
    """The segments model and the settings it reads: any change means every segment is recomputed
    (not the other derived rows)."""
    digest = hashlib.sha256((SEGMENTS_MODEL + _model(SEGMENTS_MODEL)).encode())
    digest.update(json.dumps(frames["definitions"].rows(), default=str).encode())
    return digest.hexdigest()


def registry_zones(registry: pl.DataFrame) -> dict[str, str]:
    """Who the participants are and their zones: the only registry facts the derived rows depend
    on (local days)."""
    return dict(registry.select("participant_id", "time_zone").rows())


# --------------------------------------------------------------------------- build folders


def _warehouse_link(folder: Path) -> Path:
    return folder / ".warehouse.duckdb"


def current_build(root: Path, warehouse: Path) -> Path | None:
    """The build folder the current warehouse reads: the one whose hard link is the warehouse
    file; in a copied data folder (hard links not kept), the one its views name."""
    if not root.exists() or not warehouse.exists():
        return None
    for folder in sorted(root.glob("build-*")):
        link = _warehouse_link(folder)
        with contextlib.suppress(OSError):
            if link.exists() and os.path.samefile(link, warehouse):
                return folder
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            views = con.execute("select sql from duckdb_views() where view_name = ?", ["minute_steps"]).fetchall()
        finally:
            con.close()
    except duckdb.Error:
        return None
    names = BUILD_NAME.findall(views[0][0]) if views else []
    folder = root / names[-1] if names else None
    return folder if folder is not None and folder.is_dir() else None


def _relink(folder: Path, warehouse: Path) -> None:
    """Make the build's link the warehouse file itself again (a copied data folder has copies)."""
    link = _warehouse_link(folder)
    with contextlib.suppress(OSError):
        if link.exists() and os.path.samefile(link, warehouse):
            return
    fresh = folder / ".warehouse.duckdb.relink"
    fresh.unlink(missing_ok=True)
    os.link(warehouse, fresh)
    os.replace(fresh, link)
    fsync_dir(folder)


def _held_open(path: Path) -> bool:
    """True when some process holds this warehouse file open through DuckDB (a read-only
    connection holds a shared lock on it)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def remove_unused_builds(root: Path, keep: Path | None) -> list[Path]:
    """Delete build folders no warehouse reader can reach: unfinished ones (hidden), and finished
    ones that are not `keep` and whose warehouse no process holds open. Under the run lock."""
    removed = []
    if not root.exists():
        return removed
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder == keep:
            continue
        name = folder.name
        unfinished = name.startswith(".build-")
        if unfinished or (name.startswith("build-") and not _held_open(_warehouse_link(folder))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _read_state(folder: Path | None) -> _State | None:
    if folder is None:
        return None
    try:
        meta = json.loads((folder / ".state.json").read_text())
        if meta.get("format") != DERIVED_FORMAT:
            return None
        index = pl.read_parquet(folder / ".index.parquet")
        if "last_utc" not in index.columns:  # a build from before walking_segments were derived rows
            index = index.with_columns(pl.lit(None).alias("last_utc"))
        totals = folder / ".totals_files.parquet"
        return _State(folder, meta["code"], meta.get("segments_code"), dict(meta["zones"]),
                      pl.read_parquet(folder / ".lake_files.parquet").cast(LAKE_FILES_SCHEMA),
                      index.select(list(INDEX_SCHEMA)).cast(INDEX_SCHEMA), meta.get("totals_code"),
                      pl.read_parquet(totals).cast(TOTALS_FILES_SCHEMA) if totals.exists() else None)
    except (OSError, ValueError, KeyError, pl.exceptions.PolarsError):
        return None  # no usable state: a full build


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def sql_literal(text: str) -> str:
    """A path as a SQL string literal (for the few statements DuckDB cannot bind: COPY targets
    and view definitions). Our own paths only, never a value from the data."""
    if "\x00" in text or "\n" in text or "\r" in text:
        raise ValueError(f"unsupported character in path {text!r}")
    return "'" + text.replace("'", "''") + "'"


# --------------------------------------------------------------------------- the build

# Per file and participant of a table: first and last local day (and the latest last minute of a
# walking segment). Parameters: the table, its files.
INDEX_ROWS = ("select ?, parse_filename(filename), participant_id, min(local_date), max(local_date), null "
              "from read_parquet(?, filename = true, hive_partitioning = false) group by filename, participant_id")
SEGMENT_INDEX_ROWS = ("select ?, parse_filename(filename), participant_id, min(local_date), max(local_date), "
                      "max(last_minute_utc) from read_parquet(?, filename = true, hive_partitioning = false) "
                      "group by filename, participant_id")

# One local month of a table's rows, up to a day (the parameters: the month, the last day or NULL
# for all of them, and a number of days before it). Rows are written in the order the query gives
# them, not sorted: every reader of the derived rows says what order it needs, and a sort by
# participant and day made the writes 1.25-1.45x slower (minute_steps of 7 participants x a year,
# 1.18-1.25 s sorted against 0.82-0.86 s).
OLDER = "coalesce(local_date <= ?::date - ?::integer, true)"
MONTHS = 'select distinct date_trunc(\'month\', local_date) from "{table}" where %s order by 1' % OLDER
MONTH_ROWS = ('select * from "{table}" where date_trunc(\'month\', local_date) is not distinct from ? '
              "and %s" % OLDER)
RECENT_ROWS = 'select * from "{table}" where local_date > ?::date - ?::integer'
RECENT_DAYS = 7  # a full build writes each chunk's last days in their own file (_write_by_month)


def _model(name: str) -> str:
    return (SQL_DIR / name).read_text()


def _create_table(con: duckdb.DuckDBPyConnection, table: str, sql: str, params: list | None = None) -> None:
    """A table of the build's scratch in-memory database from a query (`table`: a name of our own;
    `sql`: a model or a constant). Not TEMP: the writer connections (_Builder.writers) read the
    tables they write to files, and a temporary table is seen by its own connection only."""
    con.execute(f'create or replace table "{table}" as {sql}', params or [])


class _Builder:
    def __init__(self, con: duckdb.DuckDBPyConnection, lake_dir: Path, folder: Path, build_id: str) -> None:
        self.con = con
        self.lake_dir = lake_dir
        self.folder = folder
        self.build_id = build_id
        self.sequence = 0
        self.written: list[tuple[str, str]] = []  # (table, file name)
        self.linked = 0
        # connections to the same scratch database that write files side by side (_copy_to_files)
        self.writers = [con.cursor() for _ in range(WRITERS)]
        for writer in self.writers:
            writer.execute("set TimeZone = 'UTC'")
        self.pool = ThreadPoolExecutor(WRITERS, thread_name_prefix="derived-writer")

    def __enter__(self) -> "_Builder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pool.shutdown(wait=True)
        for writer in self.writers:
            writer.close()

    def _next_file(self, table: str) -> Path:
        self.sequence += 1
        return self.folder / table / f"{self.build_id}-{self.sequence:05d}.parquet"

    def compute(self, files: list[Path], *, bounds: tuple | None = None, changed_days: bool = False,
                schema_only: bool = False) -> None:
        """Run the derived models on the lake rows of `files` (with `bounds`: only the rows inside
        the context windows, which lie between the two instants); keep the rows of the changed
        days only when `changed_days`. `schema_only`: write a file even when there is no row."""
        con = self.con
        if not files:
            _create_table(con, "lake_step_intervals", "select * from empty_lake_rows")
        elif bounds is not None:
            _create_table(con, "lake_step_intervals", _model("derived/context_rows.sql"),
                          [[str(f) for f in files], *bounds])
        else:
            _create_table(con, "lake_step_intervals", "select * from read_parquet(?, union_by_name = true, "
                          "hive_partitioning = false)", [[str(f) for f in files]])
        for table, model in DERIVED_MODELS:
            _create_table(con, table, _model(model))
        for derived, table in DERIVED_TABLES.items():
            if changed_days:
                _create_table(con, "_out",
                              f'select * from "{table}" semi join changed_days using (participant_id, local_date)')
                self._write_by_month(derived, "_out", schema_only=schema_only)
            else:  # every row: written straight from the model's table, not copied first
                self._write_by_month(derived, table, schema_only=schema_only, recent_days=RECENT_DAYS)

    def _write_by_month(self, derived: str, table: str, *, schema_only: bool = False,
                        recent_days: int | None = None) -> None:
        """Write the rows of the scratch table `table` as one file per local month (a later
        build rewrites only the files holding the days it recomputes), then drop it.

        With `recent_days`, the rows of the table's last `recent_days` local days go to one file
        of their own: the next night recomputes the last day or two of every participant, and
        rewrites that file instead of the whole month (the first night after a full build of
        1,000 participants rewrote a month of everyone's minutes)."""
        con = self.con
        cutoff = [None, 0]  # every row in its month
        if recent_days is not None:
            ((latest,),) = con.sql(f'select max(local_date) from "{table}"').fetchall()
            cutoff = [latest, recent_days]
        sql = MONTHS.format(table=table)
        months = [row[0] for row in con.execute(sql, cutoff).fetchall()]
        queries = [(MONTH_ROWS.format(table=table), [month, *cutoff]) for month in months]
        if cutoff[0] is not None:
            queries.append((RECENT_ROWS.format(table=table), cutoff))
        if not months and schema_only:
            queries.append((f'select * from "{table}" limit 0', []))
        self._copy_to_files(derived, queries)
        con.execute(f'drop table "{table}"')

    def _copy_to_files(self, derived: str, queries: list[tuple[str, list]]) -> None:
        """Write each query's rows (the SQL: constants of ours) to the next files of `derived`,
        WRITERS at a time; the files are named in the order of `queries`, whichever is written
        first. A failed COPY stops the other writers from starting more; its error is raised once
        every writer has stopped."""
        paths = [self._next_file(derived) for _ in queries]
        pending = iter(zip(queries, paths))
        taking = threading.Lock()
        failed = threading.Event()  # a writer failed: the other takes no more queries

        def write(writer: duckdb.DuckDBPyConnection) -> None:
            while not failed.is_set():
                with taking:
                    job = next(pending, None)
                if job is None:
                    return
                (sql, params), path = job
                target = sql_literal(str(path))
                try:
                    writer.execute(f"copy ({sql}) to {target} (format parquet, compression zstd)", params)
                except BaseException:
                    failed.set()
                    raise

        writing = [self.pool.submit(write, writer) for writer in self.writers[:len(queries)]]
        wait(writing)
        for done in writing:
            done.result()
        self.written += [(derived, path.name) for path in paths]

    def link_unchanged(self, state: _State, table: str, rewrite: set[str]) -> None:
        """Hard-link the previous build's files of `table` into this build, except `rewrite`."""
        for path in sorted((state.folder / table).glob("*.parquet")):
            if path.name not in rewrite:
                os.link(path, self.folder / table / path.name)
                self.linked += 1

    def keep_old(self, state: _State, full: set[str]) -> None:
        """Carry the previous build's rows into this one: files untouched by the changed days are
        hard-linked, touched ones rewritten without the rows being replaced."""
        con = self.con
        index = state.index
        con.register("_index", index.to_arrow())
        touched = {row[0]: row[1] for row in con.sql(
            # a file is touched when it holds rows of a participant recomputed in full, or a day
            # range of a participant that overlaps that participant's changed days
            """
            select i."table", list(distinct i.file) from _index as i
            where i.participant_id in (select participant_id from full_participants)
               or exists (select 1 from changed_days as c
                          where c.participant_id = i.participant_id
                            and c.local_date between i.min_date and i.max_date)
            group by i."table"
            """).fetchall()}
        con.unregister("_index")
        for table in DERIVED_TABLES:
            old_folder = state.folder / table
            rewrite = set(touched.get(table, []))
            self.link_unchanged(state, table, rewrite)
            if rewrite:
                files = [str(old_folder / name) for name in sorted(rewrite)]
                _create_table(con, "_out", "select o.* from read_parquet(?, hive_partitioning = false) as o "
                              "anti join changed_days as c using (participant_id, local_date) "
                              "where o.participant_id not in (select participant_id from full_participants)",
                              [files])
                self._write_by_month(table, "_out")

    def index(self, linked_from: _State | None, tables: tuple[str, ...]) -> pl.DataFrame:
        """Per file of `tables` and participant, the first and last local day (which files a later
        build's changed days touch); for walking_segments also the latest last minute."""
        frames = []
        if linked_from is not None:
            present = pl.DataFrame(
                [(t, p.name) for t in tables for p in (self.folder / t).glob("*.parquet")],
                schema={"table": pl.String, "file": pl.String}, orient="row")
            frames.append(linked_from.index.join(present, on=["table", "file"], how="semi"))
        for table in tables:
            names = [name for t, name in self.written if t == table]
            if not names:
                continue
            paths = [str(self.folder / table / name) for name in names]
            rows = self.con.execute(SEGMENT_INDEX_ROWS if table == SEGMENTS else INDEX_ROWS, [table, paths]).fetchall()
            frames.append(pl.DataFrame(rows, schema=INDEX_SCHEMA, orient="row"))
        if not frames:
            return pl.DataFrame(schema=INDEX_SCHEMA)
        return pl.concat([f.select(list(INDEX_SCHEMA)).cast(INDEX_SCHEMA) for f in frames])

    def segments(self, state: _State | None, index: pl.DataFrame, *, fresh: bool) -> None:
        """walking_segments from the build's complete walking minutes (`index`: this build's
        index of the other tables). With `fresh` (no previous segments, or other segment rules)
        every participant's segments are computed; else a participant recomputed in full gets
        all theirs computed. One with changed days keeps the previous build's segments that end
        before `threshold_utc`: more than the allowed gap before the earliest changed day's UTC
        midnight minus a day (a local day starts at most 14 h before its UTC midnight), so no
        walking minute that may have changed can join them. The others are recomputed from the
        first minute of the first one replaced, numbered on from the segments kept."""
        con = self.con
        con.register("_minutes_index", index.filter(pl.col("table") == "walking_minutes").to_arrow())
        _create_table(con, "segment_full", "select distinct participant_id from _minutes_index" if fresh
                      else "select participant_id from full_participants")
        _create_table(con, "segment_cuts", """
            select c.participant_id,
                   cast(min(c.local_date) as timestamptz) - interval 1 day - to_minutes(d.bout_max_gap_minutes + 1)
                       as threshold_utc
            from changed_days as c
            cross join definitions as d
            where c.participant_id not in (select participant_id from segment_full)
            group by c.participant_id, d.bout_max_gap_minutes""")
        old_files: list[str] = []  # previous segment files holding rows replaced or dropped
        read_files: list[str] = []  # those, and each changed participant's latest file (its count)
        old_folder = None if fresh or state is None else state.folder / SEGMENTS
        if old_folder is not None:
            con.register("_index", state.index.filter(pl.col("table") == SEGMENTS).to_arrow())
            old_files, read_files = (sorted(files or []) for files in con.sql("""
                with marked as (
                    select i.file, i.participant_id in (select participant_id from segment_full)
                                   or i.last_utc >= c.threshold_utc as rewrite,
                           c.participant_id is not null
                               and i.last_utc = max(i.last_utc) over (partition by i.participant_id) as latest
                    from _index as i
                    left join segment_cuts as c using (participant_id)
                )
                select list(distinct file) filter (where rewrite), list(distinct file) filter (where rewrite or latest)
                from marked""").fetchall()[0])
            con.unregister("_index")
        if read_files:
            _create_table(con, "segments_read", "select participant_id, segment_number, first_minute_utc, "
                          "last_minute_utc from read_parquet(?, hive_partitioning = false)",
                          [[str(old_folder / name) for name in read_files]])
        else:
            _create_table(con, "segments_read", "select null::varchar as participant_id, "
                          "null::bigint as segment_number, null::timestamptz as first_minute_utc, "
                          "null::timestamptz as last_minute_utc limit 0")
        _create_table(con, "segment_offsets", """
            with old as (
                select o.participant_id, o.segment_number, o.first_minute_utc,
                       o.last_minute_utc >= c.threshold_utc as replaced
                from segments_read as o
                join segment_cuts as c using (participant_id)
            ),
            kept as (
                select participant_id,
                       coalesce(min(segment_number) filter (where replaced) - 1, max(segment_number))
                           as segments_before,
                       min(first_minute_utc) filter (where replaced) as first_replaced_utc
                from old
                group by participant_id
            )
            select c.participant_id, coalesce(k.segments_before, 0) as segments_before,
                   least(coalesce(k.first_replaced_utc, c.threshold_utc), c.threshold_utc) as from_utc
            from segment_cuts as c
            left join kept as k using (participant_id)
            union all
            select participant_id, 0, null from segment_full""")
        # the previous build's segments that stay: untouched files linked, the others rewritten
        if old_folder is not None:
            self.link_unchanged(state, SEGMENTS, set(old_files))
        if old_files:
            _create_table(con, "_out", """
                select o.* from read_parquet(?, hive_partitioning = false) as o
                left join segment_cuts as c using (participant_id)
                where o.participant_id not in (select participant_id from segment_full)
                  and (c.threshold_utc is null or o.last_minute_utc < c.threshold_utc)""",
                          [[str(old_folder / name) for name in old_files]])
            self._write_by_month(SEGMENTS, "_out")
        # the segments recomputed, from the walking minutes of this build's files that can hold them
        minute_files = [str(self.folder / "walking_minutes" / name) for (name,) in con.sql("""
            select distinct i.file from _minutes_index as i join segment_offsets as o using (participant_id)
            where o.from_utc is null or i.max_date >= cast(o.from_utc as date) - 1
            order by 1""").fetchall()]
        con.unregister("_minutes_index")
        if minute_files:
            _create_table(con, "segment_minutes", """
                select w.participant_id, w.minute_utc, w.local_date
                from read_parquet(?, hive_partitioning = false) as w
                join segment_offsets as o using (participant_id)
                where o.from_utc is null or w.minute_utc >= o.from_utc""", [minute_files])
        else:
            _create_table(con, "segment_minutes", "select null::varchar as participant_id, "
                          "null::timestamptz as minute_utc, null::date as local_date limit 0")
        _create_table(con, SEGMENTS, _model(SEGMENTS_MODEL))
        self._write_by_month(SEGMENTS, SEGMENTS, schema_only=not any((self.folder / SEGMENTS).glob("*.parquet")))
        for table in ("segment_full", "segment_cuts", "segments_read", "segment_offsets", "segment_minutes"):
            con.execute(f'drop table "{table}"')

    def device_totals(self, state: _State | None, totals_dir: Path, *, fresh: bool) -> pl.DataFrame:
        """device_totals from the lake's daily total files: the previous build's rows, with the
        files new since then folded in (their months rewritten, the others hard-linked). With
        `fresh` (no previous totals, or another model), or when a lake file changed or went (the
        pipeline never does either), every file is read. Returns the listing of the files read."""
        con = self.con
        listing = _list_lake(totals_dir)
        keys = ["relpath", "size_bytes", "mtime_ns"]
        previous = None if fresh or state is None else state.totals_files
        if previous is not None and previous.join(listing, on=keys, how="anti").height:
            previous = None
        new = listing if previous is None else listing.join(previous, on=keys, how="anti")
        if new.height:
            _create_table(con, "device_total_rows", "select participant_id, local_date, source, device, steps "
                          "from read_parquet(?, union_by_name = true, hive_partitioning = false)",
                          [[str(totals_dir / rel) for rel in new["relpath"].to_list()]])
        else:
            _create_table(con, "device_total_rows", "select null::varchar as participant_id, null::date as local_date, "
                          "null::varchar as source, null::varchar as device, null::double as steps limit 0")
        rewrite: set[str] = set()
        if previous is not None:  # state is not None
            months = {row[0] for row in con.sql(
                "select distinct cast(date_trunc('month', local_date) as date) from device_total_rows").fetchall()}
            for row in state.index.filter(pl.col("table") == TOTALS).iter_rows(named=True):
                if row["min_date"] is not None and row["min_date"].replace(day=1) in months:
                    rewrite.add(row["file"])  # one file per month (_write_by_month)
            old_folder = state.folder / TOTALS
            self.link_unchanged(state, TOTALS, rewrite)
            if rewrite:
                con.execute("insert into device_total_rows select participant_id, local_date, source, device, steps "
                            "from read_parquet(?, hive_partitioning = false)",
                            [[str(old_folder / name) for name in sorted(rewrite)]])
        if new.height or previous is None:
            _create_table(con, TOTALS, _model(TOTALS_MODEL))
            self._write_by_month(TOTALS, TOTALS, schema_only=not any((self.folder / TOTALS).glob("*.parquet")))
        con.execute("drop table device_total_rows")
        return listing


def _list_lake(folder: Path) -> pl.DataFrame:
    """The batch files under a lake folder (step_intervals or device_daily_totals): path, size, mtime."""
    rows = []
    for path in batch_files(folder):
        status = path.stat()
        rows.append((path.relative_to(folder).as_posix(), status.st_size, status.st_mtime_ns))
    return pl.DataFrame(rows, schema={"relpath": pl.String, "size_bytes": pl.Int64, "mtime_ns": pl.Int64},
                        orient="row")


def _chunks(weights: dict[str, int], limit: int) -> list[list[str]]:
    chunks: list[list[str]] = []
    current: list[str] = []
    total = 0
    for participant, weight in sorted(weights.items()):
        if current and total + weight > limit:
            chunks.append(current)
            current, total = [], 0
        current.append(participant)
        total += weight
    if current:
        chunks.append(current)
    return chunks


def refresh_derived(
    con: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    warehouse: Path,
    frames: dict[str, pl.DataFrame],
    *,
    now: datetime,
) -> DerivedBuild:
    """Bring the derived rows up to date with the lake, in a new build folder (see the module
    docstring). `con` is a scratch connection with `participants`, `definitions` and
    `source_priority` already created; `frames` holds the registry and settings frames."""
    intervals_dir = lake_dir / "step_intervals"
    root = lake_dir / "derived"
    make_dirs(root)
    previous = current_build(root, warehouse)
    if previous is not None:
        _relink(previous, warehouse)
    remove_unused_builds(root, keep=previous)
    state = _read_state(previous)
    code = code_fingerprint(frames)
    codes = {"segments_code": segments_fingerprint(frames), "totals_code": totals_fingerprint()}
    zones = registry_zones(frames["registry_participants"])
    if state is not None and state.code != code:
        state = None

    build_id = f"{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    hidden = root / f".build-{build_id}"
    try:
        with _Builder(con, lake_dir, hidden, build_id) as builder:
            return _build(con, builder, intervals_dir, root, hidden, build_id, state, code, codes, zones, now)
    except BaseException:
        shutil.rmtree(hidden, ignore_errors=True)  # never read: the next run would remove it anyway
        raise


def _build(con: duckdb.DuckDBPyConnection, builder: _Builder, intervals_dir: Path, root: Path, hidden: Path,
           build_id: str, state: _State | None, code: str, codes: dict[str, str], zones: dict[str, str],
           now: datetime) -> DerivedBuild:
    """`codes`: the fingerprints of the segments and device totals models (a change recomputes
    only that table)."""
    for table in STORED_TABLES:
        (hidden / table).mkdir(parents=True)
    known_participants = set(zones)

    # 1. what changed in the lake since the previous build
    listing = _list_lake(intervals_dir)
    old_files = state.lake_files if state is not None else pl.DataFrame(schema=LAKE_FILES_SCHEMA)
    same = listing.join(old_files, on=["relpath", "size_bytes", "mtime_ns"], how="inner")
    new = listing.join(old_files.select("relpath", "size_bytes", "mtime_ns"), on=["relpath", "size_bytes", "mtime_ns"],
                       how="anti")
    gone = old_files.join(listing.select("relpath", "size_bytes", "mtime_ns"),
                          on=["relpath", "size_bytes", "mtime_ns"], how="anti")
    new_catalogue = pl.DataFrame(schema=LAKE_FILES_SCHEMA)
    con.execute("drop table if exists new_lake_rows")
    if new.height:
        paths = [str(intervals_dir / rel) for rel in new["relpath"].to_list()]
        # only the columns the plan reads; file_index is the file's place in `paths`. (A first build
        # reads every lake file here: with all their columns and each row's file name, this took 3 of
        # the 27 minutes of a 1,000 x 365 warehouse build.)
        con.execute("create temp table new_lake_rows as select file_index, participant_id, start_utc, end_utc "
                    "from read_parquet(?, union_by_name = true, hive_partitioning = false)", [paths])
        found = con.sql(_model("derived/plan_lake_files.sql")).pl()
        found = found.with_columns(new["relpath"].gather(found["file_index"].cast(pl.Int64)).alias("relpath"))
        new_catalogue = (new.join(found.drop("file_index"), on="relpath", how="left")
                         .with_columns(pl.col("rows").fill_null(0), pl.col("max_length_s").fill_null(0.0))
                         .select(list(LAKE_FILES_SCHEMA)).cast(LAKE_FILES_SCHEMA))
    catalogue = pl.concat([same.select(list(LAKE_FILES_SCHEMA)).cast(LAKE_FILES_SCHEMA), new_catalogue])

    # 2. who is recomputed in full, and which days of the others
    lake_participants = set(catalogue["participant_id"].drop_nulls().to_list())
    if state is None:
        full = set(lake_participants)
    else:
        full = set(gone["participant_id"].drop_nulls().to_list())
        full |= {p for p in new_catalogue["participant_id"].drop_nulls().to_list() if p not in known_participants}
        full |= {p for p in set(state.zones) | set(zones) if state.zones.get(p) != zones.get(p)}
    partial = {p for p in new_catalogue["participant_id"].drop_nulls().to_list() if p not in full}
    reach = (catalogue.group_by("participant_id").agg(pl.col("max_length_s").max().alias("reach_s"))
             .filter(pl.col("participant_id").is_not_null()))
    con.register("_reach", reach.to_arrow())
    con.execute("create or replace temp table participant_reach as select * from _reach")
    con.unregister("_reach")
    con.execute("create or replace temp table full_participants (participant_id varchar)")
    if full:
        con.execute("insert into full_participants select unnest(?)", [sorted(full)])
    if partial:
        con.execute("create or replace temp table new_lake_rows as select * from new_lake_rows "
                    "where participant_id in (select unnest(?))", [sorted(partial)])
        _create_table(con, "changed_days", _model("derived/plan_changed_days.sql"), [MARGIN_SECONDS])
    else:
        con.execute("create or replace temp table changed_days (participant_id varchar, local_date date)")
    con.execute("drop table if exists new_lake_rows")
    changed_day_count = con.sql("select count(*) from changed_days").fetchall()[0][0]

    # 3. recompute: participants in full from all their files, the others from the rows their
    #    changed days read
    files_of = {p: list(g["relpath"]) for (p,), g in catalogue.group_by("participant_id") if p is not None}
    rows_of = {p: int(g["rows"].sum()) for (p,), g in catalogue.group_by("participant_id") if p is not None}
    for chunk in _chunks({p: rows_of.get(p, 0) for p in full}, CHUNK_ROWS):
        builder.compute([intervals_dir / rel for p in chunk for rel in files_of.get(p, [])])
    if partial:
        _create_table(con, "context_windows", _model("derived/plan_context.sql"), [MARGIN_SECONDS])
        windows = con.sql("select participant_id, min(from_utc), max(to_utc) from context_windows group by 1").fetchall()
        spans = {p: (lo, hi) for p, lo, hi in windows}
        reads: dict[str, list[str]] = {}
        weights: dict[str, int] = {}
        for row in catalogue.filter(pl.col("participant_id").is_in(sorted(spans))).iter_rows(named=True):
            lo, hi = spans[row["participant_id"]]
            if row["max_start_utc"] is not None and row["min_start_utc"] <= hi and row["max_start_utc"] >= lo:
                reads.setdefault(row["participant_id"], []).append(row["relpath"])
                weights[row["participant_id"]] = weights.get(row["participant_id"], 0) + row["rows"]
        for chunk in _chunks(weights, CHUNK_ROWS):
            bounds = (min(spans[p][0] for p in chunk), max(spans[p][1] for p in chunk))
            builder.compute([intervals_dir / rel for p in chunk for rel in reads[p]], bounds=bounds,
                            changed_days=True)
    # 4. the previous build's rows that stay
    if state is not None:
        builder.keep_old(state, full)
    for table in DERIVED_TABLES:  # every table readable, even with no rows at all
        if not any((hidden / table).glob("*.parquet")):
            builder.compute([], schema_only=True)
            break
    index = builder.index(state, tuple(DERIVED_TABLES))
    # 5. walking segments, from the build's complete walking minutes
    builder.segments(state, index, fresh=state is None or state.segments_code != codes["segments_code"])
    # 6. the devices' own daily totals
    totals_files = builder.device_totals(state, intervals_dir.parent / "device_daily_totals",
                                         fresh=state is None or state.totals_code != codes["totals_code"])
    index = pl.concat([index, builder.index(state, (SEGMENTS, TOTALS))])

    # 7. record what the build was computed from, make it durable, publish it
    mode = "full" if state is None else ("incremental" if (full or partial) else "unchanged")
    result = DerivedBuild(root / f"build-{build_id}", mode, len(full), changed_day_count, len(builder.written),
                          builder.linked)
    catalogue.write_parquet(hidden / ".lake_files.parquet")
    index.write_parquet(hidden / ".index.parquet")
    totals_files.write_parquet(hidden / ".totals_files.parquet")
    _write_file(hidden / ".state.json", json.dumps(
        {"format": DERIVED_FORMAT, "build_id": build_id, "code": code, **codes, "zones": zones,
         "built_at": now.isoformat(), **describe(result)}).encode())
    make_durable([*(hidden / table / name for table, name in builder.written), hidden / ".lake_files.parquet",
                  hidden / ".index.parquet", hidden / ".totals_files.parquet"],
                 [*(hidden / table for table in STORED_TABLES), hidden])
    os.rename(hidden, result.folder)
    fsync_dir(root)
    return result


def link_warehouse(build: DerivedBuild, warehouse_file: Path) -> None:
    """Record which warehouse reads this build (before the warehouse is swapped in)."""
    link = _warehouse_link(build.folder)
    link.unlink(missing_ok=True)
    os.link(warehouse_file, link)
    fsync_dir(build.folder)


def describe(build: DerivedBuild) -> dict:
    """What a build did, as recorded in its .state.json."""
    return asdict(build) | {"folder": build.folder.name}
