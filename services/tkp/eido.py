"""Export an incident as a NENA EIDO (STA-021) document, and validate EIDO documents. Pure.

Other agencies (a neighbouring Polres, the prosecutor, a PSAP) read incidents in the NENA
Emergency Incident Data Object format rather than our internal one. The schema is the NENA
OpenAPI file copied to schemas/eido/; validation needs PyYAML and jsonschema, imported lazily
so this module imports without them.

Registry texts (incident type, statuses, roles) are the nearest EIDO registry terms; the
schema only types them as strings, so our own code always travels alongside in the
*InternalText / local fields and nothing is lost in translation.
"""
from __future__ import annotations

import html
import json
import re
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from xml.sax.saxutils import quoteattr

if TYPE_CHECKING:  # pragma: no cover
    import jsonschema.protocols

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "eido" / "eido-openapi.yaml"
ROOT_SCHEMA = "EmergencyIncidentDataObjectType"
EIDO_VERSION = "1.0"
JSONLD_VOCAB = "./JSON-LD_Contexts/EmergencyIncidentDataObjectType.jsonld"

# Disposition -> APCO-style close-out code and its text (English / Bahasa Indonesia). The codes
# are the ones services/tkp/records.py puts on incident.closed (apco_code): keep the two equal.
APCO_CLOSE_CODES: dict[str, tuple[str, str]] = {
    "lp_made": ("RPT", "Report taken / LP dibuat"),
    "resolved_on_spot": ("ADV", "Advised, resolved on scene / diselesaikan di tempat"),
    "no_report_needed": ("NRN", "No report necessary / tidak perlu laporan"),
    "referred": ("REF", "Referred to another agency / dilimpahkan ke instansi lain"),
    "restorative_justice": ("RJ", "Restorative justice / keadilan restoratif"),
    "false_report": ("FLS", "False report / laporan palsu"),
    "cancelled": ("CAN", "Cancelled / dibatalkan"),
    "duplicate": ("DUP", "Duplicate incident / kejadian ganda"),
}
OTHER_CLOSE_CODE = ("OTH", "Other / lainnya")

INCIDENT_TYPES: dict[str, str] = {
    "homicide": "Homicide", "assault": "Assault", "sexual_offence": "Sexual Assault",
    "child_abuse": "Child Abuse", "domestic_violence": "Domestic Violence", "kidnapping": "Kidnapping",
    "missing_person": "Missing Person", "shooting": "Shooting", "street_robbery": "Robbery",
    "vehicle_theft": "Vehicle Theft", "theft": "Theft", "burglary": "Burglary", "pickpocketing": "Theft",
    "fraud": "Fraud", "vandalism": "Vandalism", "traffic_accident": "Traffic Collision",
    "traffic_jam": "Traffic Hazard", "drugs": "Narcotics", "brawl": "Riot", "public_order": "Disturbance",
    "demonstration": "Demonstration", "suspicious_activity": "Suspicious Activity", "fire": "Fire",
    "flood": "Flood", "other_disaster": "Natural Disaster", "lost_goods": "Lost Property",
    "assistance_request": "Assist", "non_emergency": "Information", "officer_emergency": "Officer Needs Assistance",
}
INCIDENT_STATUSES = {"received": "Pending", "assigned": "Dispatched", "on_scene": "OnScene",
                     "closed": "Closed", "duplicate": "Closed"}
PRIORITY_NUMBERS = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}
CALL_PRIORITIES = {"P1": "highest", "P2": "high", "P3": "normal", "P4": "low"}
UNIT_TYPES = {"car": "Law Enforcement Patrol Car", "motorcycle": "Law Enforcement Motorcycle",
              "foot": "Law Enforcement Foot Patrol", "inafis": "Crime Scene Unit",
              "reskrim": "Criminal Investigation Unit", "lantas": "Traffic Enforcement Unit"}
UNIT_STATUSES = {"assigned": "Dispatched", "acknowledged": "Dispatched", "en_route": "Enroute",
                 "on_scene": "OnScene", "cleared": "Available", "cancelled": "Available", "declined": "Available"}
PERSON_ROLES = {"reporter": "Caller", "victim": "Victim", "witness": "Witness", "suspect": "Suspect",
                "officer": "Officer"}

_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:spkt-dispatch:eido")
_ENDED_ASSIGNMENT = {"cleared", "cancelled", "declined"}


# --- schema ---------------------------------------------------------------------------------------

