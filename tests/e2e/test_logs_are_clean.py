"""No names, phone numbers, NIK or e-mail addresses in the logs: reports with distinctive personal
data go through the whole running system (API, intake, dispatch, notify over real channels on
loopback, projection), then every log file is scanned for them in any spelling."""
import hashlib
import hmac
import json
import re
from pathlib import Path

import httpx
import pytest

from services.api.auth import Role
from tests.receivers import HttpReceiver, MailReceiver
from tests.conftest import own_kafka
from tests.support import api_client, running_system, wait_for

pytestmark = pytest.mark.e2e

GATEWAY, GATEWAY_SECRET, SMS_SECRET = "gw-bersih", "rahasia-gateway-bersih", "rahasia-sms-bersih"
SPOT = (-6.2297, 106.8295)  # Setiabudi: away from the other end-to-end tests' units

# Distinctive on purpose: found in a log, they can only have come from these reports.
A = {"name": "Sutrisno Wibowokarto", "phone": "0812-7345-9061", "nik": "3174051203870011",
     "email": "sutrisno.wibowokarto@warga-bersih.example"}
B = {"name": "Maharani Kusumawardhani", "email": "maharani.kusumawardhani@warga-bersih.example"}  # refused: fails
C = {"name": "Yohanes Simatupangraja", "phone": "+62 813-6620-4417", "email": "yohanes.simatupang@warga-bersih.example"}
D_SENDER, D_NAME = "+6285791234568", "Bambang Prasetyoadi"
REFUSED = {A["email"], B["email"]}
BAD = {"name": "Kartika Purbanegara", "phone": "081355512777", "nik": "12345"}  # refused with 422


def digits_core(phone: str) -> str:
    """The last 9 digits of the national number: found in a log in any spelling, it is the number."""
    return re.sub(r"\D", "", phone)[-9:]


NAMES = [A["name"], B["name"], C["name"], D_NAME, BAD["name"]]
NAME_PARTS = [part for name in NAMES for part in name.split() if len(part) >= 8]  # Wibowokarto, ...
PHONES = [A["phone"], C["phone"], D_SENDER, BAD["phone"]]
NIKS = [A["nik"]]
EMAILS = [A["email"], B["email"], C["email"]]


def leaks(text: str) -> list[str]:
    """What of the personal data above `text` contains: names (or a distinctive part), phone numbers
    and NIK with any separators, e-mail addresses (or their local part)."""
    found = []
    lowered = text.lower()
    found += [f"name {n!r}" for n in NAMES + NAME_PARTS if n.lower() in lowered]
    found += [f"e-mail {e!r}" for e in EMAILS if e.split("@")[0].lower() in lowered]
    # Digits written with spaces, dashes, dots or brackets between them: one run of digits.
    joined = re.sub(r"(?<=\d)[\s\-.()/]+(?=\d)", "", text)
    found += [f"phone {p!r}" for p in PHONES if digits_core(p) in joined]
    found += [f"NIK {k!r}" for k in NIKS if k in joined or k[:12] in joined]
    return found


def test_the_leak_scanner_itself_finds_each_kind_in_any_spelling():
    assert leaks('{"msg": "sms to +62 812 7345 9061 failed"}') == [f"phone {A['phone']!r}"]
    assert leaks("to=0812.7345.9061") and leaks("nik 3174-0512-0387-0011") and leaks("SUTRISNO WIBOWOKARTO")
    assert leaks("recipient <maharani.kusumawardhani@warga-bersih.example> refused")
    assert leaks("kusumawardhani said") and leaks("(62) 857 9123 4568")
    assert leaks('{"to": "…9061", "report": "SPKT-ABCD-EFGH", "ts": "2026-11-28T06:40:12.345"}') == []


def test_reasons_on_their_way_to_a_log_lose_contacts_but_keep_ids_and_times():
    from services.redact import redact

    assert redact(f"recipient {B['email']} refused: 550 5.1.1") == "recipient …@warga-bersih.example refused: 550 5.1.1"
    assert redact(f"to {C['phone']}, nik {A['nik']}, hp {A['phone']}") == "to …4417, nik …0011, hp …9061"
    kept = "report 3b9a4f0e-1111-4a2b-9c3d-000000000001 at 2026-11-28T06:40:12.345, offset 1234567"
    assert redact(kept) == kept
    assert leaks(redact(f"{A['phone']} {D_SENDER} {A['nik']} {C['email']}")) == []


