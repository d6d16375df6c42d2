"""E-mail a clinic's summary files to that clinic's recipients.

Configured by an `[smtp]` section of the TOML configuration:

    [smtp]
    host = "smtp.example.org"
    port = 587
    starttls = true                        # upgrade the connection before sending (default true)
    sender = "Stepwise <stepwise@example.org>"
    username = "stepwise"                  # optional; the password is read from the environment
    password_env = "STEPWISE_SMTP_PASSWORD"
    attempts = 3                           # tries per clinic before giving up
    backoff_s = 2.0                        # wait before the 2nd try, doubled before each next one

    [smtp.recipients]                      # one list per clinic_id
    north = ["physio-north@example.org"]

A failed attempt is logged and retried with backoff; temporary failures (connection refused, time
out, 4xx replies) are retried, permanent ones (5xx replies, a refused login) are not. When every
try fails, `DeliveryFailed` is raised. The files are only read: they stay in the outbox whatever
happens, and a successful delivery leaves a `delivered.json` receipt beside them.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import smtplib
import ssl
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from pipeline.errors import StepwiseError
from pipeline.reports.files import write_atomic

log = logging.getLogger(__name__)

ATTACHMENTS = ("summary.pdf", "summary.html", "summary.csv", "summary.json")
RECEIPT = "delivered.json"


class DeliveryError(StepwiseError):
    """A clinic's summary could not be e-mailed. Its files are still in the outbox."""


class SmtpConfigError(DeliveryError):
    hint = "Correct the [smtp] section of the configuration"

    def __init__(self, problem: str, *, source: str = "[smtp]") -> None:
        super().__init__(f"{source}: {problem}")


class DeliveryFailed(DeliveryError):
    def __init__(self, clinic_id: str, folder: Path, attempts: int, last_error: BaseException) -> None:
        super().__init__(
            f"summary of clinic {clinic_id!r} not sent after {attempts} attempt(s): "
            f"{type(last_error).__name__}: {last_error}",
            hint=f"The files are still in {folder}; check the mail server and the [smtp] settings, then send again",
        )
        self.clinic_id = clinic_id
        self.folder = folder
        self.attempts = attempts
        self.last_error = last_error


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    sender: str
    recipients: Mapping[str, tuple[str, ...]]  # clinic_id -> addresses
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password_env: str | None = None  # name of the environment variable holding the password
    ca_file: Path | None = None  # trust this CA for STARTTLS (a private mail server); else the system's
    timeout_s: float = 30.0
    attempts: int = 3
    backoff_s: float = 2.0

    @classmethod
    def from_mapping(cls, section: Mapping, *, source: str = "[smtp]") -> SmtpSettings:
        """Validate an [smtp] table; every problem names the key."""
        known = {"host", "port", "starttls", "sender", "recipients", "username", "password_env",
                 "ca_file", "timeout_s", "attempts", "backoff_s"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise SmtpConfigError(f"unknown key(s) {', '.join(unknown)}", source=source)
        for key in ("host", "sender"):
            if not isinstance(section.get(key), str) or not section[key].strip():
                raise SmtpConfigError(f"{key} must be a non-empty string", source=source)
        recipients = section.get("recipients")
        if not isinstance(recipients, Mapping) or not recipients:
            raise SmtpConfigError("recipients must be a table of clinic_id = [addresses]", source=source)
        parsed: dict[str, tuple[str, ...]] = {}
        for clinic_id, addresses in recipients.items():
            if isinstance(addresses, str):
                addresses = [addresses]
            if not isinstance(addresses, list) or not addresses or not all(
                isinstance(a, str) and "@" in a for a in addresses
            ):
                raise SmtpConfigError(f"recipients.{clinic_id} must be a list of e-mail addresses", source=source)
            parsed[str(clinic_id)] = tuple(a.strip() for a in addresses)
        port = section.get("port", 587)
        attempts = section.get("attempts", 3)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise SmtpConfigError(f"port must be 1-65535, got {port!r}", source=source)
        if not isinstance(attempts, int) or attempts < 1:
            raise SmtpConfigError(f"attempts must be a whole number >= 1, got {attempts!r}", source=source)
        starttls = section.get("starttls", True)
        if not isinstance(starttls, bool):
            raise SmtpConfigError("starttls must be true or false", source=source)
        numbers = {}
        for key, default in (("timeout_s", 30.0), ("backoff_s", 2.0)):
            value = section.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SmtpConfigError(f"{key} must be a number >= 0, got {value!r}", source=source)
            numbers[key] = float(value)
        if section.get("username") and not section.get("password_env"):
            raise SmtpConfigError(
                "username needs password_env, the environment variable with the password", source=source
            )
        return cls(
            host=section["host"].strip(),
            sender=section["sender"].strip(),
            recipients=parsed,
            port=port,
            starttls=starttls,
            username=section.get("username") or None,
            password_env=section.get("password_env") or None,
            ca_file=Path(section["ca_file"]) if section.get("ca_file") else None,
            attempts=attempts,
            **numbers,
        )


def load_smtp_settings(config_path: Path) -> SmtpSettings | None:
    """The [smtp] section of a TOML configuration file; None when it has none (no e-mail)."""
    try:
        document = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SmtpConfigError(f"cannot read the configuration ({exc})", source=str(config_path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SmtpConfigError(f"not valid TOML ({exc})", source=str(config_path)) from exc
    section = document.get("smtp")
    if section is None:
        return None
    return SmtpSettings.from_mapping(section, source=f"{config_path} [smtp]")


@dataclass(frozen=True)
class DeliveryReceipt:
    clinic_id: str
    report_folder: Path
    recipients: tuple[str, ...]
    message_id: str
    attempts: int
    sent_at_utc: datetime
    attachments: tuple[str, ...] = field(default=())


def build_message(settings: SmtpSettings, clinic_id: str, folder: Path) -> EmailMessage:
    """The e-mail: a short plain-text cover (who needs attention) and the summary files attached."""
    recipients = settings.recipients.get(clinic_id)
    if not recipients:
        raise SmtpConfigError(f"no recipients for clinic {clinic_id!r} (add recipients.{clinic_id})")
    missing = [name for name in ("summary.pdf", "summary.html") if not (folder / name).is_file()]
    if missing:
        raise DeliveryError(f"{folder}: {', '.join(missing)} missing", hint="Render the clinic's summary first")
    summary = _read_summary(folder)
    report_date = summary.get("report_date") or folder.name
    message = EmailMessage()
    message["Subject"] = f"Walking programme summary, {clinic_id}, {report_date}"
    message["From"] = settings.sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2].strip("> ") or None)
    message.set_content(_cover_text(clinic_id, report_date, summary))
    for name in ATTACHMENTS:
        path = folder / name
        if path.is_file():
            kind, _ = mimetypes.guess_type(name)
            maintype, subtype = (kind or "application/octet-stream").split("/", 1)
            message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=name)
    return message