_COUNT_KEYWORDS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")


def _as_count(value: Any) -> Any:
    """The schema writes `minItems: 1,`; YAML reads "1,". Read what the authors meant."""
    if isinstance(value, str):
        text = value.strip().rstrip(",").strip()
        if text.isdigit():
            return int(text)
        raise ValueError(f"EIDO schema: cannot read {value!r} as a count")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fix(node: Any) -> Any:
    """A copy of the OpenAPI schema that a JSON Schema validator accepts."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#/"):
            # NIEM component files are not part of the EIDO file: accept any object there.
            out: dict[str, Any] = {"type": "object"}
            if isinstance(node.get("description"), str):
                out["description"] = node["description"]
            return out
        return {key: _as_count(value) if key in _COUNT_KEYWORDS and not isinstance(value, (dict, list))
                else _fix(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_fix(item) for item in node]
    return node


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The EIDO document schema, its internal refs resolvable. Cached and shared: do not mutate."""
    import yaml

    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        openapi = yaml.safe_load(handle)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/components/schemas/{ROOT_SCHEMA}",
        "components": {"schemas": _fix(openapi["components"]["schemas"])},
    }


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")


def _is_date_time(value: object) -> bool:
    """RFC 3339 with an offset: a receiver in another zone must not guess ours."""
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


@lru_cache(maxsize=1)
def validator() -> "jsonschema.protocols.Validator":
    """A Draft 2020-12 validator for EIDO documents, with date-time and uri formats enforced."""
    import jsonschema

    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    # The optional format libraries may be absent; these two formats matter for exchange.
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(_is_date_time)
    checker.checks("uri")(_is_uri)
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def validate(document: dict) -> list[str]:
    """Readable "path: message" errors for an EIDO document; [] when it is valid."""
    errors = sorted(validator().iter_errors(document), key=lambda e: (e.json_path, e.message))
    return [f"{e.json_path}: {_short(e.message)}" for e in errors]


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[:limit] + "…"


# --- export ---------------------------------------------------------------------------------------

def _ts(value: datetime | str | None) -> str | None:
    """ISO 8601 with an offset; the read model stores UTC, so a naive time is UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def _latest(*values: datetime | str | None) -> datetime | str | None:
    known = [v for v in values if v]
    if not known:
        return None
    return max(known, key=lambda v: datetime.fromisoformat(_ts(v)))  # type: ignore[arg-type]


def _ref(target: str) -> dict[str, str]:
    return {"$ref": target}


def _refs(targets: Iterable[str]) -> list[dict[str, str]]:
    return [_ref(t) for t in targets]


def _tel(phone: str) -> str:
    """A tel: URI; Indonesian trunk-prefixed numbers (08…) become +62…."""
    digits = re.sub(r"[\s\-().]", "", phone)
    if digits.startswith("+"):
        return f"tel:{digits}"
    if digits.startswith("0") and len(digits) > 5:
        return f"tel:+62{digits[1:]}"
    return f"tel:{digits};phone-context=+62"


def _html(*paragraphs: str) -> str:
    """Notes are HTML5 in EIDO: escape what we were given, one paragraph each."""
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p)


def _pidf(entity: str, lat: float, lon: float, accuracy_m: float | None) -> str:
    """A minimal PIDF-LO (RFC 4119 / 5491): a point, or a circle when the accuracy is known."""
    pos = f"<gml:pos>{lat!r} {lon!r}</gml:pos>"
    if accuracy_m:
        shape = (f'<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326">{pos}'
                 f'<gs:radius uom="urn:ogc:def:uom:EPSG::9001">{float(accuracy_m)!r}</gs:radius></gs:Circle>')
    else:
        shape = f'<gml:Point srsName="urn:ogc:def:crs:EPSG::4326">{pos}</gml:Point>'
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"'
            ' xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0"'
            f' entity={quoteattr(entity)}><tuple id="location"><status><gp:geopriv><gp:location-info>'
            f'{shape}</gp:location-info><gp:usage-rules/></gp:geopriv>'
            '</status></tuple></presence>')


def _jcard(name: str) -> str:
    """The agency's name as a jCard (RFC 7095): the only place AgencyType has for it."""
    return json.dumps(["vcard", [["version", {}, "text", "4.0"], ["kind", {}, "text", "org"],
                                 ["fn", {}, "text", name]]], ensure_ascii=False)


