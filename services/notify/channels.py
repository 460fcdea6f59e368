"""Delivering one notification over a real channel: e-mail (SMTP), an SMS/WhatsApp gateway, a webhook.

Pure of Kafka, faust and SQL. Every failure comes out as a DeliveryError saying whether retrying can
help (transient) or not (permanent); the caller owns retries and the outbox. Every request carries
the notification id (Message-ID / X-SPKT-Notification-Id / Idempotency-Key) so a receiver can drop a
repeat when a retry follows a delivery whose acknowledgement was lost.
"""
from __future__ import annotations

import asyncio
import email.policy
import email.utils
import functools
import hashlib
import hmac
import json
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

import httpx

CHANNELS = ("sms", "whatsapp")
WEBHOOK_TIMEOUT_S = 10.0
# 7-bit transfer encodings only (quoted-printable/base64 for non-ASCII text): safe on any SMTP
# server, with or without 8BITMIME. Headers are RFC 2047-encoded; lines end in CRLF.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")


class DeliveryError(Exception):
    """One delivery failed. `permanent`: retrying cannot help; otherwise try again later."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent

    def __repr__(self) -> str:
        return f"DeliveryError({self.reason!r}, permanent={self.permanent})"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    timeout_s: float = 10.0
    starttls: bool = False
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class GatewayConfig:
    url: str
    secret: str
    timeout_s: float = 10.0


# --- signatures ------------------------------------------------------------------------------------
def sign(secret: str, body: bytes) -> str:
    """"sha256=" + hex HMAC-SHA256 of exactly these body bytes."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether `signature` is sign(secret, body); constant-time."""
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"), signature.strip().encode("utf-8"))


# --- validation ------------------------------------------------------------------------------------
def _check_id(notification_id: str) -> None:
    if not notification_id or any(c.isspace() or c in "<>@" or not c.isprintable() for c in notification_id):
        raise DeliveryError(f"malformed notification id {notification_id!r}", permanent=True)


def _check_address(to: str) -> None:
    local, at, domain = (to or "").rpartition("@")
    if not at or not local or not domain or any(c.isspace() or not c.isprintable() for c in to):
        raise DeliveryError(f"malformed e-mail address {to!r}", permanent=True)


# --- e-mail ----------------------------------------------------------------------------------------
def _message(config: SmtpConfig, notification_id: str, to: str, subject: str, text: str) -> EmailMessage:
    try:
        message = EmailMessage(policy=_POLICY)
        message["From"] = config.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = email.utils.formatdate(usegmt=True)
        message["Message-ID"] = f"<{notification_id}@spkt>"
        message["X-SPKT-Notification-Id"] = notification_id
        message.set_content(text, subtype="plain", charset="utf-8")
    except (ValueError, TypeError) as error:  # a header with a line break, an unparsable address
        raise DeliveryError(f"malformed message: {error}", permanent=True) from error
    return message


def _smtp_code_error(what: str, code: int, detail: object) -> DeliveryError:
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return DeliveryError(f"{what}: {code} {detail}", permanent=500 <= code < 600)


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """Built once: building one loads the CA bundle, tens of milliseconds of CPU."""
    return ssl.create_default_context()