@pytest.fixture(scope="module")
def receivers():
    mail = MailReceiver(reject=REFUSED).start()
    gateway = HttpReceiver(SMS_SECRET).start()
    try:
        yield mail, gateway
    finally:
        mail.stop()
        gateway.stop()


def signed(body: dict) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(GATEWAY_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Gateway": GATEWAY, "X-Signature": signature, "Content-Type": "application/json"}


def test_no_personal_data_in_any_log_after_reports_flow_through_the_system(tmp_path, receivers):
    """On a broker of its own: on the session's, notify inherits earlier tests' outbox (its table's
    changelog), full of receipts for mail servers long gone, and this test's wait for its own."""
    mail, gateway = receivers
    state = tmp_path / "state"
    with own_kafka(tmp_path / "kafka") as kafka_settings, running_system(kafka_settings, state, smtp_host=mail.host, smtp_port=mail.port,
                        sms_gateway_url=gateway.url, sms_gateway_secret=SMS_SECRET,
                        gateway_secrets={GATEWAY: GATEWAY_SECRET}, notify_retry_base_s=0.5) as system:
        accepted = []
        with api_client(system, Role.call_taker) as taker, httpx.Client(base_url=system.api_url, timeout=30) as gw:
            for n, reporter in enumerate((A, B, C)):
                r = taker.post("/api/v1/reports", json={
                    "channel": "phone_110", "category": "burglary", "reporter": reporter,
                    "description": f"Rumah dibobol maling, pintu belakang rusak ({n})",
                    "location": {"lat": SPOT[0] + 0.02 * n, "lon": SPOT[1], "address": f"Jl. Setiabudi Tengah {n + 1}"}})
                assert r.status_code == 202, r.text
                accepted.append(r.json())
            raw, headers = signed({"sender": D_SENDER, "channel": "whatsapp", "received_at": "2026-11-27T21:05:00+07:00",
                                   "text": f"Tolong, saya {D_NAME}, ada orang pingsan di trotoar dekat halte",
                                   "lat": SPOT[0] - 0.02, "lon": SPOT[1]})
            r = gw.post("/api/v1/inbound/messages", content=raw, headers=headers)
            assert r.status_code == 202, r.text
            accepted.append(r.json())
            refused = taker.post("/api/v1/reports", json={
                "channel": "walk_in", "reporter": BAD, "description": "Kehilangan dompet",
                "location": {"lat": SPOT[0], "lon": SPOT[1]}})
            assert refused.status_code == 422

            incidents = []
            for made in accepted:
                incidents.append(wait_for(lambda: taker.get(f"/api/v1/reports/{made['report_id']}").json()
                                          .get("incident_id"), timeout=60, what=f"report {made['report_id']} on an incident"))
        assert len(set(incidents)) == 4
        with api_client(system, Role.supervisor) as supervisor:
            def receipts_done():
                done = [n for n in supervisor.get("/api/v1/notifications").json()
                        if n["template"] == "receipt" and n["state"] in ("sent", "failed")]
                return len(done) >= 4 and done
            receipts = wait_for(receipts_done, timeout=90, interval=0.5, what="every reporter's receipt sent or failed")
        # B's only address is refused: a failure, with its reason; the others reached their reporters.
        assert sorted(n["state"] for n in receipts) == ["failed", "sent", "sent", "sent"], receipts
        wait_for(lambda: "notification failed" in (state / "logs" / "notify.log").read_text(errors="replace"),
                 timeout=30, what="notify's log of the failed receipt")
        assert any(r["json"] and r["json"].get("to") == "+6281273459061" for r in gateway.requests)  # A by phone
    logs = sorted((state / "logs").glob("*.log"))
    assert {p.name for p in logs} >= {f"{s}.log" for s in ("api", "intake", "dispatch", "notify", "projection")}
    found = {}
    for path in logs:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if what := leaks(line):
                found.setdefault(Path(path).name, []).append(f"{number}: {what}: {line[:300]}")
    assert found == {}, json.dumps(found, indent=1, ensure_ascii=False)