def incident_urn(incident_id: str, agency_id: str) -> str:
    """NENA incident tracking identifier."""
    return f"urn:emergency:uid:incidentid:{incident_id}:{agency_id}"


class _Builder:
    """Collects the components of one document; ids are stable so a re-export updates, not duplicates."""

    def __init__(self, view: Mapping[str, Any], agency_id: str, issued_at: datetime) -> None:
        self.view = view
        self.agency_id = agency_id
        self.issued_at = issued_at
        self.incident_id = str(view["incident_id"])
        self.components: dict[str, list[dict]] = {}
        self.agents: dict[str, str] = {}

    def uid(self, kind: str, local: Any) -> str:
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.agency_id}/{self.incident_id}/{kind}/{local}"))

    def prologue(self, component_id: str, at: datetime | str | None) -> dict[str, Any]:
        return {"$id": component_id, "lastUpdateTimeStamp": _ts(at) or _ts(self.issued_at),
                "updatedByAgencyReference": _ref(self.agency_id)}

    def add(self, kind: str, component: dict) -> str:
        self.components.setdefault(kind, []).append(component)
        return component["$id"]

    def agent(self, actor: str | None) -> str | None:
        """An agent per actor named in the view: an officer's account or one of our services."""
        if not actor:
            return None
        if actor in self.agents:
            return self.agents[actor]
        local = re.sub(r"[^A-Za-z0-9._\-]+", ".", actor.strip("/")) or "agent"
        agent_id = actor if "@" in actor else f"{local}@{self.agency_id}"
        system = actor.startswith("/spkt/")
        self.add("agentComponent", {
            **self.prologue(agent_id, self.issued_at),
            "agentRoleRegistryText": ["Automated"] if system else ["Dispatching"],
            "agencyReference": _ref(self.agency_id),
        })
        self.agents[actor] = agent_id
        return agent_id

    def note(self, local: Any, at: datetime | str | None, text: str, actor: str | None = None) -> str:
        component = {**self.prologue(self.uid("note", local), at), "notesActionComments": text}
        agent_id = self.agent(actor)
        if agent_id:
            component["updatedByAgentReference"] = _ref(agent_id)
            component["agentReference"] = _ref(agent_id)
        return self.add("notesComponent", component)