def _read_summary(folder: Path) -> dict:
    try:
        return json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _cover_text(clinic_id: str, report_date: str, summary: dict) -> str:
    lines = [f"Walking programme summary for clinic {clinic_id}, report date {report_date}.", ""]
    attention = summary.get("attention") or []
    patients = summary.get("patients") or []
    if patients:
        lines.append(f"{len(patients)} patients; {len(attention)} need attention first:")
    for item in attention:
        who = item.get("display_name") or item.get("participant_id")
        reasons = "; ".join(reason.get("text", "") for reason in item.get("reasons", []))
        lines.append(f"  {item.get('rank')}. {who} ({item.get('participant_id')}): {reasons}")
    lines += ["", "The full summary is attached (summary.pdf to print, summary.html to open in a browser;",
              "summary.csv and summary.json carry the same numbers)."]
    return "\n".join(lines) + "\n"


def _transient(error: BaseException) -> bool:
    """Worth another try: network trouble and 4xx replies; not 5xx replies or a refused login."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return any(400 <= code < 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return False
    return isinstance(error, (OSError, smtplib.SMTPException))


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)


def _send_once(settings: SmtpSettings, message: EmailMessage, recipients: tuple[str, ...]) -> None:
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
        smtp.ehlo()
        if settings.starttls:
            smtp.starttls(context=_tls_context(settings))
            smtp.ehlo()
        if settings.username:
            password = os.environ.get(settings.password_env or "")
            if password is None:
                raise SmtpConfigError(f"environment variable {settings.password_env} (the SMTP password) is not set")
            smtp.login(settings.username, password)
        smtp.send_message(message, from_addr=settings.sender, to_addrs=list(recipients))


def deliver_clinic_summary(
    settings: SmtpSettings,
    clinic_id: str,
    folder: Path,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReceipt:
    """Send outbox/<clinic_id>/<date>/ to the clinic's recipients, retrying with backoff.

    Raises `DeliveryFailed` when every attempt failed (or one failed permanently); the files are
    never moved or deleted. On success writes `delivered.json` beside them and returns the receipt.
    """
    message = build_message(settings, clinic_id, folder)
    recipients = settings.recipients[clinic_id]
    for attempt in range(1, settings.attempts + 1):
        try:
            _send_once(settings, message, recipients)
        except SmtpConfigError:
            raise
        except (OSError, smtplib.SMTPException) as error:
            last_try = attempt == settings.attempts or not _transient(error)
            if last_try:
                log.error("clinic %s: delivery attempt %d/%d failed (%s: %s); giving up, files kept in %s",
                          clinic_id, attempt, settings.attempts, type(error).__name__, error, folder)
                raise DeliveryFailed(clinic_id, folder, attempt, error) from error
            wait = settings.backoff_s * 2 ** (attempt - 1)
            log.warning("clinic %s: delivery attempt %d/%d failed (%s: %s); retrying in %.1f s",
                        clinic_id, attempt, settings.attempts, type(error).__name__, error, wait)
            sleep(wait)
            continue
        receipt = DeliveryReceipt(
            clinic_id=clinic_id,
            report_folder=folder,
            recipients=recipients,
            message_id=str(message["Message-ID"]),
            attempts=attempt,
            sent_at_utc=datetime.now(timezone.utc),
            attachments=tuple(part.get_filename() for part in message.iter_attachments()),
        )
        _write_receipt(receipt)
        log.info("clinic %s: summary sent to %d recipient(s) after %d attempt(s)", clinic_id, len(recipients), attempt)
        return receipt
    raise AssertionError("unreachable: attempts >= 1")  # pragma: no cover


def _write_receipt(receipt: DeliveryReceipt) -> None:
    record = {
        "clinic_id": receipt.clinic_id,
        "recipients": list(receipt.recipients),
        "message_id": receipt.message_id,
        "attempts": receipt.attempts,
        "sent_at_utc": receipt.sent_at_utc.isoformat(),
        "attachments": list(receipt.attachments),
    }
    write_atomic(receipt.report_folder / RECEIPT, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
