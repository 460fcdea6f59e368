"""A report travels through every hop on the real broker, with the stack `spkt up` starts.

API → spkt.reports → intake → spkt.incidents → dispatch → spkt.assignments → projection → API.
"""
import time
from datetime import datetime, timezone

import httpx
import pytest

from deploy.stack import start_system
from schemas import topics
from schemas.events import UnitPositionReported, UnitRegistered, UnitStatusChanged
from schemas.registry import make_event
from services.api.auth import Role, mint
from spkt.settings import Settings
from tests.support import free_port, publish, wait_for

pytestmark = pytest.mark.e2e

MONAS = {"lat": -6.1754, "lon": 106.8272}


@pytest.fixture(scope="module")
def system(kafka_settings, tmp_path_factory):
    state = tmp_path_factory.mktemp("e2e-state")
    settings = Settings(**{**kafka_settings.model_dump(), "state_dir": state, "api_port": free_port(),
                           "database_url": f"sqlite:///{state / 'spkt.db'}"})
    stack = start_system(settings)
    try:
        yield settings
    finally:
        stack.stop()


def client(settings, role: Role | None = Role.dispatcher, **claims) -> httpx.Client:
    headers = {"Authorization": f"Bearer {mint(settings, sub=f'test-{role.value}', role=role, **claims)}"} if role else {}
    return httpx.Client(base_url=settings.api_url, headers=headers, timeout=10)


def register(settings, unit_id, kind, lat, lon, status=None):
    now = datetime.now(timezone.utc)
    publish(settings, topics.UNIT_STATUS, make_event(
        UnitRegistered(unit_id=unit_id, callsign=unit_id.upper(), kind=kind, station="polsek-gambir",
                       registered_at=now), source="/test"))
    publish(settings, topics.UNIT_POSITIONS, make_event(
        UnitPositionReported(unit_id=unit_id, lat=lat, lon=lon, at=now), source="/test"))
    if status:
        publish(settings, topics.UNIT_STATUS, make_event(
            UnitStatusChanged(unit_id=unit_id, status=status, previous_status="available", changed_at=now),
            source="/test"))


def report_body(**over):
    body = {"channel": "phone_110", "reporter": {"name": "Siti", "phone": "+6281234567890"},
            "description": "Jambret di depan Monas, pelaku naik motor ke arah Gambir",
            "location": {**MONAS, "address": "Jl. Medan Merdeka Barat"}}
    body.update(over)
    return body


def test_a_report_becomes_an_incident_with_the_nearest_unit_recommended(system):
    register(system, "e2e-near", "motorcycle", -6.1760, 106.8280)
    register(system, "e2e-far", "car", -6.2600, 106.8100)
    register(system, "e2e-off", "car", -6.1755, 106.8273, status="off_duty")
    with client(system) as api:
        def units_known():
            items = {u["unit_id"]: u for u in api.get("/api/v1/units").json()["items"]}
            ours = [items.get(u) for u in ("e2e-near", "e2e-far", "e2e-off")]
            return all(u and u["position"] for u in ours) and items["e2e-off"]["status"] == "off_duty"
        wait_for(units_known, timeout=30, what="the three units on the board")

        started = time.monotonic()
        accepted = api.post("/api/v1/reports", json=report_body())
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert body["status"] == "received" and body["tracking_code"].startswith("SPKT-")
        assert accepted.headers["location"] == f"/api/v1/reports/{body['report_id']}"

        def triaged():
            r = api.get(accepted.headers["location"])
            return r.status_code == 200 and r.json()["incident_id"] and r.json()
        report = wait_for(triaged, timeout=30, what="the report linked to an incident")
        assert report["status"] == "triaged" and report["merged"] is False

        def recommended():
            r = api.get(f"/api/v1/incidents/{report['incident_id']}")
            return r.status_code == 200 and r.json()["recommendation"] and len(r.json()["timeline"]) >= 2 and r.json()
        incident = wait_for(recommended, timeout=30, what="the incident's recommendation")
        latency = time.monotonic() - started
        print(f"\nreport → recommendation visible through the API: {latency * 1000:.0f} ms")

    assert incident["reports"] == [body["report_id"]]
    assert incident["location"]["lat"] == MONAS["lat"]
    candidates = incident["recommendation"]["candidates"]
    assert candidates[0]["unit_id"] == "e2e-near", candidates
    assert candidates[0]["reasons"][0] == "tercepat tiba"
    assert "e2e-far" in [c["unit_id"] for c in candidates]
    excluded = {x["unit_id"]: x["reason"] for x in incident["recommendation"]["excluded"]}
    assert excluded["e2e-off"] == "tidak tersedia: lepas dinas"
    assert [e["type"] for e in incident["timeline"]] == ["incident.opened", "dispatch.recommended"]
    with client(system) as api:
        separate = api.get(f"/api/v1/incidents/{report['incident_id']}/recommendations").json()
    assert separate["candidates"] == candidates


def test_the_same_idempotency_key_records_one_report(system):
    with client(system, Role.call_taker) as api:
        first = api.post("/api/v1/reports", json=report_body(), headers={"Idempotency-Key": "call-0001"})
        again = api.post("/api/v1/reports", json=report_body(), headers={"Idempotency-Key": "call-0001"})
        other = api.post("/api/v1/reports", json=report_body(description="Lain"), headers={"Idempotency-Key": "call-0001"})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]


def test_tokens_and_roles_are_enforced(system):
    with client(system, role=None) as anonymous:
        assert anonymous.post("/api/v1/reports", json=report_body()).status_code == 401
        assert anonymous.get("/api/v1/incidents/x").status_code == 401
        tampered = mint(system, sub="x", role=Role.admin)[:-3] + "AAA"
        r = anonymous.get("/api/v1/units", headers={"Authorization": f"Bearer {tampered}"})
        assert r.status_code == 401
        expired = mint(system, sub="x", role=Role.admin, ttl_s=-5)
        r = anonymous.get("/api/v1/units", headers={"Authorization": f"Bearer {expired}"})
        assert r.status_code == 401 and "expired" in r.json()["detail"]
    with client(system, Role.command_center) as watcher:
        r = watcher.post("/api/v1/reports", json=report_body())
        assert r.status_code == 403 and "command_center" in r.json()["detail"]
    with client(system, Role.field_unit, unit_id="e2e-near") as unit:
        assert unit.get("/api/v1/units").status_code == 403


def test_bad_input_is_refused_with_the_field_named(system):
    with client(system, Role.call_taker) as api:
        no_place = api.post("/api/v1/reports", json=report_body(location={"accuracy_m": 10}))
        assert no_place.status_code == 422 and "koordinat" in no_place.text
        bad_lat = api.post("/api/v1/reports", json=report_body(location={"lat": 123, "lon": 106.8}))
        assert bad_lat.status_code == 422 and "lat" in str(bad_lat.json()["detail"][0]["loc"])
        huge = api.post("/api/v1/reports", content=b"{" + b" " * (system.max_body_bytes + 10) + b"}",
                        headers={"Content-Type": "application/json"})
        assert huge.status_code == 413
        assert api.get("/api/v1/reports/no-such-report").status_code == 404
        assert api.get("/api/v1/incidents/no-such-incident").status_code == 404


def test_health_and_readiness(system):
    with client(system, role=None) as api:
        assert api.get("/healthz").json() == {"status": "ok"}
        ready = api.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "broker": True, "database": True}
        assert "spkt_reports_accepted_total" in api.get("/metrics").text