def incident_document(view: Mapping[str, Any], *, agency_id: str, agency_name: str,
                      issued_at: datetime) -> dict:
    """The incident as an EIDO document, carrying no more personal data than the view holds."""
    if not view.get("incident_id"):
        raise ValueError("incident_id is required for an EIDO export")
    b = _Builder(view, agency_id, issued_at)
    urn = incident_urn(b.incident_id, agency_id)
    opened_at = view.get("opened_at") or issued_at
    priority = view.get("priority") or ""
    incident_notes: list[str] = []
    locations: list[str] = []
    persons: list[str] = []

    b.add("agencyComponent", {
        **b.prologue(agency_id, issued_at),
        "agencyJcard": _jcard(agency_name or agency_id),
        "agencyRoleDescriptionRegistryText": ["CallReceiving", "Dispatching", "Responding"],
        "agencyType": ["police"],
        "incidentOwningAgencyIndicator": True,
    })

    if view.get("summary"):
        incident_notes.append(b.note("summary", opened_at, _html(f"Ringkasan: {view['summary']}")))

    place = view.get("location") or {}
    place_id = _location(b, place, urn)
    if place_id:
        locations.append(place_id)

    # Persons the view names, then the reporters of reports no listed person matches.
    reporters: list[tuple[Mapping[str, Any], dict[str, Any]]] = []
    for n, person in enumerate(view.get("persons") or []):
        component = _person(b, person.get("person_id") or n, person.get("role"), person.get("name"),
                            person.get("phone"), opened_at)
        persons.append(component["$id"])
        if person.get("role") == "reporter":
            reporters.append((person, component))

    for n, report in enumerate(view.get("reports") or []):
        _call(b, report, n, priority, place_id, reporters, persons)

    _units(b, view.get("assignments") or [], urn)

    for n, entry in enumerate(view.get("notes") or []):
        at = entry.get("at") or opened_at
        incident_notes.append(b.note(("timeline", n), at, _html(entry.get("text") or ""), entry.get("actor")))

    for n, item in enumerate(view.get("evidence") or []):
        note_id, location_id = _evidence(b, item, n, urn)
        incident_notes.append(note_id)
        if location_id:
            locations.append(location_id)

    for n, merge in enumerate(view.get("merges") or []):
        if not merge.get("incident_id") or not merge.get("relation"):
            continue
        b.add("mergeComponent", {
            **b.prologue(b.uid("merge", (n, merge["incident_id"])), merge.get("at")),
            "incidentTrackingIdentifier": incident_urn(str(merge["incident_id"]), agency_id),
            "incidentMergeDirectionCode": merge["relation"],
        })

    incident: dict[str, Any] = {
        **b.prologue(urn, _latest(view.get("updated_at"), view.get("closed_at"), opened_at)),
        "incidentTypeCommonRegistryText": INCIDENT_TYPES.get(view.get("category") or "", "Other"),
    }
    if view.get("category"):
        incident["incidentTypeInternalCode"] = view["category"]
    if view.get("category_name"):
        incident["incidentTypeInternalText"] = view["category_name"]
    status = view.get("status")
    if status:
        incident["incidentStatusInternalText"] = [status]
    incident["incidentStatusCommonRegistryText"] = [
        INCIDENT_STATUSES.get(status or "", "Closed" if view.get("closed_at") else "Active")]
    incident["internalIncidentId"] = view.get("number") or b.incident_id
    if priority:
        incident["incidentPriorityInternalText"] = priority
        if priority in PRIORITY_NUMBERS:
            incident["incidentCommonPriorityNumber"] = PRIORITY_NUMBERS[priority]
    group = " / ".join(dict.fromkeys(v for v in (view.get("polres"), view.get("jurisdiction")) if v))
    if group:
        incident["beatOrDispatchGroupText"] = group
    if view.get("lp_number"):
        incident["reportNumberType"] = view["lp_number"]
        incident["documentIdentification"] = [view["lp_number"]]
    disposition = _disposition(b, view)
    if disposition:
        incident["dispositionComponent"] = [disposition]
    if b.agents:
        incident["agentReference"] = _refs(dict.fromkeys(b.agents.values()))
    if locations:
        incident["locationReference"] = _refs(locations)
    if persons:
        incident["personReference"] = _refs(dict.fromkeys(persons))
    if incident_notes:
        incident["notesReference"] = _refs(incident_notes)

    document: dict[str, Any] = {
        # The EIDO is identified by its incident, as NENA's sample and /EIDO/{IncidentId} do.
        **b.prologue(urn, issued_at),
        "eidoVersion": EIDO_VERSION,
        "issuingElementIdentification": f"spkt-dispatch.{agency_id}",
        "incidentComponent": incident,
    }
    order = ("mergeComponent", "callComponent", "callbackComponent", "dispatchComponent", "notesComponent",
             "emergencyResourceComponent", "agencyComponent", "agentComponent", "additionalDataComponent",
             "locationComponent", "personComponent")
    for kind in order:
        if kind in b.components:
            document[kind] = b.components[kind]
    document["@context"] = {"@vocab": JSONLD_VOCAB}
    return document


def _location(b: _Builder, place: Mapping[str, Any], urn: str) -> str | None:
    """The incident's place: PIDF-LO when we have coordinates, free text for address and landmark."""
    lat, lon = place.get("lat"), place.get("lon")
    text = ", ".join(v for v in (place.get("address"), place.get("landmark") and f"patokan: {place['landmark']}")
                     if v)
    if (lat is None or lon is None) and not text:
        return None
    component: dict[str, Any] = {**b.prologue(b.uid("location", "incident"), b.view.get("opened_at")),
                                 "locationTypeDescriptionRegistryText": "Incident"}
    if lat is not None and lon is not None:
        component["locationByValue"] = _pidf(urn, float(lat), float(lon), place.get("accuracy_m"))
    if text:
        component["locationDescriptionText"] = text
    return b.add("locationComponent", component)


def _person(b: _Builder, local: Any, role: str | None, name: str | None, phone: str | None,
            at: datetime | str | None) -> dict[str, Any]:
    component: dict[str, Any] = {**b.prologue(b.uid("person", local), at),
                                 "personIncidentRoleRegistryText": [PERSON_ROLES.get(role or "", "Other")]}
    if name:
        # NIEM nc:PersonType, which the EIDO file only references.
        component["ncPersonComponent"] = {"PersonName": {"PersonFullName": name}}
    if phone:
        callback_id = b.add("callbackComponent", {**b.prologue(b.uid("callback", local), at),
                                                  "callBackInformationUri": [_tel(phone)]})
        component["callBackReference"] = _ref(callback_id)
    b.add("personComponent", component)
    return component


