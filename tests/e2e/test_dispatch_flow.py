"""Dispatch through the API on the running stack: recommend, assign, accept, arrive; the race; panic."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.api.auth import Role
from tests.support import api_client, running_system, wait_for

pytestmark = pytest.mark.e2e

# Far from the other end-to-end tests' units on the same broker (Monas, Blok M, Tanah Abang), so
# neither test's units crowd the other's recommendations.
SCENE = (-6.3350, 106.8200)      # Jagakarsa, Jakarta Selatan
ELSEWHERE = (-6.3470, 106.8200)  # ~1.3 km south: another incident, not a duplicate of the first
FAR_AWAY = (-6.1500, 106.7300)   # Cengkareng, ~22 km away


@pytest.fixture(scope="module")
def system(kafka_settings, tmp_path_factory):
    with running_system(kafka_settings, tmp_path_factory.mktemp("e2e-dispatch"), assignment_ack_s=3.0,
                        command_wait_s=15.0, auto_assign_categories="officer_emergency") as settings:
        yield settings


api = api_client


@pytest.fixture(scope="module")
def units(system):
    """Units registered through the API, with GPS fixes from their own phones."""
    run = uuid.uuid4().hex[:6]
    spec = {  # name: (kind, capabilities, position)
        "moto": ("motorcycle", ["rapid_response"], (SCENE[0] + 0.0035, SCENE[1])),   # ~400 m
        "car": ("car", [], (SCENE[0] - 0.0055, SCENE[1])),                            # ~600 m
        "blind": ("car", [], None),                                                   # never sent a fix
        "far": ("car", [], FAR_AWAY),
        "far2": ("car", [], (FAR_AWAY[0] + 0.004, FAR_AWAY[1])),                      # ~450 m from far
    }
    ids = {name: f"dsp-{name}-{run}" for name in spec}
    with api(system, Role.admin) as admin:
        for name, (kind, caps, _) in spec.items():
            r = admin.post("/api/v1/units", json={"unit_id": ids[name], "callsign": f"{name.upper()}-{run}",
                                                   "kind": kind, "station": "polsek-kebayoran-baru",
                                                   "capabilities": caps})
            assert r.status_code == 201, r.text
        bad = admin.post("/api/v1/units", json={"unit_id": "x y", "callsign": "X", "kind": "tank", "station": "s"})
        assert bad.status_code == 422 and "kind" in bad.text
    for name, (_, _, where) in spec.items():
        if where is None:
            continue
        with api(system, Role.field_unit, unit_id=ids[name]) as phone:
            r = phone.post(f"/api/v1/units/{ids[name]}/position", json={"lat": where[0], "lon": where[1]})
            assert r.status_code == 202, r.text
            other = phone.post(f"/api/v1/units/{ids['blind']}/position", json={"lat": 0, "lon": 0})
            assert other.status_code == 403
    with api(system, Role.dispatcher) as board:
        def positioned():
            items = {u["unit_id"]: u for u in board.get("/api/v1/units").json()["items"]}
            return all(ids[n] in items and (items[ids[n]]["position"] is not None) == (spec[n][2] is not None)
                       for n in spec) and items
        items = wait_for(positioned, timeout=60, what="units and positions on the board")
    assert items[ids["blind"]]["stale"] and not items[ids["moto"]]["stale"]
    return ids


def report_and_wait(system, description: str, where, category: str) -> dict:
    with api(system, Role.call_taker) as taker:
        r = taker.post("/api/v1/reports", json={"channel": "phone_110", "description": description,
                                                "category": category, "location": {"lat": where[0], "lon": where[1]}})
        assert r.status_code == 202, r.text
        return incident_with_recommendation(taker, r.json()["report_id"])


def incident_with_recommendation(client, report_id: str) -> dict:
    def linked():
        body = client.get(f"/api/v1/reports/{report_id}").json()
        return body.get("incident_id")
    incident_id = wait_for(linked, timeout=60, what=f"report {report_id} on an incident")

    def recommended():
        body = client.get(f"/api/v1/incidents/{incident_id}").json()
        return body if body.get("recommendation") else None
    return wait_for(recommended, timeout=60, what=f"a recommendation for {incident_id}")


def test_incident_to_recommendation_to_assignment_to_the_scene(system, units):
    incident = report_and_wait(system, "Ada jambret HP di depan halte Jagakarsa, pelaku naik motor", SCENE,
                               "street_robbery")
    incident_id = incident["incident_id"]
    rec = incident["recommendation"]
    candidates = {c["unit_id"]: c for c in rec["candidates"]}
    excluded = {x["unit_id"]: x["reason"] for x in rec["excluded"]}
    assert rec["candidates"][0]["unit_id"] == units["moto"]  # nearest and fastest, and meets the plan
    assert units["car"] in candidates and all(c["reasons"] for c in rec["candidates"])
    assert any("jarak" in reason for reason in candidates[units["moto"]]["reasons"])
    assert candidates[units["moto"]]["meets"] and candidates[units["car"]]["meets"]
    order = [c["unit_id"] for c in rec["candidates"]]
    assert units["blind"] not in candidates
    assert units["far"] not in candidates or order.index(units["far"]) > order.index(units["car"])
    assert "posisi" in excluded.get(units["blind"], "posisi") and rec["excluded_counts"]

    top = units["moto"]
    with api(system, Role.dispatcher) as one, api(system, Role.dispatcher) as two:
        with ThreadPoolExecutor(2) as pool:  # two dispatchers click "assign" on the same unit at once
            answers = list(pool.map(lambda c: c.post(f"/api/v1/incidents/{incident_id}/assignments",
                                                     json={"unit_id": top}), (one, two)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 409], [a.text for a in answers]
    won = next(a for a in answers if a.status_code == 201).json()
    lost = next(a for a in answers if a.status_code == 409).json()
    assert won["status"] == "dispatched" and won["unit_id"] == top and "ditugaskan" in lost["detail"]

    with api(system, Role.field_unit, unit_id=top) as phone:
        accepted = phone.post(f"/api/v1/assignments/{won['assignment_id']}/accept")
        assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text
        illegal = phone.post(f"/api/v1/units/{top}/status", json={"status": "dispatched"})
        assert illegal.status_code == 409 and "dalam perjalanan" in illegal.json()["detail"]
        assert "on_scene" in illegal.json()["detail"]  # says which moves are allowed
        arrived = phone.post(f"/api/v1/units/{top}/status", json={"status": "on_scene", "incident_id": incident_id})
        assert arrived.status_code == 200, arrived.text
        assert arrived.json()["status"] == "on_scene" and arrived.json()["previous_status"] == "en_route"
        not_mine = phone.post(f"/api/v1/units/{units['car']}/status", json={"status": "break"})
        assert not_mine.status_code == 403
        backup = phone.post(f"/api/v1/incidents/{incident_id}/backup", json={"reason": "pelaku lebih dari satu"})
        assert backup.status_code == 202, backup.text

    with api(system, Role.dispatcher) as client:
        def on_scene():
            body = client.get(f"/api/v1/incidents/{incident_id}").json()
            return body["status"] == "on_scene" and body["intervals"]["response_s"] is not None and body
        body = wait_for(on_scene, timeout=30, what="the incident on scene with its intervals")
        assignment = body["assignments"][0]
        assert assignment["status"] == "on_scene" and assignment["acknowledged_at"] and assignment["arrived_at"]
        intervals = body["intervals"]
        assert intervals["call_processing_s"] >= 0 and intervals["turnout_s"] >= 0 and intervals["travel_s"] >= 0
        assert intervals["response_s"] == pytest.approx(intervals["turnout_s"] + intervals["travel_s"], abs=0.01)
        summaries = " | ".join(item["summary"] for item in body["timeline"])
        assert "ditugaskan" in summaries and "menerima penugasan" in summaries and "di TKP" in summaries

        def backup_recommended():
            rec = client.get(f"/api/v1/incidents/{incident_id}/recommendations").json()
            return rec.get("trigger") == "recommendation.requested" and rec
        rec = wait_for(backup_recommended, timeout=30, what="a backup recommendation")
        assert top not in [c["unit_id"] for c in rec["candidates"]] and rec["candidates"]
        assert "meminta bantuan" in " | ".join(i["summary"] for i in
                                                client.get(f"/api/v1/incidents/{incident_id}").json()["timeline"])
        day = client.get("/api/v1/intervals").json()
        assert sum(g["response"]["count"] for g in day["groups"]) >= 1, day
        board = {u["unit_id"]: u for u in client.get("/api/v1/units").json()["items"]}
        assert board[top]["status"] == "on_scene" and board[top]["availability"] == "not_available"


def test_an_unacknowledged_assignment_alerts_and_is_recommended_again(system, units):
    incident = report_and_wait(system, "Motor saya dicuri di parkiran pasar Jagakarsa", ELSEWHERE, "vehicle_theft")
    incident_id = incident["incident_id"]
    with api(system, Role.dispatcher) as client:
        r = client.post(f"/api/v1/incidents/{incident_id}/assignments", json={"unit_id": units["car"]})
        assert r.status_code == 201, r.text
    with api(system, Role.supervisor) as supervisor:  # nobody answers within SPKT_ASSIGNMENT_ACK_S (3 s)
        def alerted():
            items = supervisor.get("/api/v1/escalations").json()["items"]
            return [e for e in items if e["incident_id"] == incident_id and e["why"] == "assignment_unacknowledged"]
        alert = wait_for(alerted, timeout=30, what="the unacknowledged assignment before the supervisor")
        assert units["car"] in alert[0]["detail"]

        def again():
            rec = supervisor.get(f"/api/v1/incidents/{incident_id}/recommendations").json()
            return rec.get("trigger") == "assignment.unacknowledged" and rec
        rec = wait_for(again, timeout=30, what="a fresh recommendation after the alert")
        assert units["car"] not in [c["unit_id"] for c in rec["candidates"]]  # it is on this incident already
        assignment = supervisor.get(f"/api/v1/incidents/{incident_id}").json()["assignments"][0]
    with api(system, Role.field_unit, unit_id=units["car"]) as phone:  # the unit answers at last: it cannot
        no_reason = phone.post(f"/api/v1/assignments/{assignment['assignment_id']}/decline", json={})
        assert no_reason.status_code == 422
        declined = phone.post(f"/api/v1/assignments/{assignment['assignment_id']}/decline",
                              json={"reason": "ban bocor, menunggu derek"})
        assert declined.status_code == 200 and declined.json()["status"] == "declined", declined.text
    with api(system, Role.dispatcher) as client:
        def declined_and_recommended():
            body = client.get(f"/api/v1/incidents/{incident_id}").json()
            rec = body["recommendation"]
            return (rec["trigger"] == "assignment.declined" and body["assignments"][0]["status"] == "declined"
                    and body)
        body = wait_for(declined_and_recommended, timeout=30, what="the decline recorded and recommended again")
        assert body["assignments"][0]["end_reason"] == "ban bocor, menunggu derek"
        assert units["car"] not in [c["unit_id"] for c in body["recommendation"]["candidates"]]  # it declined
        wait_for(lambda: {u["unit_id"]: u["status"] for u in client.get("/api/v1/units").json()["items"]}
                 [units["car"]] == "available", timeout=30, what="the unit free for other incidents")


def test_the_panic_button_opens_a_p1_incident_and_recommends_the_nearest_backup(system, units):
    pressed = units["far"]
    with api(system, Role.field_unit, unit_id=pressed) as phone:
        r = phone.post(f"/api/v1/units/{pressed}/panic", json={"note": "dikepung massa"})
        assert r.status_code == 202, r.text
    with api(system, Role.dispatcher) as client:
        incident = incident_with_recommendation(client, r.json()["report_id"])
    assert incident["priority"] == "P1" and incident["category"] == "officer_emergency"
    candidates = [c["unit_id"] for c in incident["recommendation"]["candidates"]]
    assert candidates[0] == units["far2"], incident["recommendation"]  # the nearest other unit
    assert pressed not in candidates
    with api(system, Role.dispatcher) as client:  # officer_emergency is configured for automatic assignment
        def assigned():
            body = client.get(f"/api/v1/incidents/{incident['incident_id']}").json()
            return body["assignments"] and body
        body = wait_for(assigned, timeout=30, what="the nearest backup assigned automatically")
    assignment = body["assignments"][0]
    assert (assignment["unit_id"], assignment["automatic"]) == (units["far2"], True)


def kept_pages(client) -> float:
    """How many incident pages the API has answered as kept (its Prometheus counter)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('spkt_incident_pages_total{how="kept"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_kept_incident_page_is_answered_until_the_incident_changes(system):
    """services/api/pages.py: a console's repeated reads are answered from the page built before,
    and the next read after a change shows it."""
    where = (SCENE[0] - 0.0300, SCENE[1] + 0.0300)  # ~4.7 km from the other tests' scene
    incident_id = report_and_wait(system, "Keributan warga di depan minimarket, dua orang terluka", where,
                                  "brawl")["incident_id"]
    with api(system, Role.dispatcher) as dispatcher, api(system, Role.supervisor) as supervisor:
        def settled():  # the reporter's receipt and the like may still be changing it
            one, two = (dispatcher.get(f"/api/v1/incidents/{incident_id}") for _ in range(2))
            return one.status_code == 200 and one.content == two.content and one
        first = wait_for(settled, timeout=30, what="two reads of the page alike")
        assert first.headers["content-type"] == "application/json"
        kept_before = kept_pages(dispatcher)
        again = [dispatcher.get(f"/api/v1/incidents/{incident_id}") for _ in range(5)]
        assert all(r.status_code == 200 for r in again)
        assert sum(r.content == first.content for r in again) >= 4  # the projection may change it once more
        assert kept_pages(dispatcher) - kept_before >= 4

        marked = supervisor.post(f"/api/v1/incidents/{incident_id}/shareable", json={"reason": "keluarga korban"})
        assert marked.status_code == 202, marked.text

        def shows_it():
            body = dispatcher.get(f"/api/v1/incidents/{incident_id}").json()
            return any("pelacak publik" in item["summary"] for item in body["timeline"]) and body
        body = wait_for(shows_it, timeout=30, what="the page to show the incident marked shareable")
        assert body["chain"]["valid"] and len(body["timeline"]) > len(first.json()["timeline"])

        # What the kept pages do not answer, the route does, as before.
        assert dispatcher.get("/api/v1/incidents/no-such-incident").status_code == 404
        bad_token = {"Authorization": "Bearer x"}
        assert dispatcher.get(f"/api/v1/incidents/{incident_id}", headers=bad_token).status_code == 401
    with api(system, Role.field_unit, unit_id="dsp-not-assigned") as phone:
        refused = phone.get(f"/api/v1/incidents/{incident_id}")
        assert refused.status_code == 403 and "tidak ditugaskan" in refused.json()["detail"]
    with api(system, Role.dispatcher, jurisdiction="polres-jakut") as elsewhere:
        out_of_scope = elsewhere.get(f"/api/v1/incidents/{incident_id}")
        assert out_of_scope.status_code == 403 and "wilayah" in out_of_scope.json()["detail"]
