"""The nightly run as the scheduled deployment runs it (issue 5, target 3: orchestration's share).

Usage (from the project root), on a cohort folder written by `cohort_generator.py`::

    .venv/bin/python benchmarks/cohort_generator.py benchmarks/out/served --participants 20 --days 28
    .venv/bin/python benchmarks/served_nightly.py benchmarks/out/served [--nights 2]

A first run is made through the library when the folder has no warehouse yet (not measured). Then,
for each night: `cohort_generator.add_day` drops one new day per participant, and a run of the
served deployment is triggered through the API of a persistent Prefect server (started here on a
free local port, with its own PREFECT_HOME under benchmarks/out/served_prefect_home), which
`stepwise serve` is serving. Its figures: wall time from trigger to completion, and the flow run's
time in Running (from the API's state history). For comparison, the next night is run through
the library alone (`scale.py`'s driver: the same calls without Prefect) on the same folder.
Orchestration = trigger-to-completion minus the library's wall time (both include imports).

The last line is machine-readable::

    RESULT nights=... served_trigger_to_done_s=... served_running_s=... library_s=... orchestration_s=...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import cohort_generator as gen  # noqa: E402
import scale  # noqa: E402

VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
DEPLOYMENT = "stepwise-nightly/stepwise-nightly"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check, what: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def next_night(folder: Path) -> date:
    """Drop one new day per participant; the run's report date."""
    added = gen.add_day(folder)
    return date.fromisoformat(added.last_day) + timedelta(days=1)


def served_run(as_of: date) -> tuple[float, float, str]:
    """Trigger one run of the deployment and wait for it: (trigger to done s, Running s, final state)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    began = time.perf_counter()
    run = run_deployment(DEPLOYMENT, parameters={"as_of": as_of.isoformat()}, timeout=1800)
    wall = time.perf_counter() - began

    async def history():
        async with get_client() as client:
            return await client.read_flow_run_states(run.id)

    states = sorted(asyncio.run(history()), key=lambda s: s.timestamp)
    running = next((s.timestamp for s in states if s.type.value == "RUNNING"), None)
    in_running = (states[-1].timestamp - running).total_seconds() if running else float("nan")
    return wall, in_running, states[-1].type.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a cohort folder written by cohort_generator.py")
    parser.add_argument("--nights", type=int, default=2)
    args = parser.parse_args()
    folder = args.folder.resolve()
    library_env = scale.prefect_env(scale.DEFAULT_OUT)
    if not (folder / "warehouse.duckdb").exists():
        info = gen._load_info(folder)
        first = scale.library_run("first run (library)", folder,
                                  date.fromisoformat(info["last_day"]) + timedelta(days=1), library_env)
        print(f"first run (library, not measured here): {first.wall_s:.1f} s", flush=True)

    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(PROJECT_ROOT / "benchmarks" / "out" / "served_prefect_home"),
           "PREFECT_API_URL": api_url, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    os.environ.update(env)  # this process triggers runs and reads their states through that API
    server = subprocess.Popen([str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    serving = None
    try:
        wait_for(lambda: healthy(api_url), "the Prefect server")
        serving = subprocess.Popen([str(VENV_BIN / "stepwise"), "serve", "--data-dir", str(folder)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        def registered() -> bool:
            listing = subprocess.run([str(VENV_BIN / "prefect"), "deployment", "ls"], env=env, capture_output=True,
                                     text=True)
            return DEPLOYMENT.split("/")[1] in listing.stdout

        wait_for(registered, "the deployment to be registered")
        served, running, library = [], [], []
        for night in range(1, args.nights + 1):
            wall, in_running, state = served_run(next_night(folder))
            if state != "COMPLETED":
                raise SystemExit(f"the served run ended {state}; see `stepwise serve --debug`")
            served.append(wall)
            running.append(in_running)
            lib = scale.library_run("nightly (library)", folder, next_night(folder), library_env)
            library.append(lib.wall_s)
            print(f"night {night}: served {wall:.1f} s from trigger to completion ({in_running:.1f} s running); "
                  f"library, the next night: {lib.wall_s:.1f} s ({scale._phases(lib.extra)})", flush=True)
    finally:
        for process in (serving, server):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
    served_s, running_s, library_s = (statistics.median(v) for v in (served, running, library))
    print(f"RESULT nights={args.nights} served_trigger_to_done_s={served_s:.1f} served_running_s={running_s:.1f} "
          f"library_s={library_s:.1f} orchestration_s={served_s - library_s:.1f}")


if __name__ == "__main__":
    main()