def _same_person(listed: Mapping[str, Any], name: str | None, phone: str | None) -> bool:
    """A listed reporter is the report's reporter when the phone (or, without phones, the name) agrees."""
    if phone and listed.get("phone"):
        return _tel(phone) == _tel(listed["phone"])
    return bool(name) and not phone and not listed.get("phone") and name == listed.get("name")


def _call(b: _Builder, report: Mapping[str, Any], n: int, priority: str, place_id: str | None,
          reporters: list[tuple[Mapping[str, Any], dict[str, Any]]], persons: list[str]) -> None:
    """A report as a call: EIDO has no other component for what the public told us."""
    report_id = report.get("report_id") or n
    call_id = f"urn:emergency:uid:callid:{report_id}:{b.agency_id}"
    received_at = report.get("received_at") or b.view.get("opened_at") or b.issued_at
    channel = report.get("channel") or ""
    call: dict[str, Any] = {
        **b.prologue(call_id, received_at),
        "standardPrimaryCallType": "emergency",
        # A patrol's own report comes from inside our agency.
        "direction": "internal" if channel == "patrol" else "incoming",
        "callStartTimestamp": _ts(received_at),
        "callStateRegistryText": "callEnd",
        "agencyReference": [_ref(b.agency_id)],
    }
    if channel:
        call["localCallType"] = channel
    if priority in CALL_PRIORITIES:
        call["priorityIdentifier"] = CALL_PRIORITIES[priority]
    if place_id:
        call["locationReference"] = [_ref(place_id)]
    text = report.get("description") or ""
    merged = "Laporan digabungkan dari kejadian lain." if report.get("merged") else ""
    if text or merged:
        call["notesReference"] = [_ref(b.note(("report", report_id), received_at, _html(text, merged)))]
    reporter = report.get("reporter") or {}
    name, phone = reporter.get("name"), reporter.get("phone")
    if name or phone:
        person = next((c for listed, c in reporters if _same_person(listed, name, phone)), None)
        if person is None:
            person = _person(b, ("reporter", report_id), "reporter", name, phone, received_at)
            reporters.append((reporter, person))
            persons.append(person["$id"])
        person.setdefault("callIdentifier", []).append(call_id)
        call["personReference"] = [_ref(person["$id"])]
        if "callBackReference" in person:
            call["callBackReference"] = person["callBackReference"]
    b.add("callComponent", call)


def _units(b: _Builder, assignments: list[Mapping[str, Any]], urn: str) -> None:
    """One resource per unit (its latest assignment's status), one dispatch per assignment."""
    resources: dict[str, tuple[datetime, dict[str, Any]]] = {}
    for n, a in enumerate(assignments):
        unit_key = a.get("unit_id") or a.get("callsign") or n
        assignment_id = a.get("assignment_id") or n
        status = a.get("status") or "assigned"
        last = _latest(a.get("assigned_at"), a.get("arrived_at"), a.get("ended_at"))
        resource_id = b.uid("unit", unit_key)
        resource: dict[str, Any] = {
            **b.prologue(resource_id, last),
            "agentReference": [],  # the crew is not in the view
            "emergencyResourceTypeCommonRegistryText": UNIT_TYPES.get(a.get("kind") or "", "Law Enforcement"),
            "resourceAttributeRegistryText": [],
            "primaryUnitStatusRegistryText": UNIT_STATUSES.get(status, "Dispatched"),
            "secondaryUnitStatusRegistryText": [],
            "unitStatusInternal": [status],
        }
        if a.get("kind"):
            resource["emergencyResourceTypeInternalText"] = a["kind"]
        if a.get("callsign"):
            resource["emergencyResourceName"] = a["callsign"]
        if status not in _ENDED_ASSIGNMENT and not a.get("ended_at"):
            resource["activeOnIncidentId"] = urn
        when = datetime.fromisoformat(resource["lastUpdateTimeStamp"])
        if resource_id not in resources or when >= resources[resource_id][0]:
            resources[resource_id] = (when, resource)
        times = [f"ditugaskan {_ts(a.get('assigned_at'))}"]
        if a.get("arrived_at"):
            times.append(f"tiba {_ts(a['arrived_at'])}")
        if a.get("ended_at"):
            times.append(f"selesai {_ts(a['ended_at'])}")
        note_id = b.note(("assignment", assignment_id), last, _html(
            f"Penugasan unit {a.get('callsign') or a.get('unit_id') or '-'}: {', '.join(times)}; status {status}."))
        b.add("dispatchComponent", {
            **b.prologue(b.uid("dispatch", assignment_id), a.get("assigned_at")),
            "agencyReference": _ref(b.agency_id),
            "emergencyResourceReference": [_ref(resource_id)],
            "notesReference": [_ref(note_id)],
        })
    for _, resource in resources.values():
        b.add("emergencyResourceComponent", resource)


