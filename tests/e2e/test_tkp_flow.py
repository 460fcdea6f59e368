"""The scene through the API on the running stack: TPTKP, olah TKP, evidence and its custody, closure
with an LP, the EIDO export, a guard's missed check-in, and a record edited behind the system's back."""
import os
import sqlite3
import subprocess
import sys
import uuid

import httpx
import pytest

from deploy.stack import settings_environment
from services.api.auth import Role
from services.tkp import eido
from tests.support import api_client, running_system, wait_for

pytestmark = pytest.mark.e2e

# Away from the other end-to-end tests' units on the same broker (Monas, Blok M, Tanah Abang,
# Jagakarsa), so their recommendations do not meet.
SCENE = (-6.2840, 106.8440)  # Pasar Minggu, Jakarta Selatan
TPTKP = ("arrival_reported", "victims_aided", "scene_secured", "police_line", "evidence_preserved",
         "witnesses_recorded", "handed_over")
OLAH = ("team_arrived", "observation", "photographed", "sketched", "evidence_collected", "scene_released")


@pytest.fixture(scope="module")
def system(kafka_settings, tmp_path_factory):
    with running_system(kafka_settings, tmp_path_factory.mktemp("e2e-tkp"), command_wait_s=15.0,
                        assignment_ack_s=600.0) as settings:
        yield settings


api = api_client


@pytest.fixture(scope="module")
def units(system):
    run = uuid.uuid4().hex[:6]
    spec = {"car": ("car", []), "inafis": ("inafis", ["identification"]),
            "reskrim": ("reskrim", ["investigation", "olah_tkp"]), "guard": ("car", [])}
    ids = {name: f"tkp-{name}-{run}" for name in spec}
    with api(system, Role.admin) as admin:
        for name, (kind, caps) in spec.items():
            r = admin.post("/api/v1/units", json={"unit_id": ids[name], "callsign": f"{name.upper()}-{run}",
                                                   "kind": kind, "station": "polsek-pasar-minggu",
                                                   "capabilities": caps})
            assert r.status_code == 201, r.text
    for n, name in enumerate(spec):
        with api(system, Role.field_unit, unit_id=ids[name]) as phone:
            r = phone.post(f"/api/v1/units/{ids[name]}/position",
                           json={"lat": SCENE[0] + 0.002 * (n + 1), "lon": SCENE[1]})
            assert r.status_code == 202, r.text
    with api(system, Role.dispatcher) as board:
        wait_for(lambda: all(u["position"] for u in board.get("/api/v1/units").json()["items"]
                             if u["unit_id"] in ids.values()) and
                 len([u for u in board.get("/api/v1/units").json()["items"] if u["unit_id"] in ids.values()]) == 4,
                 timeout=60, what="the scene units on the board")
    return ids


def send_to_scene(system, incident_id: str, unit_id: str) -> None:
    with api(system, Role.dispatcher) as dispatcher:
        r = dispatcher.post(f"/api/v1/incidents/{incident_id}/assignments", json={"unit_id": unit_id})
        assert r.status_code == 201, r.text
        assignment_id = r.json()["assignment_id"]
    with api(system, Role.field_unit, unit_id=unit_id) as phone:
        assert phone.post(f"/api/v1/assignments/{assignment_id}/accept").status_code == 200
        r = phone.post(f"/api/v1/units/{unit_id}/status", json={"status": "on_scene", "incident_id": incident_id})
        assert r.status_code == 200, r.text


def open_homicide(system) -> str:
    with api(system, Role.call_taker) as taker:
        r = taker.post("/api/v1/reports", json={
            "channel": "phone_110", "category": "homicide",
            "description": "Ditemukan mayat laki-laki di gang belakang pasar Pasar Minggu, ada bercak darah",
            "location": {"lat": SCENE[0], "lon": SCENE[1]}, "reporter": {"name": "Budi", "phone": "081234567890"}})
        assert r.status_code == 202, r.text
        report_id = r.json()["report_id"]
        return wait_for(lambda: taker.get(f"/api/v1/reports/{report_id}").json().get("incident_id"), timeout=60,
                        what="the homicide report on an incident")


