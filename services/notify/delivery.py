"""Delivering one notification over the recipient's channels, in order of preference.

A permanent failure on a channel (an invalid address, a 4xx from the gateway) falls back to the
next channel; a transient one (the server away, a 5xx) is retried later, with exponential
backoff, from the channel that failed. Which channels are set up comes from the settings.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from spkt.settings import Settings

from . import channels, render
from .domain import Notification


@dataclass
class Outcome:
    delivered: bool
    channel: str | None = None
    permanent: bool = False
    reason: str | None = None
    tried: list[str] = field(default_factory=list)


class Deliverer:
    def __init__(self, settings: Settings, webhook_secrets: dict[str, str] | None = None) -> None:
        self.webhook_secrets = dict(webhook_secrets or {})
        self.smtp = (channels.SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_sender)
                     if settings.smtp_host else None)
        self.gateway = (channels.GatewayConfig(url=settings.sms_gateway_url, secret=settings.sms_gateway_secret)
                        if settings.sms_gateway_url else None)
        self._client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    def _http(self) -> httpx.AsyncClient:
        """One HTTP client for every gateway and webhook request of this event loop. A client per
        request built a TLS context each time (loading the CA bundle): over half of notify's CPU
        while reports poured in (benchmarks/pipeline.py), and no connection was ever reused."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client[0] is not loop:
            self._client = (loop, httpx.AsyncClient(timeout=channels.WEBHOOK_TIMEOUT_S))
        return self._client[1]

    def usable(self, n: Notification, channel: str) -> bool:
        r = n.recipient
        if channel == "email":
            return self.smtp is not None and bool(r.email)
        if channel in ("sms", "whatsapp"):
            return self.gateway is not None and bool(r.phone)
        return channel == "webhook" and bool(r.url)

    def endpoint(self, n: Notification, skip: set[str]) -> str:
        """Where the next attempt goes: the mail server, the gateway, or the webhook's URL."""
        for channel in n.channels:
            if channel not in skip and self.usable(n, channel):
                return {"email": "smtp", "sms": "gateway", "whatsapp": "gateway"}.get(channel, n.recipient.url or "")
        return "nowhere"

    async def deliver(self, n: Notification, skip: set[str]) -> Outcome:
        """Try the channels in order (`skip`: those that failed for good already)."""
        tried: list[str] = []
        last: channels.DeliveryError | None = None
        for channel in n.channels:
            if channel in skip or not self.usable(n, channel):
                continue
            tried.append(channel)
            message = render.render(n, channel)
            try:
                await self._send(n, channel, message)
                return Outcome(True, channel, tried=tried)
            except channels.DeliveryError as error:
                last = error
                if not error.permanent:
                    return Outcome(False, channel, False, error.reason, tried)
                skip.add(channel)
        if last is None:
            return Outcome(False, None, True, "tidak ada saluran yang dapat dipakai untuk penerima ini", tried)
        return Outcome(False, None, True, last.reason, tried)

    async def _send(self, n: Notification, channel: str, message: render.Message) -> None:
        r = n.recipient
        if channel == "email":
            await channels.send_email(self.smtp, notification_id=n.notification_id, to=r.email,
                                      subject=message.subject, text=message.text)
        elif channel in ("sms", "whatsapp"):
            await channels.send_gateway(self.gateway, notification_id=n.notification_id, to=r.phone,
                                        channel=channel, text=message.text, client=self._http())
        else:
            secret = r.secret or self.webhook_secrets.get(r.key, "")
            await channels.send_webhook(r.url, secret, notification_id=n.notification_id, body=message.text,
                                        client=self._http())


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """The wait before attempt `attempt + 1`: base, 2×base, 4×base … never more than cap."""
    return min(cap_s, base_s * 2 ** max(0, attempt - 1))


def masked(n: Notification, channel: str | None) -> str:
    """Who, without publishing a contact on the timeline: the last digits, the mail domain."""
    r = n.recipient
    if channel in ("sms", "whatsapp") and r.phone:
        return f"…{r.phone[-4:]}"
    if channel == "email" and r.email:
        return f"…@{r.email.split('@')[-1]}"
    if channel == "webhook":
        return r.key
    return f"{r.kind}:{r.key[:12]}"