def _evidence(b: _Builder, item: Mapping[str, Any], n: int, urn: str) -> tuple[str, str | None]:
    """Evidence and its custody chain as additional data plus a readable note.

    EIDO's ItemInformationType would fit, but the document has no array to carry items (only
    references to them from persons, vehicles and resources), so the item travels as
    AdditionalData (machine-readable JSON) and a Notes component (for the officer reading it).
    """
    evidence_id = item.get("evidence_id") or n
    custody = list(item.get("custody") or [])
    last = _latest(item.get("collected_at"), *(c.get("at") for c in custody))
    found = item.get("found_at") or {}
    lines = [f"Barang bukti {evidence_id}: {item.get('description') or '-'} (jenis {item.get('kind') or '-'}, "
             f"segel {item.get('seal_number') or '-'}).",
             f"Diamankan oleh {item.get('collected_by') or '-'} pada {_ts(item.get('collected_at')) or '-'}."]
    for k, c in enumerate(custody, 1):
        lines.append(f"Serah terima {k}: {c.get('from') or '-'} → {c.get('to') or '-'} pada {_ts(c.get('at')) or '-'}"
                     f", alasan: {c.get('reason') or '-'}.")
    note_id = b.note(("evidence", evidence_id), last, _html(*lines))
    payload = {
        "type": "spkt-dispatch/evidence", "incident": urn, "evidence_id": item.get("evidence_id"),
        "description": item.get("description"), "kind": item.get("kind"), "seal_number": item.get("seal_number"),
        "found_at": {"lat": found.get("lat"), "lon": found.get("lon")} if found else None,
        "collected_by": item.get("collected_by"), "collected_at": _ts(item.get("collected_at")),
        "custody": [{"from": c.get("from"), "to": c.get("to"), "at": _ts(c.get("at")), "reason": c.get("reason")}
                    for c in custody],
    }
    data_id = b.add("additionalDataComponent", {
        **b.prologue(b.uid("evidence", evidence_id), last),
        "additionalDataByValue": json.dumps(payload, ensure_ascii=False, sort_keys=True),
        "notesReference": [_ref(note_id)],
    })
    location_id = None
    if found.get("lat") is not None and found.get("lon") is not None:
        location_id = b.add("locationComponent", {
            **b.prologue(b.uid("location", ("evidence", evidence_id)), item.get("collected_at")),
            "locationTypeDescriptionRegistryText": "Evidence",
            "locationByValue": _pidf(f"{urn}:evidence:{evidence_id}",
                                     float(found["lat"]), float(found["lon"]), None),
            "locationDescriptionText": f"Tempat barang bukti {evidence_id} ditemukan",
            "additionalDataReference": [_ref(data_id)],
            "notesReference": [_ref(note_id)],
        })
    return note_id, location_id


def _disposition(b: _Builder, view: Mapping[str, Any]) -> dict[str, Any] | None:
    """The close-out: APCO-style code, our disposition, the LP number and the closing summary."""
    disposition = view.get("disposition")
    if not disposition:
        return None
    code, text = APCO_CLOSE_CODES.get(disposition, OTHER_CLOSE_CODE)
    closed_at = view.get("closed_at") or view.get("updated_at")
    component: dict[str, Any] = {
        **b.prologue(b.uid("disposition", disposition), closed_at),
        "dispositionCommonRegistryCode": code,
        "dispositionPrimaryIndicator": True,
        "dispositionCategoryText": disposition,
        "dispositionDescriptionText": f"{text} ({view['lp_number']})" if view.get("lp_number") else text,
    }
    if view.get("summary_at_close"):
        component["notesReference"] = [_ref(b.note("closure", closed_at,
                                                   _html(f"Ringkasan penutupan: {view['summary_at_close']}")))]
    return component
