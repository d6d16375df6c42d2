"""E-mail delivery of a clinic's summary to a local SMTP server (aiosmtpd on 127.0.0.1, an
ephemeral port), with and without STARTTLS; retries when the server is down; the [smtp] section."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import ipaddress
import json
import logging
import socket
import ssl
from datetime import date
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from pipeline.reports.delivery import (
    RECEIPT,
    DeliveryFailed,
    SmtpConfigError,
    SmtpSettings,
    deliver_clinic_summary,
    load_smtp_settings,
)
from pipeline.reports.render import write_clinic_reports
from pipeline.reports.synthetic import sample_cohort, write_synthetic_warehouse

REPORT_DATE = date(2024, 3, 20)
CLINIC = "south"
ADDRESSES = ("physio-south@clinic.test", "lead-south@clinic.test")


@pytest.fixture(scope="module")
def outbox_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("delivery")
    cohort = sample_cohort(REPORT_DATE)
    write_synthetic_warehouse(root / "warehouse.duckdb", cohort, REPORT_DATE)
    write_clinic_reports(
        root / "warehouse.duckdb", [p.participant() for p in cohort], root / "outbox", REPORT_DATE, clinics={CLINIC}
    )
    return root / "outbox" / CLINIC / REPORT_DATE.isoformat()


@pytest.fixture
def folder(outbox_folder: Path) -> Path:
    (outbox_folder / RECEIPT).unlink(missing_ok=True)
    return outbox_folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """aiosmtpd handler that keeps what it receives; can refuse recipients with a reply."""

    def __init__(self, refuse_with: str | None = None) -> None:
        self.envelopes = []
        self.refuse_with = refuse_with

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    started = []

    def start(handler: Inbox, **options) -> int:
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cryptography comes with the stack)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def settings(port: int, **overrides) -> SmtpSettings:
    values = dict(
        host="127.0.0.1", port=port, starttls=False, sender="Stepwise <stepwise@clinic.test>",
        recipients={CLINIC: ADDRESSES, "north": ("physio-north@clinic.test",)},
        timeout_s=10, attempts=3, backoff_s=0.05,
    )
    values.update(overrides)
    return SmtpSettings(**values)


def checksums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.name != RECEIPT}


def check_message(raw: bytes, folder: Path) -> None:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == f"Walking programme summary, {CLINIC}, {REPORT_DATE.isoformat()}"
    assert message["To"] == ", ".join(ADDRESSES)
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Ann Leeds (A-010)" in body and "more than 1.5 times the plan" in body  # the attention list
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert sorted(attachments) == ["summary.csv", "summary.html", "summary.json", "summary.pdf"]
    assert attachments["summary.pdf"].get_content_type() == "application/pdf"
    for name, part in attachments.items():
        assert part.get_payload(decode=True) == (folder / name).read_bytes(), name
    assert "physio-north" not in raw.decode("ascii", "replace")  # another clinic's recipients


def test_summary_is_sent_with_its_files_attached(folder, smtp_server):
    inbox = Inbox()
    port = smtp_server(inbox)
    before = checksums(folder)
    receipt = deliver_clinic_summary(settings(port), CLINIC, folder)
    assert receipt.attempts == 1 and receipt.recipients == ADDRESSES
    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "stepwise@clinic.test"
    assert sorted(envelope.rcpt_tos) == sorted(ADDRESSES)
    check_message(envelope.original_content, folder)
    assert checksums(folder) == before  # the files stay in the outbox
    written = json.loads((folder / RECEIPT).read_text())
    assert written["recipients"] == list(ADDRESSES) and written["message_id"] == receipt.message_id


def test_summary_is_sent_over_starttls(folder, smtp_server, tls_files):
    cert_file, key_file = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    inbox = Inbox()
    port = smtp_server(inbox, tls_context=server_context, require_starttls=True)
    with pytest.raises(DeliveryFailed):  # the server refuses mail before STARTTLS
        deliver_clinic_summary(settings(port, starttls=False, attempts=1), CLINIC, folder)
    receipt = deliver_clinic_summary(settings(port, starttls=True, ca_file=cert_file), CLINIC, folder)
    assert receipt.attempts == 1
    (envelope,) = inbox.envelopes
    check_message(envelope.original_content, folder)


def test_server_down_is_retried_with_backoff_then_fails_and_keeps_the_files(folder, caplog):
    port = free_port()  # nothing listens there
    before = checksums(folder)
    waits: list[float] = []
    caplog.set_level(logging.INFO, logger="pipeline.reports.delivery")
    with pytest.raises(DeliveryFailed) as caught:
        deliver_clinic_summary(settings(port, attempts=3, backoff_s=0.05), CLINIC, folder, sleep=waits.append)
    assert caught.value.attempts == 3 and isinstance(caught.value.last_error, ConnectionRefusedError)
    assert str(folder) in caught.value.one_line()
    assert waits == [0.05, 0.1]  # doubled after each failure, none after the last
    messages = [record.getMessage() for record in caplog.records]
    assert [m.split(" failed")[0] for m in messages] == [
        f"clinic {CLINIC}: delivery attempt 1/3",
        f"clinic {CLINIC}: delivery attempt 2/3",
        f"clinic {CLINIC}: delivery attempt 3/3",
    ]
    assert "retrying in" in messages[0] and "giving up, files kept in" in messages[-1]
    assert checksums(folder) == before and not (folder / RECEIPT).exists()


def test_a_server_that_comes_back_gets_the_summary_on_a_later_attempt(folder):
    inbox = Inbox()
    port = free_port()
    controllers = []

    def start_the_server_instead_of_waiting(seconds: float) -> None:
        if not controllers:
            controller = Controller(inbox, hostname="127.0.0.1", port=port)
            controller.start()
            controllers.append(controller)

    try:
        receipt = deliver_clinic_summary(settings(port), CLINIC, folder, sleep=start_the_server_instead_of_waiting)
    finally:
        for controller in controllers:
            controller.stop()
    assert receipt.attempts == 2 and len(inbox.envelopes) == 1
    assert (folder / RECEIPT).exists()


def test_a_permanent_refusal_is_not_retried(folder, smtp_server):
    port = smtp_server(Inbox(refuse_with="550 5.1.1 mailbox unavailable"))
    waits: list[float] = []
    with pytest.raises(DeliveryFailed) as caught:
        deliver_clinic_summary(settings(port), CLINIC, folder, sleep=waits.append)
    assert caught.value.attempts == 1 and waits == []
    assert (folder / "summary.pdf").exists() and not (folder / RECEIPT).exists()


def test_a_clinic_without_recipients_is_a_configuration_error(folder):
    with pytest.raises(SmtpConfigError, match="no recipients for clinic 'south'"):
        deliver_clinic_summary(settings(free_port(), recipients={"north": ("a@b.test",)}), CLINIC, folder)


# ----------------------------------------------------------------------------- configuration


def test_smtp_section_is_read_from_toml(tmp_path):
    config = tmp_path / "stepwise.toml"
    config.write_text(
        """
