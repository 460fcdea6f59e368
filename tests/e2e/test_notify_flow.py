"""Notify on the running stack, over real channels on loopback: the reporter's receipt by SMTP, the
unit's assignment through an HMAC-signed SMS/WhatsApp gateway, a webhook, the supervisor told of an
undecided assistance request, a bad address set aside with its reason; nothing delivered twice."""
import pytest

from schemas import topics
from services.api.auth import Role
from tests.receivers import HttpReceiver, MailReceiver
from tests.support import api_client, events_on, running_system, wait_for

pytestmark = pytest.mark.e2e

GATEWAY_SECRET = "rahasia-gateway-uji"
HOOK_SECRET = "rahasia-polda-uji"
SUPERVISOR = "ka.spkt@polres-uji.example"
BAD_ADDRESS = "tidak.ada@polres-uji.example"
SPOT = (-6.1780, 106.8700)  # Cempaka Putih: away from the other end-to-end tests' units

api = api_client


@pytest.fixture(scope="module")
def receivers():
    mail = MailReceiver(reject=[BAD_ADDRESS]).start()
    gateway = HttpReceiver(GATEWAY_SECRET).start()
    hooks = HttpReceiver(HOOK_SECRET).start()
    try:
        yield mail, gateway, hooks
    finally:
        for receiver in (mail, gateway, hooks):
            receiver.stop()


@pytest.fixture(scope="module")
def system(kafka_settings, tmp_path_factory, receivers):
    mail, gateway, hooks = receivers
    webhooks = [{"name": "polda-cc", "url": hooks.url, "secret": HOOK_SECRET, "types": ["incident.opened"]}]
    with running_system(kafka_settings, tmp_path_factory.mktemp("e2e-notify"), smtp_host=mail.host,
                        smtp_port=mail.port, sms_gateway_url=gateway.url, sms_gateway_secret=GATEWAY_SECRET,
                        supervisor_contacts=SUPERVISOR, webhook_subscribers=webhooks, notify_retry_base_s=0.5,
                        assistance_decision_s=4.0, command_wait_s=15.0, assignment_ack_s=600.0) as settings:
        yield settings


def mails_with(mail: MailReceiver, text: str, to: str | None = None) -> list:
    found = []
    for message in list(mail.messages):
        body = message.get_body(preferencelist=("plain",)).get_content()
        if text in body + str(message["Subject"]) and (to is None or to in str(message["To"])):
            found.append(message)
    return found


def report(system, **extra) -> dict:
    body = {"channel": "phone_110", "category": "street_robbery",
            "description": "Jambret tas di depan halte Cempaka Putih, pelaku naik motor",
            "location": {"lat": SPOT[0], "lon": SPOT[1]}, **extra}
    with api(system, Role.call_taker) as taker:
        r = taker.post("/api/v1/reports", json=body)
        assert r.status_code == 202, r.text
        made = r.json()
        made["incident_id"] = wait_for(lambda: taker.get(f"/api/v1/reports/{made['report_id']}").json()
                                       .get("incident_id"), timeout=60, what="the report on an incident")
        return made


