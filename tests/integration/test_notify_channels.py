"""Delivering notifications over real channels: SMTP to aiosmtpd, HTTP to a real server, on loopback."""
from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest

from services.notify.channels import (DeliveryError, GatewayConfig, SmtpConfig, send_email, send_gateway,
                                      send_webhook, sign, verify)
from tests.receivers import HttpReceiver, MailReceiver
from tests.support import free_port

pytestmark = pytest.mark.integration

SECRET = "rahasia-gateway-uji"
SENDER = "SPKT Polda Metro Jaya <spkt@polri.example>"
SUBJECT = "Tanda terima laporan — SPKT-ABCD-EFGH"
TEXT = ("Laporan Anda telah kami terima. Kode pelacakan: SPKT-ABCD-EFGH. "
        "Pantau perkembangannya dengan kode ini. Petugas: Bripka Andi Wijaya – Polsek Kebayoran Baru.\n")


def smtp(mail: MailReceiver, **overrides) -> SmtpConfig:
    return SmtpConfig(**{"host": mail.host, "port": mail.port, "sender": SENDER, "timeout_s": 5.0, **overrides})


def email_to(config: SmtpConfig, notification_id: str, to: str = "pelapor@warga.example") -> None:
    asyncio.run(send_email(config, notification_id=notification_id, to=to, subject=SUBJECT, text=TEXT))


def deliver_gateway(config: GatewayConfig, notification_id: str, to: str = "+6281234567890",
                    channel: str = "sms", text: str = TEXT) -> None:
    asyncio.run(send_gateway(config, notification_id=notification_id, to=to, channel=channel, text=text))


def failure(call) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        call()
    return caught.value


def nothing_listens() -> int:
    port = free_port()
    with socket.socket() as probe:  # the port is really closed
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