def incident_rows(db_file, incident_id: str) -> dict:
    """What the read model says of one incident, without what depends on the order of arrival
    (the timeline's position and links, processing times)."""
    db = sqlite3.connect(str(db_file))
    try:
        def rows(sql: str) -> list:
            return sorted(db.execute(sql, (incident_id,)).fetchall(), key=repr)
        return {
            "incident": rows("SELECT number, status, category, priority, disposition, lp_number, apco_code, "
                             "scene_status FROM incidents WHERE incident_id = ?"),
            "records": rows("SELECT record_id, type, prev_hash, hash, content FROM tkp_records WHERE incident_id = ?"),
            "steps": rows("SELECT event_id, phase, step, out_of_order FROM scene_steps WHERE incident_id = ?"),
            "evidence": rows("SELECT evidence_id, seal_number, holder, description, corrections FROM evidence "
                             "WHERE incident_id = ?"),
            "custody": rows("SELECT event_id, sequence, from_holder, \"to\" FROM custody_records WHERE incident_id = ?"),
            "deadlines": rows("SELECT key, due_at, met_at, reference FROM legal_deadlines WHERE incident_id = ?"),
            "timeline": rows("SELECT entry_id, type, actor, summary FROM timeline WHERE incident_id = ?"),
            "assignments": rows("SELECT assignment_id, unit_id, status FROM assignments WHERE incident_id = ?"),
        }
    finally:
        db.close()


def step(client, incident_id: str, phase: str, name: str, **extra) -> httpx.Response:
    path = "tptkp" if phase == "tptkp" else "olah-tkp"
    return client.post(f"/api/v1/incidents/{incident_id}/{path}", json={"step": name, **extra})