[smtp]
host = "smtp.clinic.test"
port = 2525
starttls = true
sender = "stepwise@clinic.test"
username = "stepwise"
password_env = "STEPWISE_SMTP_PASSWORD"
attempts = 5
backoff_s = 1

[smtp.recipients]
north = ["a@clinic.test", "b@clinic.test"]
south = "c@clinic.test"
"""
    )
    loaded = load_smtp_settings(config)
    assert loaded == SmtpSettings(
        host="smtp.clinic.test", port=2525, starttls=True, sender="stepwise@clinic.test",
        recipients={"north": ("a@clinic.test", "b@clinic.test"), "south": ("c@clinic.test",)},
        username="stepwise", password_env="STEPWISE_SMTP_PASSWORD", attempts=5, backoff_s=1.0,
    )


def test_no_smtp_section_means_no_email(tmp_path):
    config = tmp_path / "stepwise.toml"
    config.write_text('[other]\nx = 1\n')
    assert load_smtp_settings(config) is None


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"host": "h", "sender": "s@x", "recipients": {"c": ["a@x"]}, "prot": 25}, "unknown key"),
        ({"sender": "s@x", "recipients": {"c": ["a@x"]}}, "host must be"),
        ({"host": "h", "sender": "s@x", "recipients": {}}, "recipients must be"),
        ({"host": "h", "sender": "s@x", "recipients": {"c": ["not-an-address"]}}, "recipients.c"),
        ({"host": "h", "sender": "s@x", "recipients": {"c": ["a@x"]}, "port": 70000}, "port must be"),
        ({"host": "h", "sender": "s@x", "recipients": {"c": ["a@x"]}, "starttls": "yes"}, "starttls must be"),
        ({"host": "h", "sender": "s@x", "recipients": {"c": ["a@x"]}, "username": "u"}, "password_env"),
    ],
)
def test_bad_smtp_sections_name_the_key(section, problem):
    with pytest.raises(SmtpConfigError, match=problem):
        SmtpSettings.from_mapping(section)