# --- signatures --------------------------------------------------------------------------------------
def test_sign_and_verify():
    body = '{"id":"n-1","text":"Laporan Anda telah kami terima"}'.encode()
    signature = sign(SECRET, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(SECRET, body, signature)
    assert not verify("lain", body, signature)
    assert not verify(SECRET, body + b" ", signature)
    assert not verify(SECRET, body, None) and not verify(SECRET, body, "") and not verify(SECRET, body, "sha256=ü")


# --- e-mail ------------------------------------------------------------------------------------------
def test_email_arrives_with_ids_and_utf8_text():
    with MailReceiver() as mail:
        email_to(smtp(mail), "0c5e9a52-1f57-5d0e-8c1b-000000000001")
        assert len(mail.messages) == 1
        message = mail.messages[0]
        assert message["Subject"] == SUBJECT
        assert message["From"] == SENDER
        assert message["To"] == "pelapor@warga.example"
        assert message["Message-ID"] == "<0c5e9a52-1f57-5d0e-8c1b-000000000001@spkt>"
        assert message["X-SPKT-Notification-Id"] == "0c5e9a52-1f57-5d0e-8c1b-000000000001"
        assert message.get_content_type() == "text/plain"
        assert message.get_content_charset() == "utf-8"
        assert message.get_content().replace("\r\n", "\n") == TEXT
        assert "Laporan Anda telah kami terima" in message.get_content()
        assert mail.envelopes[0]["rcpt_tos"] == ["pelapor@warga.example"]
        assert mail.count_by_id() == {"0c5e9a52-1f57-5d0e-8c1b-000000000001": 1}


def test_refused_address_is_permanent_and_others_still_arrive():
    with MailReceiver(reject=["hilang@warga.example"]) as mail:
        error = failure(lambda: email_to(smtp(mail), "n-refused", to="hilang@warga.example"))
        assert error.permanent and "550" in error.reason
        email_to(smtp(mail), "n-ok", to="ada@warga.example")
        assert mail.count_by_id() == {"n-ok": 1}


def test_malformed_address_is_permanent_without_connecting():
    config = SmtpConfig(host="127.0.0.1", port=nothing_listens(), sender=SENDER, timeout_s=2.0)
    for address in ("tanpa-at.example", "", "a@", "@b", "a b@c.example", "a@b.example\r\nBcc: x@y.example"):
        assert failure(lambda: email_to(config, "n-bad", to=address)).permanent, address
    # the same config with a good address does try to connect, and that failure is transient
    assert not failure(lambda: email_to(config, "n-good")).permanent


def test_server_down_is_transient_and_the_same_send_succeeds_after_up():
    with MailReceiver() as mail:
        port = mail.port
        config = smtp(mail)
        mail.down()
        error = failure(lambda: email_to(config, "n-retry"))
        assert not error.permanent
        mail.up()
        assert mail.port == port
        email_to(config, "n-retry")
        assert mail.count_by_id() == {"n-retry": 1}


def test_server_that_never_greets_times_out_transiently():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # connections complete in the backlog; nobody ever says 220
        config = SmtpConfig(host="127.0.0.1", port=silent.getsockname()[1], sender=SENDER, timeout_s=0.5)
        started = time.monotonic()
        assert not failure(lambda: email_to(config, "n-silent")).permanent
        assert time.monotonic() - started < 5


def test_mail_receiver_counts_repeats():
    with MailReceiver() as mail:
        email_to(smtp(mail), "n-twice")
        email_to(smtp(mail), "n-twice")
        email_to(smtp(mail), "n-once")
        assert mail.count_by_id() == {"n-twice": 2, "n-once": 1}


def test_mail_receiver_restarts_and_frees_its_port():
    mail = MailReceiver()
    for _ in range(5):
        mail.start()
        email_to(smtp(mail), "n-restart")
        mail.stop()
    with socket.socket() as probe:
        assert probe.connect_ex((mail.host, mail.port)) != 0
        probe.close()
    with socket.socket() as rebind:
        rebind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rebind.bind((mail.host, mail.port))
    assert mail.count_by_id() == {"n-restart": 5}


# --- the SMS/WhatsApp gateway --------------------------------------------------------------------------
@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_gateway_body_headers_and_signature(channel):
    with HttpReceiver(SECRET) as gateway:
        config = GatewayConfig(url=gateway.url + "kirim", secret=SECRET, timeout_s=5.0)
        deliver_gateway(config, "n-gw", channel=channel)
        [request] = gateway.requests
        assert request["method"] == "POST" and request["path"] == "/kirim"
        assert request["json"] == {"id": "n-gw", "to": "+6281234567890", "channel": channel, "text": TEXT}
        headers = request["headers"]
        assert headers["content-type"] == "application/json"
        assert headers["x-spkt-notification-id"] == "n-gw"
        assert headers["idempotency-key"] == "n-gw"
        assert headers["x-spkt-signature"] == sign(SECRET, request["body"].encode("utf-8"))
        assert request["signature_valid"] is True
        assert gateway.count_by_id() == {"n-gw": 1}


def test_wrong_secret_shows_an_invalid_signature():
    with HttpReceiver("rahasia-lain") as gateway:
        deliver_gateway(GatewayConfig(url=gateway.url, secret=SECRET, timeout_s=5.0), "n-wrong")
        assert gateway.requests[0]["signature_valid"] is False


@pytest.mark.parametrize("status, permanent", [(400, True), (401, True), (404, True), (422, True),
                                               (408, False), (429, False), (500, False), (503, False)])
def test_gateway_status_mapping(status, permanent):
    with HttpReceiver(SECRET, status_for=lambda body: status) as gateway:
        error = failure(lambda: deliver_gateway(GatewayConfig(url=gateway.url, secret=SECRET), "n-status"))
        assert error.permanent is permanent and str(status) in error.reason
        assert len(gateway.requests) == 1 and gateway.count_by_id() == {}


def test_gateway_rejects_one_recipient_and_delivers_the_other():
    bad = "+620000"
    with HttpReceiver(SECRET, status_for=lambda body: 400 if body.get("to") == bad else 202) as gateway:
        config = GatewayConfig(url=gateway.url, secret=SECRET)
        assert failure(lambda: deliver_gateway(config, "n-bad", to=bad)).permanent
        deliver_gateway(config, "n-good", to="+6281234567890")
        assert gateway.count_by_id() == {"n-good": 1}


def test_gateway_unavailable_for_a_while_then_the_retry_lands():
    answers = iter([503, 503])
    with HttpReceiver(SECRET, status_for=lambda body: next(answers, 200)) as gateway:
        config = GatewayConfig(url=gateway.url, secret=SECRET)
        for _ in range(2):
            assert not failure(lambda: deliver_gateway(config, "n-later")).permanent
        deliver_gateway(config, "n-later")
        assert [r["status"] for r in gateway.requests] == [503, 503, 200]
        assert gateway.count_by_id() == {"n-later": 1}


def test_gateway_connection_refused_is_transient():
    config = GatewayConfig(url=f"http://127.0.0.1:{nothing_listens()}/kirim", secret=SECRET, timeout_s=2.0)
    error = failure(lambda: deliver_gateway(config, "n-refused"))
    assert not error.permanent


def test_gateway_timeout_is_transient():
    def slow(body):
        time.sleep(1.0)
        return 200

    with HttpReceiver(SECRET, status_for=slow) as gateway:
        config = GatewayConfig(url=gateway.url, secret=SECRET, timeout_s=0.3)
        assert not failure(lambda: deliver_gateway(config, "n-slow")).permanent


def test_gateway_unknown_channel_is_permanent():
    config = GatewayConfig(url=f"http://127.0.0.1:{nothing_listens()}/", secret=SECRET)
    assert failure(lambda: deliver_gateway(config, "n-fax", channel="fax")).permanent


def test_gateway_with_a_shared_client_and_repeats_counted():
    async def twice(config):
        async with httpx.AsyncClient() as client:
            for _ in range(2):
                await send_gateway(config, notification_id="n-dup", to="+6281234567890", channel="whatsapp",
                                   text=TEXT, client=client)
            assert not client.is_closed  # a caller's client is left open

    with HttpReceiver(SECRET) as gateway:
        asyncio.run(twice(GatewayConfig(url=gateway.url, secret=SECRET)))
        assert gateway.count_by_id() == {"n-dup": 2}


# --- webhooks ----------------------------------------------------------------------------------------
def test_webhook_body_arrives_byte_identical_and_signed():
    body = ('{ "event":"laporan.diterima",  "kode":"SPKT-ABCD-EFGH",\n'
            '  "pesan":"Laporan Anda telah kami terima — terima kasih", "lokasi":{"lat":-6.2441} }')
    with HttpReceiver(SECRET) as hook:
        asyncio.run(send_webhook(hook.url + "hooks/spkt?x=1", SECRET, notification_id="n-hook", body=body))
        [request] = hook.requests
        assert request["body"] == body
        assert request["body"].encode("utf-8") == body.encode("utf-8")
        assert request["json"] == json.loads(body)
        assert request["path"] == "/hooks/spkt?x=1"
        assert request["signature_valid"] is True
        assert request["headers"]["x-spkt-signature"] == sign(SECRET, body.encode("utf-8"))
        assert request["headers"]["idempotency-key"] == "n-hook"
        assert request["headers"]["x-spkt-notification-id"] == "n-hook"
        assert request["headers"]["content-type"] == "application/json"
        assert hook.count_by_id() == {"n-hook": 1}


def test_webhook_failures_map_like_the_gateway():
    with HttpReceiver(SECRET, status_for=lambda body: 410 if body.get("gone") else 502) as hook:
        gone = failure(lambda: asyncio.run(send_webhook(hook.url, SECRET, notification_id="n-1", body='{"gone":1}')))
        busy = failure(lambda: asyncio.run(send_webhook(hook.url, SECRET, notification_id="n-2", body='{}')))
        assert gone.permanent and not busy.permanent
    assert failure(lambda: asyncio.run(send_webhook(hook.url, SECRET, notification_id="n-3", body="bukan json"))).permanent


def test_http_receiver_restarts_and_frees_its_port():
    receiver = HttpReceiver(SECRET)
    for _ in range(5):
        with receiver:
            deliver_gateway(GatewayConfig(url=receiver.url, secret=SECRET), "n-restart")
    with socket.socket() as probe:
        assert probe.connect_ex((receiver.host, receiver.port)) != 0
    assert receiver.count_by_id() == {"n-restart": 5}
    assert not failure(lambda: deliver_gateway(GatewayConfig(url=receiver.url, secret=SECRET, timeout_s=2.0),
                                               "n-after")).permanent


# --- the worker's deliverer ---------------------------------------------------------------------------
def test_the_deliverer_sends_every_message_through_one_http_client():
    from datetime import datetime, timezone

    from schemas.events import Location, Reporter, ReportReceived
    from services.notify import domain
    from services.notify.delivery import Deliverer
    from services.notify.directory import MemoryDirectory
    from spkt.settings import Settings

    receipts = []
    for i in range(3):
        report = ReportReceived(report_id=f"r{i}", tracking_code=f"TRK-{i}", channel="phone_110",
                                reporter=Reporter(name="Siti", phone=f"+62812345678{i:02d}"), description="Jambret",
                                location=Location(lat=-6.2, lon=106.8), received_at=datetime.now(timezone.utc))
        receipts += domain.plan("report.received", report, f"e-{i}", MemoryDirectory(), domain.NotifyRules())

    async def deliver_all(deliverer):
        outcomes, clients = [], []
        for n in receipts:
            outcomes.append(await deliverer.deliver(n, set()))
            clients.append(deliverer._http())  # the client the next send will use
        return outcomes, clients

    with HttpReceiver(SECRET) as gateway:
        deliverer = Deliverer(Settings(sms_gateway_url=gateway.url, sms_gateway_secret=SECRET))
        outcomes, clients = asyncio.run(deliver_all(deliverer))
        assert [o.delivered for o in outcomes] == [True, True, True]
        assert gateway.count_by_id() == {n.notification_id: 1 for n in receipts}
        assert all(r["signature_valid"] for r in gateway.requests)
    # One client, so one TLS context: building one per message was over half of notify's CPU.
    assert len({id(c) for c in clients}) == 1 and not clients[0].is_closed