def test_a_homicide_scene_from_first_actions_to_an_lp_and_an_eido_document(system, units):
    incident_id = open_homicide(system)
    send_to_scene(system, incident_id, units["car"])
    with api(system, Role.field_unit, unit_id=units["car"]) as car:
        first = step(car, incident_id, "tptkp", "arrival_reported", note="korban tidak bergerak")
        assert first.status_code == 201, first.text
        early = step(car, incident_id, "tptkp", "police_line")  # before victims were aided: recorded, flagged
        assert early.status_code == 201 and "victims_aided" in early.json()["out_of_order"], early.text
        again = step(car, incident_id, "tptkp", "police_line")
        assert again.status_code == 201  # a repeat: answered, not written twice
        bad = step(car, incident_id, "tptkp", "dancing")
        assert bad.status_code == 422 and "langkah" in bad.text
    with api(system, Role.field_unit, unit_id=units["inafis"]) as stranger:  # not assigned (yet)
        assert step(stranger, incident_id, "olah_tkp", "team_arrived").status_code == 403

    with api(system, Role.dispatcher) as dispatcher:
        refused = dispatcher.post(f"/api/v1/incidents/{incident_id}/close",
                                  json={"disposition": "lp_made", "lp": {"model": "B"}, "summary": "-"})
        assert refused.status_code == 409, refused.text
        assert "Belum lengkap" in refused.json()["detail"] and "olah TKP" in refused.json()["detail"]

    # The processing team is sent through dispatch like any unit.
    send_to_scene(system, incident_id, units["inafis"])
    send_to_scene(system, incident_id, units["reskrim"])
    with api(system, Role.field_unit, unit_id=units["car"]) as car:
        for name in TPTKP:
            assert step(car, incident_id, "tptkp", name).status_code == 201
    with api(system, Role.field_unit, unit_id=units["reskrim"]) as reskrim:
        evidence = []
        for seal, what in (("SGL-PM-001", "Pisau dapur bergagang hitam"), ("SGL-PM-002", "Ponsel korban, layar retak")):
            r = reskrim.post(f"/api/v1/incidents/{incident_id}/evidence",
                             json={"description": what, "kind": "barang bukti", "seal_number": f"{seal}-{units['car'][-6:]}",
                                   "found_at": {"lat": SCENE[0], "lon": SCENE[1]}, "found_where": "gang belakang pasar"})
            assert r.status_code == 201, r.text
            evidence.append(r.json()["evidence_id"])
        reused = reskrim.post(f"/api/v1/incidents/{incident_id}/evidence",
                              json={"description": "Sandal jepit", "kind": "barang bukti",
                                    "seal_number": f"SGL-PM-001-{units['car'][-6:]}"})
        assert reused.status_code == 409 and "segel" in reused.json()["detail"]
        for item, to, why in ((evidence[0], "Penyidik Reskrim Polres Jaksel", "penyidikan"),
                              (evidence[0], "Tahti Polres Jaksel", "penyimpanan"),
                              (evidence[1], "Labfor Polri", "pemeriksaan forensik digital")):
            r = reskrim.post(f"/api/v1/evidence/{item}/custody", json={"to": to, "reason": why})
            assert r.status_code == 201, r.text
        knife = reskrim.get(f"/api/v1/evidence/{evidence[0]}").json()
        assert [(c["from_holder"], c["to"]) for c in knife["custody"]] == [
            (units["reskrim"], "Penyidik Reskrim Polres Jaksel"),
            ("Penyidik Reskrim Polres Jaksel", "Tahti Polres Jaksel")]
        assert knife["holder"] == "Tahti Polres Jaksel" and knife["chain_valid"] is True
    with api(system, Role.field_unit, unit_id=units["inafis"]) as inafis:
        for name in OLAH:
            assert step(inafis, incident_id, "olah_tkp", name).status_code == 201

    with api(system, Role.dispatcher) as dispatcher:
        closed = dispatcher.post(f"/api/v1/incidents/{incident_id}/close",
                                 json={"disposition": "lp_made", "lp": {"model": "B"}, "difficulty": "sulit",
                                       "summary": "Korban diidentifikasi; perkara dilimpahkan ke Reskrim"})
        assert closed.status_code == 200, closed.text
        lp_number = closed.json()["lp_number"]
        assert lp_number.startswith("LP/B/") and "/SPKT/" in lp_number
        # Closing frees the units still on it: available again, their assignments ended ("cleared").
        ours = {units[k] for k in ("car", "inafis", "reskrim")}

        def board():
            return {u["unit_id"]: u for u in dispatcher.get("/api/v1/units").json()["items"] if u["unit_id"] in ours}

        freed = wait_for(lambda: (b := board()) and all(u["status"] == "available" and u["incident_id"] is None
                                                        for u in b.values()) and b,
                         timeout=30, what="the closed incident's units available again")
        assert set(freed) == ours
        ended = wait_for(lambda: [a for a in dispatcher.get(f"/api/v1/incidents/{incident_id}").json()["assignments"]
                                  if a["ended_at"]] or None, timeout=30, what="the assignments ended")
        assert {a["unit_id"] for a in ended} == ours and {a["status"] for a in ended} == {"cleared"}
        body = wait_for(lambda: (b := dispatcher.get(f"/api/v1/incidents/{incident_id}").json())["legal_deadlines"]
                        and b, timeout=30, what="the legal clock on the incident")
        assert body["status"] == "closed" and body["lp_number"] == lp_number and body["apco_code"] == "RPT"
        assert body["chain"]["valid"] is True and body["chain"]["tkp"]["checked"] >= 20
        assert {d["key"] for d in body["legal_deadlines"]} >= {"sp2hp-a1", "spdp"}
        assert len(body["tkp"]["tptkp"]) == len(TPTKP) and len(body["tkp"]["olah_tkp"]) == len(OLAH)
        warned = [s for s in body["tkp"]["tptkp"] if s["step"] == "police_line"][0]
        assert warned["out_of_order"] and warned["warning"]
        summaries = " | ".join(item["summary"] for item in body["timeline"])
        assert "STTLP" in summaries and "Serah terima barang bukti" in summaries

        document = dispatcher.get(f"/api/v1/incidents/{incident_id}/eido")
        assert document.status_code == 200, document.text
        assert eido.validate(document.json()) == []
        text = document.text
        assert lp_number in text and "SGL-PM-002" in text and "Labfor Polri" in text
        (system.state_dir / "eido-example.json").write_text(text)  # for whoever reads the run's files

        # The investigator sends SP2HP A1: its deadline is met. A correction is a new record.
        letter = dispatcher.post(f"/api/v1/incidents/{incident_id}/letters",
                                 json={"key": "sp2hp-a1", "reference": "B/101/XI/2026/Reskrim"})
        assert letter.status_code == 201 and letter.json()["code"] == "A1", letter.text
        unknown = dispatcher.post(f"/api/v1/incidents/{incident_id}/letters",
                                  json={"key": "sp2hp-x", "reference": "B/102/XI/2026/Reskrim"})
        assert unknown.status_code == 409 and "sp2hp-a1" in unknown.json()["detail"]
        fixed = dispatcher.post(f"/api/v1/evidence/{evidence[1]}/corrections",
                                json={"changes": {"description": "Ponsel korban merek X, layar retak"},
                                      "reason": "salah tulis saat pencatatan"})
        assert fixed.status_code == 201, fixed.text
        phone = dispatcher.get(f"/api/v1/evidence/{evidence[1]}").json()
        assert phone["description"].startswith("Ponsel korban merek X") and phone["corrections"]
        assert phone["chain_valid"] is True
        deadlines = {d["key"]: d for d in dispatcher.get(f"/api/v1/incidents/{incident_id}").json()["legal_deadlines"]}
        assert deadlines["sp2hp-a1"]["met_at"] and deadlines["sp2hp-a1"]["reference"] == "B/101/XI/2026/Reskrim"

    # The read model made again from Kafka holds the same incident as the live one.
    env = {**os.environ, **settings_environment(system)}
    rebuilt_url = f"sqlite:///{system.state_dir / 'rebuilt.db'}"
    rebuilt = subprocess.run([sys.executable, "-m", "spkt.cli", "projection", "rebuild", "--into", rebuilt_url],
                             env=env, capture_output=True, text=True, timeout=300)
    assert rebuilt.returncode == 0 and "events applied" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr
    again = subprocess.run([sys.executable, "-m", "spkt.cli", "projection", "rebuild", "--into", rebuilt_url],
                           env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "fresh database" in again.stderr  # never over a read model
    assert incident_rows(system.state_dir / "spkt.db", incident_id) == \
        incident_rows(system.state_dir / "rebuilt.db", incident_id)

    # Someone edits a record in the database behind the system's back: the chain says where.
    db = sqlite3.connect(str(system.state_dir / "spkt.db"))
    try:
        row = db.execute("SELECT record_id FROM tkp_records WHERE incident_id = ? AND type = ?",
                         (incident_id, "evidence.custody-transferred")).fetchone()
        db.execute("UPDATE tkp_records SET content = json_set(content, '$.to', 'Gudang pribadi') WHERE record_id = ?",
                   (row[0],))
        db.commit()
    finally:
        db.close()
    with api(system, Role.supervisor) as supervisor:
        check = supervisor.get(f"/api/v1/incidents/{incident_id}/chain").json()
        assert check["valid"] is False and check["tkp"]["record_id"] == row[0] and check["timeline"]["valid"]
    env = {**os.environ, **settings_environment(system)}
    cli = subprocess.run([sys.executable, "-m", "spkt.cli", "verify", "incident", incident_id], env=env,
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1 and "RUSAK" in cli.stdout and row[0] in cli.stdout, cli.stdout + cli.stderr


def test_a_guard_who_misses_a_check_in_raises_an_alert(system, units):
    incident_id = open_homicide(system)
    guard = units["guard"]
    with api(system, Role.dispatcher) as dispatcher:
        r = dispatcher.post("/api/v1/duties", json={"kind": "penjagaan", "unit_ids": [guard], "incident_id": incident_id,
                                                    "area": "gang belakang pasar", "check_in_every_min": 0.05})
        assert r.status_code == 201, r.text
        duty_id = r.json()["duty_id"]
        bad = dispatcher.post("/api/v1/duties", json={"kind": "penjagaan", "unit_ids": ["no-such-unit"]})
        assert bad.status_code == 404
    with api(system, Role.supervisor) as supervisor:  # 3 s without a check-in
        def alerted():
            items = supervisor.get("/api/v1/escalations").json()["items"]
            return [e for e in items if e["incident_id"] == incident_id and e["why"] == "guard_check_in_missed"]
        alert = wait_for(alerted, timeout=60, what="the missed check-in before the supervisor")
        assert guard in alert[0]["detail"]
        duty = wait_for(lambda: [d for d in supervisor.get(f"/api/v1/incidents/{incident_id}").json()["duties"]
                                 if d["duty_id"] == duty_id and d["missed_check_ins"] >= 1], timeout=30,
                        what="the missed check-in on the duty")
        assert duty[0]["kind"] == "penjagaan"
    with api(system, Role.field_unit, unit_id=guard) as phone:
        r = phone.post(f"/api/v1/duties/{duty_id}/check-in", json={"unit_id": guard, "note": "aman"})
        assert r.status_code == 202, r.text
        other = phone.post(f"/api/v1/duties/{duty_id}/check-in", json={"unit_id": units["car"]})
        assert other.status_code == 403
    # On a duty the guard is conditionally available: proposed with a warning, not as a free unit.
    # The module's other units (free again once the homicide closed) go on a break first, or the
    # nearer free ones would be proposed before it.
    others = [units[k] for k in ("car", "inafis", "reskrim")]
    with api(system, Role.dispatcher) as dispatcher:
        for unit_id in others:
            r = dispatcher.post(f"/api/v1/units/{unit_id}/status", json={"status": "break"})
            assert r.status_code in (200, 409), r.text  # 409: busy on an incident, not proposed either
        wait_for(lambda: all(u["status"] != "available" for u in dispatcher.get("/api/v1/units").json()["items"]
                             if u["unit_id"] in others), timeout=30, what="the other units off the board")
    with api(system, Role.call_taker) as taker:
        r = taker.post("/api/v1/reports", json={"channel": "phone_110", "category": "street_robbery",
                                                "description": "Jambret tas di depan stasiun Pasar Minggu",
                                                "location": {"lat": SCENE[0] + 0.009, "lon": SCENE[1]}})
        report_id = r.json()["report_id"]
        other_incident = wait_for(lambda: taker.get(f"/api/v1/reports/{report_id}").json().get("incident_id"),
                                  timeout=60, what="the robbery on an incident")
        rec = wait_for(lambda: taker.get(f"/api/v1/incidents/{other_incident}").json().get("recommendation"),
                       timeout=60, what="a recommendation for the robbery")
    mentioned = {c["unit_id"]: c for c in rec["candidates"]}
    assert guard in mentioned, rec
    assert mentioned[guard]["conditional"] and mentioned[guard]["warnings"]
    with api(system, Role.dispatcher) as dispatcher:
        assert dispatcher.post(f"/api/v1/duties/{duty_id}/complete").status_code == 202
