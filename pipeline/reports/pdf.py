"""summary.pdf: the clinic's page printed on A4 by headless Chromium (`--print-to-pdf`).

Chromium lays the page out with the same engine a clinician's browser uses, honours the page's own
`@page` rules (A4, margins, the footer's "page N of M") and prints a clinic of 200 patients about
8 times faster than WeasyPrint 70 did (`benchmarks/report_render.py` measures both in one run).

Each print is one Chromium process with a fresh profile in a private temporary folder, started
with no network (the page's content security policy forbids every fetch anyway), and given
`timeout_s` to finish. Where util-linux's `setpriv` is present (Debian: always), Chromium is started
with a parent-death signal, so that a run killed mid-print does not leave it printing; the scratch
folder such a run leaves is named after its process, and the next report run removes it
(`remove_abandoned_scratch`). The binary is `STEPWISE_CHROMIUM` when set, else the first of
`chromium`, `chromium-browser`, `google-chrome` on PATH (Debian: `apt-get install chromium`, which
`make system-deps` does).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
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
    "--no-pdf-header-footer",  # the page prints its own footer (@page margin boxes)
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
    """The page printed on A4 (the page's @page rules) by headless Chromium; the PDF's bytes."""
    binary = chromium_binary()
    try:
        process, stderr, data = _print(binary, html, timeout_s)
    except OSError as exc:  # the scratch folder (disk full), or Chromium could not be started
        raise PdfPrintError(f"cannot print with {binary}: {exc.strerror or exc}") from exc
    if process.returncode != 0 or not data.startswith(b"%PDF-"):
        said = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        detail = f": {said[-1].strip()[:300]}" if said else ""
        raise PdfPrintError(f"{binary} exited with status {process.returncode} and no PDF{detail}")
    return data


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


def _print(binary: str, html: str, timeout_s: float) -> tuple[subprocess.Popen, bytes, bytes]:
    """One Chromium print in a private scratch folder: the process, what it said, the PDF's bytes."""
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as scratch:
        folder = Path(scratch)
        page, pdf = folder / "summary.html", folder / "summary.pdf"
        page.write_text(html, encoding="utf-8")
        command = [*_DIE_WITH_PARENT, binary, *FLAGS, f"--user-data-dir={folder / 'profile'}",
                   f"--print-to-pdf={pdf}", page.as_uri()]
        # its own process group, so that a timeout ends Chromium's helper processes too
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, start_new_session=True, cwd=folder)
        try:
            _, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise PdfPrintError(f"{binary} did not finish printing within {timeout_s:.0f} s") from None
        finally:
            if process.poll() is None:  # interrupted while waiting: leave no Chromium behind
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process, stderr, pdf.read_bytes() if pdf.is_file() else b""
