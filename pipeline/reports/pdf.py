"""summary.pdf: the clinic's page printed on A4 by headless Chromium (DevTools `Page.printToPDF`).

Chromium lays the page out with the same engine a clinician's browser uses, honours the page's own
`@page` rules (A4, margins, the footer's "page N of M") and prints a clinic of 200 patients about
8 times faster than WeasyPrint 70 did (`benchmarks/report_render.py` measures both in one run).

A `Printer` starts one Chromium, with a fresh profile in a private temporary folder and no
network (the page's content security policy forbids every fetch anyway), and prints each page in a
new tab of it, talking the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON messages
ending in a NUL byte, sent on the browser's fd 3, answered on its fd 4). One browser for a run's
clinics, not one per clinic: a clinic of 200 patients printed in 10.7-11.0 s against 12.6-12.8 s
with `--print-to-pdf`, the same PDF. Each print is given `timeout_s`; a print that fails or hangs
ends that browser (its whole process group), and the next print starts another.

Where util-linux's `setpriv` is present (Debian: always), Chromium is started with a parent-death
signal, so that a run killed mid-print does not leave it printing; the scratch folder such a run
leaves is named after its process, and the next report run removes it (`remove_abandoned_scratch`).
The binary is `STEPWISE_CHROMIUM` when set, else the first of `chromium`, `chromium-browser`,
`google-chrome` on PATH (Debian: `apt-get install chromium`, which `make system-deps` does).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.errors import StepwiseError

BINARY_NAMES = ("chromium", "chromium-browser", "google-chrome")
SCRATCH_PREFIX = "stepwise-pdf-"  # + the printing process's id: stepwise-pdf-<pid>-<random>
FLAGS = (
    "--headless",
    "--no-sandbox",  # the nightly job often runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--proxy-server=127.0.0.1:9",  # nothing is fetched; should anything try, it goes nowhere
)


# SIGKILL to Chromium when the thread that started it ends (the run was killed, say)
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT: tuple[str, ...] = (_SETPRIV, "--pdeathsig", "KILL", "--") if _SETPRIV else ()


class PdfPrintError(StepwiseError):
    """summary.pdf could not be printed. The clinic's HTML, CSV and JSON are still written."""

    hint = "Install Chromium (make system-deps, or apt-get install chromium) or set STEPWISE_CHROMIUM to its path"


def chromium_binary() -> str:
    """The Chromium to print with: STEPWISE_CHROMIUM, else the first known name on PATH."""
    configured = os.environ.get("STEPWISE_CHROMIUM")
    if configured:
        if shutil.which(configured) is None:
            raise PdfPrintError(f"STEPWISE_CHROMIUM={configured!r} is not an executable file")
        return configured
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise PdfPrintError(f"no Chromium to print summary.pdf with (looked for {', '.join(BINARY_NAMES)} on PATH)")


def html_to_pdf(html: str, *, timeout_s: float = 600.0) -> bytes:
    """The page printed on A4 (the page's @page rules) by a headless Chromium of its own; the PDF's
    bytes. To print several pages, keep one `Printer`."""
    with Printer(timeout_s=timeout_s) as printer:
        return printer.print_pdf(html)


class Printer:
    """Prints pages with one headless Chromium, started by the first print and ended by `close`
    (or the `with` block). One print at a time: callers in several threads hold a lock. A
    parent-death signal ties Chromium to the thread whose print starts it, so print from threads
    that outlive the prints (`write_clinic_reports`: the threads of its pool)."""

    def __init__(self, *, timeout_s: float = 600.0) -> None:
        self.timeout_s = timeout_s
        self._browser: _Browser | None = None

    def __enter__(self) -> Printer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None

    def print_pdf(self, html: str) -> bytes:
        binary = chromium_binary()
        deadline = time.monotonic() + self.timeout_s
        try:
            if self._browser is None:
                self._browser = _Browser(binary)
            data = self._browser.print_page(html, deadline)
        except OSError as exc:  # the scratch folder (disk full), or Chromium could not be started
            self.close()
            raise PdfPrintError(f"cannot print with {binary}: {exc.strerror or exc}") from exc
        except _Timeout:
            self.close()
            raise PdfPrintError(f"{binary} did not finish printing within {self.timeout_s:.0f} s") from None
        except _Gone:
            status, said = self._browser.end()
            self.close()
            detail = f": {said[-1].strip()[:300]}" if said else ""
            raise PdfPrintError(f"{binary} exited with status {status} and no PDF{detail}") from None
        except _Refused as exc:
            self.close()
            raise PdfPrintError(f"{binary} could not print the page: {exc}") from None
        except (ValueError, KeyError, TypeError) as exc:  # not JSON, not base64, or a field missing
            self.close()
            raise PdfPrintError(f"{binary} answered the DevTools protocol unexpectedly: {exc!r}") from None
        except BaseException:  # interrupted: leave no Chromium behind
            self.close()
            raise
        if not data.startswith(b"%PDF-"):
            raise PdfPrintError(f"{binary} printed something that is not a PDF ({len(data)} bytes)")
        return data


class _Timeout(Exception):
    """No answer from Chromium before the print's deadline."""


class _Gone(Exception):
    """Chromium closed its end of the pipe (it exited)."""


