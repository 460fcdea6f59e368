"""EIDO export: documents validate against the NENA schema copied to schemas/eido/, and say what the view says."""
from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import get_args

import pytest

from services.tkp import eido

WIB = timezone(timedelta(hours=7))
T0 = datetime(2026, 11, 28, 1, 12, tzinfo=WIB)
ISSUED = datetime(2026, 11, 28, 9, 30, tzinfo=WIB)
AGENCY = "polres-metro-jaksel.polri.go.id"
AGENCY_NAME = "SPKT Polres Metro Jakarta Selatan"
LP = "LP/B/12/XI/2026/SPKT/POLRES METRO JAKARTA SELATAN"

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "schemas" / "eido" / "sample-call-transfer.json"
# SHA-256 of NENA's files as found in shared/eido/ (schemas/eido/README.md): the copies stay verbatim.
VERBATIM = {"eido-openapi.yaml": "b63f27d95e2b2609506b34251faacf65bd9b80a96b94b40c836d3eaf74cb7dc7",
            "sample-call-transfer.json": "4f98a553e6e095e25c96a377a068c18ea87fe1674c65199f9a2f7afe0d5bf57d"}
OFFSET_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}$")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def full_view() -> dict:
    return {
        "incident_id": "inc-7f3a", "number": "SPKT/2026/11/000457", "status": "closed",
        "category": "homicide", "category_name": "Pembunuhan / penemuan mayat", "priority": "P1",
        "summary": "Laki-laki ditemukan tewas dengan luka tusuk di gang belakang pasar",
        "opened_at": T0, "updated_at": at(480), "closed_at": at(470),
        "location": {"lat": -6.2441, "lon": 106.8003, "address": "Jl. Kebayoran Lama No. 12, Kebayoran Lama",
                     "landmark": "gang belakang Pasar Kebayoran Lama", "accuracy_m": 15.0},
        "jurisdiction": "polsek-kebayoran-lama", "polres": "polres-metro-jaksel",
        "disposition": "lp_made", "summary_at_close": "LP dibuat, perkara dilimpahkan ke Satreskrim", "lp_number": LP,
        "reports": [
            {"report_id": "rep-1", "channel": "phone_110", "received_at": T0,
             "description": "Ada orang tergeletak berdarah di gang belakang pasar",
             "reporter": {"name": "Siti Aminah", "phone": "0812-3456-7890"}, "merged": False},
            {"report_id": "rep-2", "channel": "walk_in", "received_at": at(25),
             "description": "Saya melihat dua orang berkelahi sebelum korban jatuh",
             "reporter": {}, "merged": True},
        ],
        "assignments": [
            {"assignment_id": "as-1", "unit_id": "u-jaksel-r2-07", "callsign": "JS-R2-07", "kind": "motorcycle",
             "status": "cleared", "assigned_at": at(2), "arrived_at": at(9), "ended_at": at(240)},
            {"assignment_id": "as-2", "unit_id": "u-jaksel-inafis-1", "callsign": "JS-INAFIS-1", "kind": "inafis",
             "status": "on_scene", "assigned_at": at(20), "arrived_at": at(55), "ended_at": None},
            {"assignment_id": "as-3", "unit_id": "u-jaksel-reskrim-3", "callsign": "JS-RESKRIM-3", "kind": "reskrim",
             "status": "en_route", "assigned_at": at(30), "arrived_at": None, "ended_at": None},
        ],
        "persons": [
            {"person_id": "p-1", "role": "reporter", "name": "Siti Aminah", "phone": "+62 812 3456 7890"},
            {"person_id": "p-2", "role": "victim", "name": "Budi Santoso", "phone": None},
            {"person_id": "p-3", "role": "witness", "name": "Joko Prasetyo", "phone": "081298765432"},
            {"person_id": "p-4", "role": "suspect", "name": None, "phone": None},
        ],
        "notes": [
            {"at": at(1), "actor": "operator-ani", "text": "Penelepon panik, <korban> tidak bergerak"},
            {"at": at(10), "actor": "/spkt/dispatch", "text": "JS-R2-07 tiba di TKP, garis polisi dipasang"},
            {"at": at(60), "actor": "operator-ani", "text": "Inafis mulai olah TKP"},
        ],
        "evidence": [
            {"evidence_id": "BB-1", "description": "Pisau dapur bernoda darah", "kind": "senjata_tajam",
             "seal_number": "SEGEL/001/XI/2026", "found_at": {"lat": -6.24412, "lon": 106.80031},
             "collected_by": "Bripka Andi", "collected_at": at(70),
             "custody": [
                 {"from": "Bripka Andi", "to": "Inafis Polres Metro Jaksel", "at": at(120), "reason": "uji sidik jari"},
                 {"from": "Inafis Polres Metro Jaksel", "to": "Puslabfor Polri", "at": at(400), "reason": "uji DNA"},
             ]},
            {"evidence_id": "BB-2", "description": "Ponsel korban", "kind": "elektronik",
             "seal_number": "SEGEL/002/XI/2026", "found_at": None, "collected_by": "Aipda Rina",
             "collected_at": at(90),
             "custody": [{"from": "Aipda Rina", "to": "Satreskrim Polres Metro Jaksel", "at": at(300),
                          "reason": "pemeriksaan isi ponsel"}]},
        ],
        "merges": [{"incident_id": "inc-7f40", "relation": "REPLACING", "at": at(26)}],
    }