def test_receipt_unit_alert_webhook_and_milestone_each_arrive_once(system, receivers):
    mail, gateway, hooks = receivers
    made = report(system, reporter={"name": "Siti", "phone": "081299990001", "email": "siti@warga.example"})
    receipt = wait_for(lambda: mails_with(mail, made["tracking_code"], "siti@warga.example"), timeout=60,
                       what="the reporter's receipt by email")
    assert receipt[0]["X-SPKT-Notification-Id"] and receipt[0]["Message-ID"]

    opened = wait_for(lambda: [r for r in hooks.requests if r["json"] and r["json"].get("incident_id") == made["incident_id"]],
                      timeout=60, what="the incident.opened webhook")
    assert opened[0]["signature_valid"] and opened[0]["json"]["type"] == "incident.opened"

    unit = f"ntf-car-{made['incident_id'][:6]}"
    with api(system, Role.admin) as admin:
        r = admin.post("/api/v1/units", json={"unit_id": unit, "callsign": "SABHARA-77", "kind": "car",
                                               "station": "polsek-cempaka-putih", "phone": "081300007777"})
        assert r.status_code == 201, r.text
    with api(system, Role.field_unit, unit_id=unit) as phone:
        assert phone.post(f"/api/v1/units/{unit}/position", json={"lat": SPOT[0] + 0.003, "lon": SPOT[1]}).status_code == 202
    with api(system, Role.dispatcher) as dispatcher:
        def assigned():
            r = dispatcher.post(f"/api/v1/incidents/{made['incident_id']}/assignments", json={"unit_id": unit})
            return r if r.status_code == 201 else None  # the unit's registration may still be on its way
        wait_for(assigned, timeout=60, interval=1.0, what="the unit assigned")
    alert = wait_for(lambda: [r for r in gateway.requests if r["json"] and r["json"].get("to") == "+6281300007777"],
                     timeout=60, what="the unit's assignment at the gateway")
    assert alert[0]["signature_valid"] and alert[0]["json"]["channel"] == "whatsapp"
    assert "maps" in alert[0]["json"]["text"] and alert[0]["headers"]["x-spkt-notification-id"]
    wait_for(lambda: len(mails_with(mail, "", "siti@warga.example")) >= 2, timeout=60,
             what="the reporter told a unit is on its way")

    with api(system, Role.supervisor) as supervisor:
        def recorded():
            found = [n for n in supervisor.get("/api/v1/notifications", params={"incident_id": made["incident_id"]})
                     .json() if n["state"] == "sent"]
            return {"unit_assignment", "unit_on_the_way"} <= {n["template"] for n in found} and found
        sent = wait_for(recorded, timeout=30, what="the incident's notifications on the record")
        # Newest first: the broker is the session's, and what earlier tests left on it (hundreds of
        # webhooks when the integration tests ran first) can push the receipt past the default 100.
        receipts = [n for n in supervisor.get("/api/v1/notifications", params={"state": "sent", "limit": 500}).json()
                    if n["template"] == "receipt"]
        assert receipts and all(n["channel"] for n in receipts)
        assert all("081299990001" not in n["recipient"] and "siti@" not in n["recipient"] for n in sent)  # masked
        timeline = supervisor.get(f"/api/v1/incidents/{made['incident_id']}").json()["timeline"]
        assert any(e["type"] == "notification.sent" for e in timeline)
    for receiver in (mail, gateway, hooks):
        counts = receiver.count_by_id()
        assert counts and max(counts.values()) == 1, counts  # nothing arrived twice


def test_an_undecided_assistance_request_reaches_the_supervisor_by_email(system, receivers):
    mail, _, _ = receivers
    made = report(system, channel="walk_in", category="assistance_request", assistance_request=True,
                  description="Minta didampingi mengambil mobil rental yang dibawa kabur penyewa",
                  reporter={"name": "Pak Joko", "phone": "081377770002"})
    with api(system, Role.dispatcher) as dispatcher:
        number = dispatcher.get(f"/api/v1/incidents/{made['incident_id']}").json()["number"]
    told = wait_for(lambda: mails_with(mail, number, SUPERVISOR), timeout=60,
                    what="the supervisor told of the undecided request")
    assert told[0]["X-SPKT-Notification-Id"]


def test_a_bad_address_is_set_aside_with_its_reason_and_a_phone_is_the_fallback(system, receivers):
    mail, gateway, _ = receivers
    nowhere = report(system, reporter={"name": "Andi", "email": BAD_ADDRESS},
                     location={"lat": SPOT[0] + 0.02, "lon": SPOT[1]})
    fallback = report(system, reporter={"name": "Rina", "email": BAD_ADDRESS, "phone": "081299990003"},
                      location={"lat": SPOT[0] - 0.02, "lon": SPOT[1]})
    texted = wait_for(lambda: [r for r in gateway.requests if r["json"] and r["json"].get("to") == "+6281299990003"
                               and fallback["tracking_code"] in r["json"]["text"]], timeout=60,
                      what="the receipt sent by WhatsApp after the address was refused")
    assert texted[0]["signature_valid"]
    with api(system, Role.supervisor) as supervisor:
        failed = wait_for(lambda: [n for n in supervisor.get("/api/v1/notifications", params={"state": "failed"}).json()
                                   if n["incident_id"] == nowhere["incident_id"] or n["template"] == "receipt"] or None,
                          timeout=60, what="the undeliverable receipt among the failed notifications")
        assert any("550" in (n["reason"] or "") for n in failed), failed
    assert not mails_with(mail, nowhere["tracking_code"])
    letters = wait_for(lambda: [e for e in events_on(system, topics.DEAD_LETTERS)
                                if e.data.get("error_kind") == "notification_failed"
                                and nowhere["tracking_code"] in (e.data.get("original_value") or "")],
                       timeout=30, what="the undeliverable receipt among the dead letters")
    assert "550" in letters[0].data["reason"]


