"""The clinic summary opened in headless Chromium (Debian's `chromium`, started by the test).

The test drives Chromium over the DevTools protocol (a websocket, `websocket-client`): no
chromedriver, no network. It records console messages, uncaught exceptions, browser log entries
(content-security-policy violations, failed loads) and every request that is not the file itself
or an inline data: resource; then reads the page's DOM, takes a screenshot and prints the page
to PDF with the page's own @page rules.

Skipped only when Chromium is missing outside CI; with CI=true a missing Chromium fails the test
(scripts/system-deps.sh installs it). Set STEPWISE_TEST_ARTIFACTS=<folder> to keep the screenshot.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest
import websocket  # websocket-client, a test dependency
from PIL import Image
from pypdf import PdfReader

from pipeline.reports.render import write_clinic_reports
from pipeline.reports.synthetic import (
    expected_attention,
    sample_cohort,
    write_synthetic_warehouse,
)

REPORT_DATE = date(2024, 3, 20)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def chromium_binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed; .ci/run must run scripts/system-deps.sh first")
        pytest.skip("chromium is not installed (run scripts/system-deps.sh); this test always runs in CI")
    return binary


class DevTools:
    """A minimal DevTools-protocol client on one page target."""

    def __init__(self, websocket_url: str) -> None:
        self.socket = websocket.create_connection(websocket_url, timeout=60, suppress_origin=True)
        self.events: list[dict] = []
        self._next_id = 0

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        call_id = self._next_id
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, *, since: int = 0, timeout_s: float = 60) -> dict:
        """The first `event` among the events from index `since` on, waiting for it if need be."""
        deadline = time.monotonic() + timeout_s
        seen = since
        try:
            while time.monotonic() < deadline:
                for message in self.events[seen:]:
                    if message.get("method") == event:
                        return message
                seen = len(self.events)
                self.socket.settimeout(max(deadline - time.monotonic(), 0.1))
                self.events.append(json.loads(self.socket.recv()))
        finally:
            self.socket.settimeout(60)
        raise TimeoutError(event)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def chromium(tmp_path):
    """Start Chromium headless with an empty profile; yield a DevTools client on its page."""
    binary = chromium_binary()
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    log = open(tmp_path / "chromium.log", "wb")
    process = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                output = (tmp_path / "chromium.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"chromium did not start: {output}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
            targets = json.load(response)
        page = next(t for t in targets if t["type"] == "page")
        client = DevTools(page["webSocketDebuggerUrl"])
        yield client
        client.close()
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # the group of the process this fixture started
            process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def north_summary(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    cohort = sample_cohort(REPORT_DATE)
    write_synthetic_warehouse(root / "warehouse.duckdb", cohort, REPORT_DATE)
    write_clinic_reports(
        root / "warehouse.duckdb", [p.participant() for p in cohort], root / "outbox", REPORT_DATE,
        clinics={"north"}, pdf=False,
    )
    return root / "outbox" / "north" / REPORT_DATE.isoformat() / "summary.html"


PAGE_FACTS = """
(() => {
  const text = (el) => el ? el.innerText.trim() : null;
  return {
    title: document.title,
    reportDate: text(document.querySelector('#report-date')),
    definitions: text(document.querySelector('#definitions-version')),
    freshness: text(document.querySelector('#freshness')),
    attention: [...document.querySelectorAll('#attention li.attention-item')].map(li => ({
      id: li.dataset.participantId, kind: li.dataset.kind, text: li.innerText})),
    roster: [...document.querySelectorAll('table.roster tbody tr')].map(tr => tr.dataset.participantId),
    sections: [...document.querySelectorAll('section.patient')].map(s => ({
      id: s.dataset.participantId, heading: text(s.querySelector('h3')),
      chart: !!s.querySelector('figure div.chart svg')})),
    glossary: [...document.querySelectorAll('#how-to-read dt')].map(dt => dt.innerText),
    charts: [...document.querySelectorAll('div.chart svg')].map(svg => {
      const box = svg.getBoundingClientRect(); return [Math.round(box.width), Math.round(box.height)]; }),
    images: document.images.length,
    overflowX: document.documentElement.scrollWidth > window.innerWidth,
  };
})()
"""


def open_page(chromium: DevTools, page: Path) -> list[tuple]:
    """Load `page` and return what went wrong: console errors and warnings, uncaught exceptions,
    browser log errors (CSP violations, failed loads) and requests for anything but the page."""
    for domain in ("Runtime", "Log", "Network", "Page"):
        chromium.call(f"{domain}.enable")
    chromium.call("Emulation.setDeviceMetricsOverride", width=1000, height=1400, deviceScaleFactor=1, mobile=False)
    before = len(chromium.events)
    chromium.call("Page.navigate", url=page.as_uri())
    chromium.wait_for("Page.loadEventFired", since=before)
    chromium.evaluate("new Promise(resolve => setTimeout(resolve, 200))")  # late console messages
    problems = []
    for event in chromium.events[before:]:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            problems.append(("console", params["type"], [a.get("value") for a in params.get("args", [])]))
        elif method == "Runtime.exceptionThrown":
            problems.append(("exception", params["exceptionDetails"].get("text")))
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            problems.append(("log", params["entry"]["level"], params["entry"]["text"]))
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not (url.startswith("data:") or url == page.as_uri()):
                problems.append(("network", url))
    return problems


def test_the_page_check_sees_console_errors_and_network_requests(chromium: DevTools, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body><p>x</p>"
        '<img src="http://127.0.0.1:9/tracker.png" alt="">'
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    kinds = {problem[0] for problem in open_page(chromium, page)}
    assert {"console", "exception", "network"} <= kinds


def test_summary_page_in_headless_chromium(chromium: DevTools, north_summary: Path, tmp_path):
    cohort = [p for p in sample_cohort(REPORT_DATE) if p.clinic_id == "north"]
    problems = open_page(chromium, north_summary)
    facts = chromium.evaluate(PAGE_FACTS)
    assert problems == []

    # the attention list names the patients the cohort's truth says need attention, most urgent first
    urgency = ("overload", "falling_behind", "no_recent_data", "not_met")
    truth = sorted(
        ((p.participant_id, expected_attention(p)) for p in cohort if expected_attention(p)),
        key=lambda item: urgency.index(item[1]),
    )
    assert [(item["id"], item["kind"]) for item in facts["attention"]] == truth
    names = {p.participant_id: p.display_name for p in cohort}
    for item in facts["attention"]:
        assert names[item["id"]] in item["text"]
    assert "3rd week below half" in next(i["text"] for i in facts["attention"] if i["kind"] == "falling_behind")

    # every patient in the roster and with a section of their own, with a rendered chart
    ids = sorted(p.participant_id for p in cohort)
    assert sorted(facts["roster"]) == ids
    assert sorted(s["id"] for s in facts["sections"]) == ids
    for section in facts["sections"]:
        assert names[section["id"]] in section["heading"]
        assert section["chart"]
    assert len(facts["charts"]) >= 2 * len(cohort) - 1  # a chart per patient, a trend per completed week
    assert all(width >= 80 and height >= 15 for width, height in facts["charts"]), facts["charts"]
    assert facts["images"] == 0  # the charts are inline SVG, nothing to load
    assert facts["reportDate"] == "Wed 20 Mar 2024" and facts["definitions"] == "version 1"
    assert facts["freshness"].startswith("Tue 19 Mar 2024")
    assert "Walk minutes" in facts["glossary"] and "Peak-30 cadence" in facts["glossary"]
    assert not facts["overflowX"], "the page fits the window without scrolling sideways"

    # screenshot of the whole page
    metrics = chromium.call("Page.getLayoutMetrics")
    height = min(int(metrics["cssContentSize"]["height"]), 16000)
    shot = chromium.call(
        "Page.captureScreenshot", format="png", captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": 1000, "height": height, "scale": 1},
    )
    png = base64.b64decode(shot["data"])
    screenshot = tmp_path / "summary-north.png"
    screenshot.write_bytes(png)
    if os.environ.get("STEPWISE_TEST_ARTIFACTS"):
        keep = Path(os.environ["STEPWISE_TEST_ARTIFACTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, keep / screenshot.name)
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.size == (1000, height) and height > 2000
    low, high = image.getextrema()
    assert low < 64 and high > 240, "the screenshot shows dark text on a light page"

    # printing from the browser uses the page's A4 rules
    printed = chromium.call("Page.printToPDF", preferCSSPageSize=True, printBackground=True)
    pages = PdfReader(io.BytesIO(base64.b64decode(printed["data"]))).pages
    assert len(pages) >= 3
    assert abs(float(pages[0].mediabox.width) - 595.3) < 2 and abs(float(pages[0].mediabox.height) - 841.9) < 2