class _Refused(Exception):
    """Chromium answered a command with an error."""


# Chromium reads commands on fd 3 and answers on fd 4: this moves the pipes there and becomes Chromium
# (a POSIX shell cannot name an fd above 9, and a preexec_fn is unsafe in a threaded process)
_ON_FDS_3_AND_4 = (
    "import os, sys\n"
    "commands, answers = int(sys.argv[1]), int(sys.argv[2])\n"
    "os.dup2(commands, 3); os.dup2(answers, 4)\n"
    "[os.close(fd) for fd in (commands, answers) if fd not in (3, 4)]\n"
    "try:\n"
    "    os.execv(sys.argv[3], sys.argv[3:])\n"
    "except OSError as exc:\n"
    "    sys.stderr.write(f'cannot start {sys.argv[3]}: {exc.strerror}\\n')\n"
    "    os._exit(126)\n"
)


class _Browser:
    """One Chromium process and its DevTools pipe, in a scratch folder named after this process."""

    def __init__(self, binary: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
        self.page = self.folder / "summary.html"
        self.log = self.folder / "chromium.log"
        self.buffer = bytearray()
        self.scanned = 0  # bytes of `buffer` known to hold no message end
        self.events: list[dict] = []  # arrived while waiting for an answer
        self.last_id = 0
        self.process: subprocess.Popen | None = None
        commands, self.to_browser = os.pipe()
        self.from_browser, answers = os.pipe()
        try:
            command = [*_DIE_WITH_PARENT, sys.executable, "-I", "-S", "-c", _ON_FDS_3_AND_4, str(commands),
                       str(answers), binary, *FLAGS, f"--user-data-dir={self.folder / 'profile'}",
                       "--remote-debugging-pipe", "about:blank"]
            with open(self.log, "wb") as log:
                # its own process group, so that ending it ends Chromium's helper processes too
                self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                stderr=log, pass_fds=(commands, answers),
                                                start_new_session=True, cwd=self.folder)
        except BaseException:
            self.close()
            raise
        finally:
            os.close(commands)
            os.close(answers)

    def print_page(self, html: str, deadline: float) -> bytes:
        """Load the page in a new tab, print it with the page's own page size, close the tab."""
        self.page.write_text(html, encoding="utf-8")
        target = self._call("Target.createTarget", {"url": "about:blank"}, deadline)["targetId"]
        session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True}, deadline)["sessionId"]
        self._call("Page.enable", {}, deadline, session)
        navigated = self._call("Page.navigate", {"url": self.page.as_uri()}, deadline, session)
        if navigated.get("errorText"):
            raise _Refused(f"loading the page: {navigated['errorText']}")
        self._event("Page.loadEventFired", session, deadline)
        # as --print-to-pdf prints: the page's @page size and margins, no header or footer of Chromium's
        printed = self._call("Page.printToPDF", {"preferCSSPageSize": True}, deadline, session)
        self._call("Target.closeTarget", {"targetId": target}, deadline)
        return base64.b64decode(printed["data"])

    def _call(self, method: str, params: dict, deadline: float, session: str | None = None) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        data = memoryview(json.dumps(message).encode() + b"\0")
        try:
            while data:
                data = data[os.write(self.to_browser, data):]
        except BrokenPipeError:
            raise _Gone from None
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self.last_id:
                if "error" in answer:
                    raise _Refused(f"{method}: {answer['error'].get('message', answer['error'])}")
                return answer.get("result", {})
            if "method" in answer:
                self.events.append(answer)

    def _event(self, method: str, session: str, deadline: float) -> dict:
        """The first event `method` of `session`, among those already arrived or still to come
        (the others are dropped)."""
        arrived, self.events = self.events, []
        while True:
            for event in arrived:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            arrived = [self._receive(deadline)]

    def _receive(self, deadline: float) -> dict:
        while True:
            end = self.buffer.find(b"\0", self.scanned)
            if end >= 0:
                message = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                self.scanned = 0
                return json.loads(message)
            self.scanned = len(self.buffer)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.from_browser], [], [], remaining)[0]:
                raise _Timeout
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise _Gone
            self.buffer += chunk

    def end(self) -> tuple[int | None, list[str]]:
        """After the pipe closed: Chromium's exit status and what it said."""
        status = None
        if self.process is not None:
            try:
                status = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        said = self.log.read_text("utf-8", "replace") if self.log.is_file() else ""
        return status, [line for line in said.splitlines() if line.strip()]

    def close(self) -> None:
        """End Chromium and its helpers, close the pipe, remove the scratch folder."""
        if self.process is not None:
            if self.process.poll() is None:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.wait()
            self.process = None
        for fd in (self.to_browser, self.from_browser):
            if fd >= 0:
                os.close(fd)
        self.to_browser = self.from_browser = -1
        shutil.rmtree(self.folder, ignore_errors=True)


def remove_abandoned_scratch() -> list[Path]:
    """Delete the scratch folders of prints whose process is gone (a run killed mid-print leaves
    its page and Chromium profile behind: a few MB each). Each folder names its process."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if pid.isdigit() and folder.is_dir() and not folder.is_symlink() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    """Whether the process exists (another user's process counts: signalling it is refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