def minimal_view() -> dict:
    return {
        "incident_id": "inc-0001", "number": None, "status": "received", "category": None, "category_name": None,
        "priority": None, "summary": "", "opened_at": T0, "updated_at": None, "closed_at": None,
        "location": {"lat": None, "lon": None, "address": None, "landmark": None, "accuracy_m": None},
        "jurisdiction": None, "polres": None, "disposition": None, "summary_at_close": None, "lp_number": None,
        "reports": [], "assignments": [], "persons": [], "notes": [], "evidence": [], "merges": [],
    }


def export(view: dict) -> dict:
    return eido.incident_document(view, agency_id=AGENCY, agency_name=AGENCY_NAME, issued_at=ISSUED)


def by_id(document: dict) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for key, value in document.items():
        if key.endswith("Component") and isinstance(value, list):
            for component in value:
                found[component["$id"]] = component
    return found


def timestamps(node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from timestamps(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from timestamps(v, key)
    elif isinstance(node, str) and re.search(r"(?i)timestamp$|date$|^eta$", key):
        yield node


# --- schema -----------------------------------------------------------------------------------------

def test_schema_copy_is_verbatim():
    for name, digest in VERBATIM.items():
        assert hashlib.sha256((REPO / "schemas" / "eido" / name).read_bytes()).hexdigest() == digest, name


def test_load_schema_tolerates_the_min_items_typo_and_external_refs():
    assert eido.SCHEMA_PATH == REPO / "schemas" / "eido" / "eido-openapi.yaml"
    assert "minItems: 1," in eido.SCHEMA_PATH.read_text(encoding="utf-8")
    schema = eido.load_schema()
    assert schema["$ref"] == "#/components/schemas/EmergencyIncidentDataObjectType"
    schemas = schema["components"]["schemas"]
    roles = schemas["AgentType"]["allOf"][1]["properties"]["agentRoleRegistryText"]
    assert roles["minItems"] == 1 and type(roles["minItems"]) is int
    assert schemas["PersonInformationType"]["allOf"][1]["properties"]["ncPersonComponent"]["type"] == "object"
    text = json.dumps(schema)
    assert "NIEMComponents" not in text and '"1,"' not in text
    assert eido.load_schema() is schema


def test_an_agent_without_a_role_fails_min_items():
    document = export(full_view())
    document["agentComponent"][0]["agentRoleRegistryText"] = []
    assert any("agentComponent[0].agentRoleRegistryText" in e for e in eido.validate(document))


def test_sample_call_transfer_validates():
    assert eido.validate(json.loads(SAMPLE.read_text(encoding="utf-8"))) == []


def test_broken_documents_are_reported():
    document = export(full_view())
    del document["agencyComponent"]
    errors = eido.validate(document)
    assert errors and any("'agencyComponent' is a required property" in e for e in errors)

    document = export(full_view())
    document["eidoVersion"] = 1.0
    document["callComponent"][0]["direction"] = "masuk"
    document["incidentComponent"]["lastUpdateTimeStamp"] = "2026-11-28 01:12"
    errors = eido.validate(document)
    assert any(e.startswith("$.eidoVersion:") for e in errors)
    assert any(e.startswith("$.callComponent[0].direction:") for e in errors)
    assert any(e.startswith("$.incidentComponent.lastUpdateTimeStamp:") for e in errors)
    assert all(": " in e for e in errors)


def test_time_without_offset_is_invalid():
    document = export(minimal_view())
    document["lastUpdateTimeStamp"] = "2026-11-28T01:12:00"
    assert eido.validate(document) == ["$.lastUpdateTimeStamp: '2026-11-28T01:12:00' is not a 'date-time'"]


# --- export -----------------------------------------------------------------------------------------

def test_full_incident_validates():
    document = export(full_view())
    assert eido.validate(document) == []
    json.dumps(document)  # plain JSON, nothing left as datetime


def test_full_incident_maps_the_incident():
    document = export(full_view())
    urn = f"urn:emergency:uid:incidentid:inc-7f3a:{AGENCY}"
    assert document["$id"] == urn and document["eidoVersion"] == "1.0"
    assert document["lastUpdateTimeStamp"] == "2026-11-28T09:30:00+07:00"
    incident = document["incidentComponent"]
    assert incident["$id"] == urn
    assert incident["incidentTypeInternalCode"] == "homicide"
    assert incident["incidentTypeCommonRegistryText"] == "Homicide"
    assert incident["incidentTypeInternalText"] == "Pembunuhan / penemuan mayat"
    assert incident["incidentPriorityInternalText"] == "P1" and incident["incidentCommonPriorityNumber"] == 1
    assert incident["incidentStatusInternalText"] == ["closed"]
    assert incident["incidentStatusCommonRegistryText"] == ["Closed"]
    assert incident["internalIncidentId"] == "SPKT/2026/11/000457"
    assert incident["reportNumberType"] == LP and incident["documentIdentification"] == [LP]
    assert incident["beatOrDispatchGroupText"] == "polres-metro-jaksel / polsek-kebayoran-lama"
    [disposition] = incident["dispositionComponent"]
    assert disposition["dispositionCommonRegistryCode"] == "RPT" == eido.APCO_CLOSE_CODES["lp_made"][0]
    assert disposition["dispositionCategoryText"] == "lp_made"
    assert LP in disposition["dispositionDescriptionText"]
    assert disposition["lastUpdateTimeStamp"] == at(470).isoformat()
    components = by_id(document)
    [close_note] = disposition["notesReference"]
    assert "Satreskrim" in components[close_note["$ref"]]["notesActionComments"]
    [merge] = document["mergeComponent"]
    assert merge["incidentTrackingIdentifier"] == f"urn:emergency:uid:incidentid:inc-7f40:{AGENCY}"
    assert merge["incidentMergeDirectionCode"] == "REPLACING"
    [agency] = document["agencyComponent"]
    assert agency["$id"] == AGENCY and agency["agencyType"] == ["police"]
    assert AGENCY_NAME in json.loads(agency["agencyJcard"])[1][2]


def test_every_reference_resolves_and_ids_are_unique():
    document = export(full_view())
    components = by_id(document)
    ids = [c["$id"] for k, v in document.items() if k.endswith("Component") and isinstance(v, list) for c in v]
    assert len(ids) == len(set(ids))
    known = set(components) | {document["incidentComponent"]["$id"]}
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(document))
    assert refs and set(refs) <= known


def test_reports_become_calls_with_their_reporters():
    document = export(full_view())
    components = by_id(document)
    phone, walk_in = document["callComponent"]
    assert phone["$id"] == f"urn:emergency:uid:callid:rep-1:{AGENCY}"
    assert (phone["localCallType"], walk_in["localCallType"]) == ("phone_110", "walk_in")
    assert phone["direction"] == walk_in["direction"] == "incoming"
    assert phone["callStartTimestamp"] == "2026-11-28T01:12:00+07:00"
    assert phone["priorityIdentifier"] == "highest"
    # The reporter listed in persons is the caller (same number written two ways): one person, not two.
    [person_ref] = phone["personReference"]
    caller = components[person_ref["$ref"]]
    assert caller["personIncidentRoleRegistryText"] == ["Caller"]
    assert caller["callIdentifier"] == [phone["$id"]]
    assert caller["ncPersonComponent"] == {"PersonName": {"PersonFullName": "Siti Aminah"}}
    callback = components[phone["callBackReference"]["$ref"]]
    assert callback["callBackInformationUri"] == ["tel:+6281234567890"]
    assert "personReference" not in walk_in and "callBackReference" not in walk_in
    walk_note = components[walk_in["notesReference"][0]["$ref"]]["notesActionComments"]
    assert "berkelahi" in walk_note and "digabungkan" in walk_note


def test_units_and_dispatches():
    document = export(full_view())
    components = by_id(document)
    resources = {r["emergencyResourceName"]: r for r in document["emergencyResourceComponent"]}
    assert set(resources) == {"JS-R2-07", "JS-INAFIS-1", "JS-RESKRIM-3"}
    assert resources["JS-R2-07"]["primaryUnitStatusRegistryText"] == "Available"
    assert "activeOnIncidentId" not in resources["JS-R2-07"]
    assert resources["JS-INAFIS-1"]["primaryUnitStatusRegistryText"] == "OnScene"
    assert resources["JS-INAFIS-1"]["activeOnIncidentId"] == document["incidentComponent"]["$id"]
    assert resources["JS-RESKRIM-3"]["unitStatusInternal"] == ["en_route"]
    assert resources["JS-RESKRIM-3"]["emergencyResourceTypeInternalText"] == "reskrim"
    assert len(document["dispatchComponent"]) == 3
    first = document["dispatchComponent"][0]
    assert components[first["emergencyResourceReference"][0]["$ref"]]["emergencyResourceName"] == "JS-R2-07"
    note = components[first["notesReference"][0]["$ref"]]["notesActionComments"]
    assert "tiba 2026-11-28T01:21:00+07:00" in note and "selesai" in note


def test_persons_by_role_carry_only_what_the_view_gives():
    view = full_view()
    document = export(view)
    roles = sorted(r for p in document["personComponent"] for r in p["personIncidentRoleRegistryText"])
    assert roles == ["Caller", "Suspect", "Victim", "Witness"]
    suspect = next(p for p in document["personComponent"] if p["personIncidentRoleRegistryText"] == ["Suspect"])
    assert set(suspect) == {"$id", "lastUpdateTimeStamp", "updatedByAgencyReference", "personIncidentRoleRegistryText"}
    assert len(document["incidentComponent"]["personReference"]) == 4
    text = json.dumps(document, ensure_ascii=False)
    for name in ("Siti Aminah", "Budi Santoso", "Joko Prasetyo"):
        assert text.count(name) == 1
    assert "nik" not in text.lower().split('"')  # no identity number keys
    assert len(document["callbackComponent"]) == 2  # the caller and the witness, the two phones given


def test_location_notes_and_evidence():
    document = export(full_view())
    components = by_id(document)
    incident = document["incidentComponent"]
    place = components[incident["locationReference"][0]["$ref"]]
    assert place["locationTypeDescriptionRegistryText"] == "Incident"
    assert "<gml:pos>-6.2441 106.8003</gml:pos>" in place["locationByValue"]
    assert "<gs:radius" in place["locationByValue"] and ">15.0<" in place["locationByValue"]
    assert "Jl. Kebayoran Lama No. 12" in place["locationDescriptionText"]
    assert "Pasar Kebayoran Lama" in place["locationDescriptionText"]

    notes = [components[r["$ref"]]["notesActionComments"] for r in incident["notesReference"]]
    assert any("luka tusuk" in n for n in notes)
    assert "<p>Penelepon panik, &lt;korban&gt; tidak bergerak</p>" in notes
    agents = {a["$id"]: a for a in document["agentComponent"]}
    assert f"operator-ani@{AGENCY}" in agents and f"spkt.dispatch@{AGENCY}" in agents
    assert agents[f"spkt.dispatch@{AGENCY}"]["agencyReference"] == {"$ref": AGENCY}

    evidence = [json.loads(d["additionalDataByValue"]) for d in document["additionalDataComponent"]]
    assert [e["evidence_id"] for e in evidence] == ["BB-1", "BB-2"]
    assert sum(len(e["custody"]) for e in evidence) == 3
    assert evidence[0]["custody"][1] == {"from": "Inafis Polres Metro Jaksel", "to": "Puslabfor Polri",
                                         "at": at(400).isoformat(), "reason": "uji DNA"}
    assert evidence[0]["seal_number"] == "SEGEL/001/XI/2026"
    custody_note = next(n for n in notes if "BB-1" in n)
    assert "Puslabfor Polri" in custody_note and "Serah terima 2" in custody_note
    found = [components[r["$ref"]] for r in incident["locationReference"]][1:]
    assert len(found) == 1 and found[0]["locationTypeDescriptionRegistryText"] == "Evidence"
    assert found[0]["additionalDataReference"] == [{"$ref": document["additionalDataComponent"][0]["$id"]}]


def test_all_timestamps_carry_an_offset():
    document = export(full_view())
    stamps = list(timestamps(document))
    assert len(stamps) > 20
    assert all(OFFSET_TS.match(s) for s in stamps), [s for s in stamps if not OFFSET_TS.match(s)]


def test_naive_times_are_read_as_utc():
    view = minimal_view()
    view["opened_at"] = datetime(2026, 11, 28, 3, 0)
    document = eido.incident_document(view, agency_id=AGENCY, agency_name=AGENCY_NAME,
                                      issued_at=datetime(2026, 11, 28, 4, 0))
    assert document["incidentComponent"]["lastUpdateTimeStamp"] == "2026-11-28T03:00:00+00:00"
    assert eido.validate(document) == []


def test_minimal_incident_validates():
    document = export(minimal_view())
    assert eido.validate(document) == []
    assert document["incidentComponent"]["incidentTypeCommonRegistryText"] == "Other"
    assert document["incidentComponent"]["internalIncidentId"] == "inc-0001"
    for absent in ("callComponent", "emergencyResourceComponent", "locationComponent", "personComponent",
                   "mergeComponent", "dispatchComponent"):
        assert absent not in document
    assert "dispositionComponent" not in document["incidentComponent"]


def test_empty_and_missing_values_still_validate():
    view = {"incident_id": "inc-0002", "location": None, "reports": None, "opened_at": None}
    document = export(view)
    assert eido.validate(document) == []
    assert document["incidentComponent"]["lastUpdateTimeStamp"] == ISSUED.isoformat()


def test_address_only_location_and_patrol_report():
    view = minimal_view()
    view["location"] = {"lat": None, "lon": None, "address": "Jl. Fatmawati Raya", "landmark": None, "accuracy_m": None}
    view["reports"] = [{"report_id": "rep-9", "channel": "patrol", "received_at": T0, "description": "Temuan patroli",
                        "reporter": {"name": "Brigpol Dedi", "phone": None}, "merged": False}]
    document = export(view)
    assert eido.validate(document) == []
    [place] = document["locationComponent"]
    assert "locationByValue" not in place and place["locationDescriptionText"] == "Jl. Fatmawati Raya"
    [call] = document["callComponent"]
    assert call["direction"] == "internal"
    assert "callbackComponent" not in document


def test_export_does_not_touch_the_view_and_is_stable():
    view = full_view()
    before = copy.deepcopy(view)
    assert export(view) == export(view)
    assert view == before


def test_every_disposition_has_a_close_code():
    from schemas.events import Disposition

    assert set(eido.APCO_CLOSE_CODES) == set(get_args(Disposition))
    codes = [code for code, _ in eido.APCO_CLOSE_CODES.values()]
    assert len(codes) == len(set(codes)) and all(re.fullmatch(r"[A-Z]{2,3}", c) for c in codes)
    for disposition in eido.APCO_CLOSE_CODES:
        view = full_view()
        view["disposition"] = disposition
        assert eido.validate(export(view)) == []


def test_incident_id_is_required():
    with pytest.raises(ValueError):
        export({**minimal_view(), "incident_id": None})
