"""The flow's delivery step: a mail server that is down leaves the files in the outbox and is
reported, never fatal to the run."""

from __future__ import annotations

import socket

from flows.nightly import deliver_reports
from pipeline.config import Settings


def test_unreachable_mail_server_is_reported_and_files_stay(tmp_path):
    settings = Settings.for_folder(tmp_path)
    folder = settings.data.outbox / "north" / "2024-03-20"
    folder.mkdir(parents=True)
    files = []
    for name in ("summary.html", "summary.pdf", "summary.csv", "summary.json"):
        (folder / name).write_text(name)
        files.append(folder / name)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.data.config.write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nstarttls = false\nsender = "stepwise@example.org"\n'
        'attempts = 2\nbackoff_s = 0.01\ntimeout_s = 2\n[smtp.recipients]\nnorth = ["physio@example.org"]\n'
    )
    failures = deliver_reports.fn(settings, files)
    assert len(failures) == 1 and "north" in failures[0] and str(folder) in failures[0]
    assert [f.read_text() for f in files] == [f.name for f in files]


def test_no_smtp_section_means_no_mail(tmp_path):
    settings = Settings.for_folder(tmp_path)
    assert deliver_reports.fn(settings, []) == []