def _send_email_blocking(config: SmtpConfig, message: EmailMessage, to: str) -> None:
    try:
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
    except smtplib.SMTPConnectError as error:  # the greeting was not 220: the server, not this message
        raise DeliveryError(f"SMTP server refused the session: {error.smtp_code} {error.smtp_error!r}",
                            permanent=False) from error
    except (OSError, smtplib.SMTPException) as error:  # refused, reset, timed out, unresolvable
        raise DeliveryError(f"cannot reach SMTP server {config.host}:{config.port}: {error!r}",
                            permanent=False) from error
    try:
        if config.starttls:
            smtp.starttls(context=_tls_context())
        if config.username:
            smtp.login(config.username, config.password or "")
        smtp.send_message(message, from_addr=config.sender, to_addrs=[to])
    except smtplib.SMTPRecipientsRefused as error:
        _quit(smtp)
        code, detail = next(iter(error.recipients.values()), (550, b"refused"))
        raise _smtp_code_error(f"recipient {to} refused", code, detail) from error
    except smtplib.SMTPServerDisconnected as error:
        smtp.close()
        raise DeliveryError(f"SMTP server disconnected: {error}", permanent=False) from error
    except smtplib.SMTPResponseException as error:  # sender refused, DATA refused, auth, HELO
        _quit(smtp)
        raise _smtp_code_error(type(error).__name__, error.smtp_code, error.smtp_error) from error
    except smtplib.SMTPNotSupportedError as error:  # e.g. an international address, no SMTPUTF8
        _quit(smtp)
        raise DeliveryError(f"SMTP server cannot take this message: {error}", permanent=True) from error
    except (OSError, smtplib.SMTPException) as error:  # reset, timeout, TLS failure: the socket is spent
        smtp.close()
        raise DeliveryError(f"SMTP failure: {error!r}", permanent=False) from error
    except BaseException:
        smtp.close()
        raise
    # The message is accepted once DATA got its 250: a failing QUIT must not turn that into an error.
    _quit(smtp)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        smtp.close()


async def send_email(config: SmtpConfig, *, notification_id: str, to: str, subject: str, text: str) -> None:
    """One UTF-8 text/plain e-mail; returns once the server accepted it."""
    _check_id(notification_id)
    _check_address(to)
    message = _message(config, notification_id, to, subject, text)
    await asyncio.to_thread(_send_email_blocking, config, message, to)


# --- HTTP: the SMS/WhatsApp gateway and webhooks -----------------------------------------------------
def _status_error(response: httpx.Response) -> DeliveryError:
    status = response.status_code
    detail = response.text[:200].strip()
    retry_after = response.headers.get("retry-after")
    reason = f"HTTP {status} from {response.request.url}" + (f": {detail}" if detail else "")
    if retry_after:
        reason += f" (Retry-After: {retry_after})"
    permanent = 400 <= status < 500 and status not in (408, 429)
    return DeliveryError(reason, permanent=permanent)


async def _post(url: str, secret: str, notification_id: str, body: bytes, timeout_s: float,
                client: httpx.AsyncClient | None) -> None:
    headers = {
        "Content-Type": "application/json",
        "X-SPKT-Notification-Id": notification_id,
        "X-SPKT-Signature": sign(secret, body),
        "Idempotency-Key": notification_id,
    }
    own = client is None
    if own:
        client = httpx.AsyncClient(timeout=timeout_s)
    try:
        response = await client.post(url, content=body, headers=headers, timeout=timeout_s)
    except httpx.InvalidURL as error:
        raise DeliveryError(f"malformed URL {url!r}: {error}", permanent=True) from error
    except httpx.HTTPError as error:  # refused, reset, timeout, protocol error
        raise DeliveryError(f"cannot deliver to {url}: {error!r}", permanent=False) from error
    finally:
        if own:
            await client.aclose()
    if not 200 <= response.status_code < 300:
        raise _status_error(response)


async def send_gateway(config: GatewayConfig, *, notification_id: str, to: str, channel: str, text: str,
                       client: httpx.AsyncClient | None = None) -> None:
    """One SMS or WhatsApp message through the gateway; returns on a 2xx answer."""
    _check_id(notification_id)
    if channel not in CHANNELS:
        raise DeliveryError(f"unknown gateway channel {channel!r}", permanent=True)
    if not to or not to.strip():
        raise DeliveryError("no recipient", permanent=True)
    body = json.dumps({"id": notification_id, "to": to, "channel": channel, "text": text},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    await _post(config.url, config.secret, notification_id, body, config.timeout_s, client)


async def send_webhook(url: str, secret: str, *, notification_id: str, body: str,
                       client: httpx.AsyncClient | None = None) -> None:
    """POST a JSON document exactly as given (UTF-8), signed; returns on a 2xx answer."""
    _check_id(notification_id)
    try:
        json.loads(body)
    except (TypeError, ValueError) as error:
        raise DeliveryError(f"webhook body is not JSON: {error}", permanent=True) from error
    await _post(url, secret, notification_id, body.encode("utf-8"), WEBHOOK_TIMEOUT_S, client)
