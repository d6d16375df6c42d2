"""`stepwise`: the command line, thin over the flows and the library.

Errors are one line (file, what is wrong, what to do); --debug shows the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import date
from pathlib import Path

import click

from pipeline.errors import StepwiseError


def _quiet_prefect(debug: bool, *, one_off_run: bool = False) -> None:
    """Prefect's embedded server and logs stay out of the user's way unless --debug.

    Set before Prefect is imported: its logging config (`PREFECT_LOGGING_LEVEL`) is read then, and
    again when the embedded server starts. Prefect logs a failed task or flow at ERROR, traceback
    included; for a one-off run the CLI prints its own one line instead, so Prefect stays silent
    (CRITICAL). `serve` keeps WARNING (or the user's level): there nobody else reports a failed
    scheduled run."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    if debug:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "DEBUG")
    elif not one_off_run:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    else:
        os.environ["PREFECT_LOGGING_LEVEL"] = "CRITICAL"
        os.environ["PREFECT_SERVER_LOGGING_LEVEL"] = "CRITICAL"
        # the root logger too: Prefect's service threads (e.g. `EventsWorker`) log to it at exit
        os.environ["PREFECT_LOGGING_ROOT_LEVEL"] = "CRITICAL"
        # should Prefect already be imported in this process (a test calling main()), its loggers too
        for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


class _TerminalProgress(logging.Handler):
    """Shows ingest progress on one terminal line (only when stderr is a terminal)."""

    def __init__(self) -> None:
        super().__init__()
        self.last = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        done, total = getattr(record, "done", 0), getattr(record, "total", 0)
        now = time.monotonic()
        if done == total or now - self.last > 0.2:
            self.last = now
            click.echo(f"\r{record.getMessage()}: {done}/{total} files", err=True, nl=done == total)


def _run_flow(data_dir: Path, as_of: date | None, debug: bool) -> dict:
    _quiet_prefect(debug, one_off_run=True)
    if sys.stderr.isatty():
        logger = logging.getLogger("stepwise.progress")
        logger.setLevel(logging.INFO)
        logger.addHandler(_TerminalProgress())
        logger.propagate = False  # shown once, on its line, not again by Prefect's console handler
    from flows.nightly import nightly

    return nightly(data_dir=str(data_dir), as_of=as_of)


def _report(summary: dict) -> None:
    """What the run did, ending with the one-line account (README: the last line of a run)."""
    for reason in summary["quarantine_reasons"]:
        click.echo(f"quarantined: {reason}")
    for failure in summary["delivery_failures"]:
        click.echo(f"not delivered: {failure}")
    click.echo(f"warehouse: {summary['warehouse']}")
    for path in summary["reports"]:
        click.echo(f"{'open:' if path.endswith('.html') else 'report:':<10} {path}")
    click.echo(
        f"{summary['ingested']} file(s) ingested, {summary['skipped']} skipped as already seen, "
        f"{summary['quarantined']} quarantined"
    )


def _fail(exc: BaseException, debug: bool) -> None:
    if debug:
        raise exc
    message = exc.one_line() if isinstance(exc, StepwiseError) else f"{type(exc).__name__}: {exc}"
    if sys.stderr.isatty():
        click.echo("\r\033[K", err=True, nl=False)  # the line replaces an unfinished progress line
    click.echo(f"stepwise: {message} (run with --debug for details)", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks and Prefect's logs.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Stepwise: walking-programme data from watches and phones to clinic adherence summaries."""
    ctx.obj = {"debug": debug}


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The data folder (participants.csv, inbox/, ...).")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Report date YYYY-MM-DD (default: today in each participant's zone).")
@click.pass_context
def run(ctx: click.Context, data_dir: Path, as_of) -> None:
    """Run the nightly flow once on DATA_DIR: ingest new files, rebuild the warehouse, write reports."""
    debug = ctx.obj["debug"]
    if not (data_dir / "participants.csv").exists():
        _fail(StepwiseError(f"{data_dir / 'participants.csv'}: not found",
                            hint="Point --data-dir at a data folder with participants.csv and inbox/"), debug)
    try:
        summary = _run_flow(data_dir, as_of.date() if as_of else None, debug)
    except Exception as exc:  # the CLI is the one place that turns errors into one line
        _fail(exc, debug)
    _report(summary)


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".demo"),
              show_default=True, help="Where to write the sample cohort (replaced).")
@click.pass_context
def demo(ctx: click.Context, data_dir: Path) -> None:
    """Regenerate the sample cohort into DATA_DIR and run the nightly flow on it."""
    import shutil

    from pipeline.samples.cohort import write_cohort

    debug = ctx.obj["debug"]
    try:
        if data_dir.exists():
            shutil.rmtree(data_dir)
        info = write_cohort(data_dir)
        summary = _run_flow(data_dir, info.as_of, debug)
    except Exception as exc:
        _fail(exc, debug)
    click.echo(f"sample cohort: {data_dir} (report date {info.as_of})")
    _report(summary)


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The data folder the nightly run works on.")
@click.option("--cron", default="0 2 * * *", show_default=True, help="When to run (cron syntax).")
@click.option("--timezone", "time_zone", default="UTC", show_default=True,
              help="IANA zone the cron is read in, e.g. Europe/London.")
@click.pass_context
def serve(ctx: click.Context, data_dir: Path, cron: str, time_zone: str) -> None:
    """Register the nightly deployment against a Prefect server (PREFECT_API_URL) and serve it."""
    debug = ctx.obj["debug"]
    _quiet_prefect(debug)
    from flows.deploy import serve_nightly, server_configured

    if not server_configured():
        _fail(StepwiseError("PREFECT_API_URL is not set",
                            hint="Start a server with `prefect server start` and export "
                                 "PREFECT_API_URL=http://127.0.0.1:4200/api (see README)"), debug)
    try:
        serve_nightly(data_dir, cron, time_zone)
    except Exception as exc:
        _fail(exc, debug)