def test_mail_server_away_for_a_while_then_the_receipt_arrives(system, receivers):
    mail, _, _ = receivers
    mail.down()
    try:
        made = report(system, reporter={"name": "Dewi", "email": "dewi@warga.example"},
                      location={"lat": SPOT[0], "lon": SPOT[1] + 0.02})
        log = system.state_dir / "logs" / "notify.log"
        wait_for(lambda: log.read_text().count("notification delayed") >= 2, timeout=60,
                 what="the receipt tried and put off while the mail server is away")
        with api(system, Role.supervisor) as supervisor:  # retried, not given up on
            failed = [n for n in supervisor.get("/api/v1/notifications", params={"state": "failed"}).json()
                      if n["template"] == "receipt" and "dewi" in n["recipient"]]
            assert failed == [] and not mails_with(mail, made["tracking_code"])
    finally:
        mail.up()
    arrived = wait_for(lambda: mails_with(mail, made["tracking_code"], "dewi@warga.example"), timeout=60,
                       what="the receipt once the mail server is back")
    assert len(arrived) == 1


def test_a_unit_signed_out_of_the_field_app_is_not_alerted_there_until_it_signs_in(system, receivers):
    mail, gateway, _ = receivers
    made = report(system, reporter={"name": "Rina", "email": "rina@warga.example"})
    unit = f"ntf-out-{made['incident_id'][:6]}"
    with api(system, Role.admin) as admin:
        r = admin.post("/api/v1/units", json={"unit_id": unit, "callsign": "SABHARA-78", "kind": "car",
                                               "station": "polsek-cempaka-putih", "phone": "081300007878"})
        assert r.status_code == 201, r.text
    with api(system, Role.field_unit, unit_id=unit) as phone, api(system, Role.dispatcher) as dispatcher:
        wait_for(lambda: phone.post(f"/api/v1/units/{unit}/sign-out", json={"device": "HP dinas"}).status_code == 202,
                 timeout=60, interval=1.0, what="the unit registered, then signed out")
        assert phone.post(f"/api/v1/units/{unit}-other/sign-out", json={}).status_code == 403  # its own only
        assert phone.post(f"/api/v1/units/{unit}/position", json={"lat": SPOT[0] + 0.004, "lon": SPOT[1]}).status_code == 202
        wait_for(lambda: any(u["unit_id"] == unit and u["signed_in"] is False
                             for u in dispatcher.get("/api/v1/units").json()["items"]),
                 timeout=60, what="the board to show the unit signed out")

        def assigned():
            r = dispatcher.post(f"/api/v1/incidents/{made['incident_id']}/assignments", json={"unit_id": unit})
            return r if r.status_code == 201 else None
        first = wait_for(assigned, timeout=60, interval=1.0, what="the signed-out unit assigned")
        # The same event tells the reporter a unit is on its way: once that mail is in, the unit's
        # message would have been handled too.
        wait_for(lambda: len(mails_with(mail, "", "rina@warga.example")) >= 2, timeout=60,
                 what="the reporter told a unit is on its way")
        to_unit = [r for r in gateway.requests if r["json"] and r["json"].get("to") == "+6281300007878"]
        assert to_unit == []
        # Signed in again, the next assignment reaches its phone.
        assert phone.post(f"/api/v1/units/{unit}/sign-in", json={}).status_code == 202
        wait_for(lambda: any(u["unit_id"] == unit and u["signed_in"] for u in dispatcher.get("/api/v1/units").json()["items"]),
                 timeout=60, what="the board to show the unit signed in")
        assert dispatcher.post(f"/api/v1/assignments/{first.json()['assignment_id']}/decline",
                               json={"reason": "uji: tugaskan ulang"}).status_code in (200, 202)
        wait_for(assigned, timeout=60, interval=1.0, what="the unit assigned again")
    wait_for(lambda: [r for r in gateway.requests if r["json"] and r["json"].get("to") == "+6281300007878"],
             timeout=60, what="the signed-in unit's assignment at the gateway")
