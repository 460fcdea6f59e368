"""Intake through the API on the running stack: channels, duplicates, abuse, accountable requests."""
import hashlib
import hmac
import json

import httpx
import pytest

from deploy.stack import start_system
from services.api.auth import Role, mint
from spkt.settings import Settings
from tests.support import free_port, wait_for

pytestmark = pytest.mark.e2e

GATEWAY, SECRET = "gw-test", "rahasia-gateway-uji"
TANAH_ABANG = {"lat": -6.1860, "lon": 106.8130}


@pytest.fixture(scope="module")
def system(kafka_settings, tmp_path_factory):
    state = tmp_path_factory.mktemp("e2e-intake")
    settings = Settings(**{**kafka_settings.model_dump(), "state_dir": state, "api_port": free_port(),
                           "database_url": f"sqlite:///{state / 'spkt.db'}",
                           "gateway_secrets": {GATEWAY: SECRET}, "assistance_decision_s": 4.0,
                           "caller_limit_per_minute": 5})
    stack = start_system(settings)
    try:
        yield settings
    finally:
        stack.stop()


def api(settings, role=Role.call_taker, **claims) -> httpx.Client:
    token = mint(settings, sub=f"test-{role.value}", role=role, **claims)
    return httpx.Client(base_url=settings.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def signed(body: dict, secret: str = SECRET) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Gateway": GATEWAY, "X-Signature": sig, "Content-Type": "application/json"}


def incident_of(client, report_id) -> dict:
    def linked():
        r = client.get(f"/api/v1/reports/{report_id}")
        return r.status_code == 200 and r.json()["incident_id"] and r.json()
    report = wait_for(linked, timeout=30, what=f"report {report_id} linked to an incident")
    return client.get(f"/api/v1/incidents/{report['incident_id']}").json()


def test_one_event_by_phone_sms_and_walk_in_is_one_incident_and_others_stay_apart(system):
    with api(system) as client, httpx.Client(base_url=system.api_url, timeout=10) as gateway:
        phone = client.post("/api/v1/reports", json={
            "channel": "phone_110", "reporter": {"name": "Rudi", "phone": "0812-1111-2222"},
            "description": "Tawuran pelajar di depan Pasar Tanah Abang, ada yang bawa celurit",
            "location": TANAH_ABANG})
        assert phone.status_code == 202, phone.text
        raw, headers = signed({"sender": "081233334444", "text": "tolong ada tawuran anak sekolah dekat pasar tanah abang",
                               "received_at": "2026-11-27T21:05:00+07:00", "channel": "whatsapp",
                               "lat": TANAH_ABANG["lat"] + 0.0008, "lon": TANAH_ABANG["lon"] + 0.0005})
        sms = gateway.post("/api/v1/inbound/messages", content=raw, headers=headers)
        assert sms.status_code == 202, sms.text
        walk_in = client.post("/api/v1/reports", json={
            "channel": "walk_in", "reporter": {"name": "Siti"}, "category": "brawl",
            "description": "Saya lihat perkelahian antar pelajar di pasar Tanah Abang barusan",
            "location": {"lat": TANAH_ABANG["lat"] - 0.0005, "lon": TANAH_ABANG["lon"]}})
        assert walk_in.status_code == 202, walk_in.text
        far = client.post("/api/v1/reports", json={
            "channel": "phone_110", "category": "brawl", "description": "Tawuran pelajar di jalan raya",
            "location": {"lat": TANAH_ABANG["lat"] + 0.018, "lon": TANAH_ABANG["lon"]}})  # ~2 km north
        unrelated = client.post("/api/v1/reports", json={
            "channel": "phone_110", "category": "lost_goods", "description": "Dompet saya hilang di pasar",
            "location": TANAH_ABANG})
        ids = [r.json()["report_id"] for r in (phone, sms, walk_in)]
        first = incident_of(client, ids[0])
        wait_for(lambda: len(client.get(f"/api/v1/incidents/{first['incident_id']}").json()["reports"]) == 3,
                 timeout=30, what="three reports on one incident")
        incident = client.get(f"/api/v1/incidents/{first['incident_id']}").json()
        assert sorted(incident["reports"]) == sorted(ids)
        assert incident["category"] == "brawl" and incident["polres"] == "polres-jakpus"
        attached = [client.get(f"/api/v1/reports/{i}").json()["match"] for i in ids[1:]]
        assert all(m and m["total"] > 0 and m["reasons"] for m in attached)
        assert incident_of(client, far.json()["report_id"])["incident_id"] != first["incident_id"]
        assert incident_of(client, unrelated.json()["report_id"])["incident_id"] != first["incident_id"]
        assert client.get(f"/api/v1/reports/{ids[1]}").json()["channel"] == "whatsapp"


def test_a_bad_or_missing_gateway_signature_records_nothing(system):
    body = {"sender": "081255556666", "text": "ada maling", "received_at": "2026-11-27T21:00:00+07:00"}
    with httpx.Client(base_url=system.api_url, timeout=10) as gateway:
        raw, headers = signed(body, secret="salah")
        assert gateway.post("/api/v1/inbound/messages", content=raw, headers=headers).status_code == 401
        raw, headers = signed(body)
        del headers["X-Signature"]
        assert gateway.post("/api/v1/inbound/messages", content=raw, headers=headers).status_code == 422


def test_a_flood_from_one_number_is_rate_limited(system):
    body = {"channel": "phone_110", "reporter": {"phone": "+6281999000111"}, "description": "iseng",
            "location": TANAH_ABANG}
    with api(system) as client:
        codes = [client.post("/api/v1/reports", json=body).status_code for _ in range(8)]
        assert codes[:5] == [202] * 5 and set(codes[5:]) == {429}
        limited = client.post("/api/v1/reports", json=body)
        assert int(limited.headers["Retry-After"]) >= 1 and "Terlalu banyak" in limited.json()["detail"]


def test_inputs_are_normalised_or_refused_in_indonesian(system):
    base = {"channel": "walk_in", "description": "Kehilangan KTP", "location": TANAH_ABANG}
    with api(system) as client:
        ok = client.post("/api/v1/reports", json={**base, "reporter": {"phone": "0812 3456 7890"}})
        assert ok.status_code == 202
        bad_nik = client.post("/api/v1/reports", json={**base, "reporter": {"nik": "12345"}})
        assert bad_nik.status_code == 422 and bad_nik.json()["detail"][0]["field"] == "reporter.nik"
        assert "NIK harus 16 angka" in bad_nik.json()["detail"][0]["msg"]
        bad_cat = client.post("/api/v1/reports", json={**base, "category": "alien"})
        assert bad_cat.status_code == 422 and "tidak dikenal" in bad_cat.text
        too_long = client.post("/api/v1/reports", json={**base, "description": "x" * 5001})
        assert too_long.status_code == 422 and "terlalu panjang" in too_long.text
        cats = client.get("/api/v1/categories").json()
        homicide = next(c for c in cats if c["code"] == "homicide")
        assert homicide["priority"] == "P1" and {p["kind"] for p in homicide["response_plan"]} >= {"reskrim", "inafis"}


def test_declined_and_undecided_assistance_requests_reach_the_supervisor(system):
    body = {"channel": "walk_in", "assistance_request": True, "category": "assistance_request",
            "reporter": {"name": "Pak Joko", "phone": "081377778888"},
            "description": "Minta didampingi mengambil mobil rental yang dibawa kabur penyewa"}
    with api(system) as client:
        declined = client.post("/api/v1/reports", json={**body, "location": TANAH_ABANG}).json()
        undecided = client.post("/api/v1/reports", json={**body, "location": {"lat": -6.2, "lon": 106.83}}).json()
        incident = incident_of(client, declined["report_id"])
        undecided_incident = incident_of(client, undecided["report_id"])
    with api(system, Role.dispatcher) as dispatcher:
        no_reason = dispatcher.post(f"/api/v1/incidents/{incident['incident_id']}/decision", json={"decision": "decline"})
        assert no_reason.status_code == 422 and "alasan wajib" in no_reason.text
        decision = {"decision": "decline", "reason": "Surat kuasa dari pemilik tidak ada"}
        key = {"Idempotency-Key": f"decision-{incident['incident_id']}"}
        decided = dispatcher.post(f"/api/v1/incidents/{incident['incident_id']}/decision", json=decision, headers=key)
        assert decided.status_code == 201 and decided.json()["decided_by"] == "test-dispatcher"
        retried = dispatcher.post(f"/api/v1/incidents/{incident['incident_id']}/decision", json=decision, headers=key)
        assert (retried.status_code, retried.json()) == (201, decided.json())
    with api(system, Role.supervisor) as supervisor:
        def escalated():
            items = supervisor.get("/api/v1/escalations").json()["items"]
            whys = {(i["incident_id"], i["why"]) for i in items}
            return ((incident["incident_id"], "declined") in whys
                    and (undecided_incident["incident_id"], "no_decision_in_time") in whys) and items
        items = wait_for(escalated, timeout=30, what="both requests before the supervisor", interval=0.3)
        declined_item = next(i for i in items if i["why"] == "declined")
        assert "Surat kuasa" in declined_item["detail"]
        timeline = supervisor.get(f"/api/v1/incidents/{incident['incident_id']}").json()["timeline"]
        assert {"assistance.decided", "assistance.escalated"} <= {e["type"] for e in timeline}
    with api(system, Role.call_taker) as call_taker:
        assert call_taker.get("/api/v1/escalations").status_code == 403


def test_dispatchers_merge_and_split(system):
    with api(system) as client:
        a = client.post("/api/v1/reports", json={"channel": "phone_110", "category": "fire",
                                                 "description": "Kebakaran gudang di Tebet",
                                                 "location": {"lat": -6.2260, "lon": 106.8580}}).json()
        b = client.post("/api/v1/reports", json={"channel": "phone_110", "category": "theft",
                                                 "description": "Barang warga dijarah saat orang panik di Tebet",
                                                 "location": {"lat": -6.2270, "lon": 106.8590}}).json()
        ia, ib = incident_of(client, a["report_id"]), incident_of(client, b["report_id"])
        assert ia["incident_id"] != ib["incident_id"]
    with api(system, Role.dispatcher) as dispatcher:
        merge_body = {"into": ia["incident_id"], "reason": "asap dari kebakaran yang sama"}
        key = {"Idempotency-Key": f"merge-{ib['incident_id']}"}
        merged = dispatcher.post(f"/api/v1/incidents/{ib['incident_id']}/merge", json=merge_body, headers=key)
        assert merged.status_code == 202 and merged.json()["command_id"]
        wait_for(lambda: dispatcher.get(f"/api/v1/incidents/{ib['incident_id']}").json()["status"] == "duplicate",
                 timeout=30, what="the merged incident marked duplicate")
        # The console retries (its answer was lost): the first answer again, not a 409 for the merged incident.
        retried = dispatcher.post(f"/api/v1/incidents/{ib['incident_id']}/merge", json=merge_body, headers=key)
        assert (retried.status_code, retried.json()) == (202, merged.json())
        reused = dispatcher.post(f"/api/v1/incidents/{ib['incident_id']}/merge", json={"into": "lain"}, headers=key)
        assert reused.status_code == 409 and "Idempotency-Key" in reused.json()["detail"]
        survivor = dispatcher.get(f"/api/v1/incidents/{ia['incident_id']}").json()
        assert sorted(survivor["reports"]) == sorted([a["report_id"], b["report_id"]])
        assert dispatcher.get(f"/api/v1/reports/{b['report_id']}").json()["merged"] is True
        split = dispatcher.post(f"/api/v1/incidents/{ia['incident_id']}/split", json={"report_id": b["report_id"]})
        assert split.status_code == 202
        wait_for(lambda: dispatcher.get(f"/api/v1/reports/{b['report_id']}").json()["incident_id"]
                 not in (ia["incident_id"], ib["incident_id"]), timeout=30, what="the report in a new incident")
        again = dispatcher.post(f"/api/v1/incidents/{ib['incident_id']}/merge", json={"into": ia["incident_id"]})
        assert again.status_code == 409
