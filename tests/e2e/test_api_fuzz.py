"""Schemathesis against the running API's own `/openapi.json` (API.md: "Never a 500 for anything a
client sends"): every operation but the endless live stream, well over 1,000 generated requests with
valid tokens, and not one 5xx, undocumented status, undocumented content type or answer outside its
documented schema; nor an error or traceback in the API's log.

On SQLite and on PostgreSQL, three passes each: an admin token with ids made up by the generator (valid and invalid input, and
requests without the token); an admin token with the ids of a unit, an incident, an assignment, a
piece of evidence and a duty that exist, so the requests reach past the 404s into the commands;
and a field unit's token for that unit (its own unit: the scope and ownership checks).
"""
from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from services.api.auth import Role, mint
from tests.conftest import fresh_database, own_kafka
from tests.support import api_client, running_system, wait_for

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SCENE = (-6.2615, 106.8106)  # Blok M, Jakarta Selatan
STREAM = "/api/v1/stream"  # an endless Server-Sent Events stream: test_live_stream.py covers it


@pytest.fixture(scope="module", params=["postgresql"])
def system(request, tmp_path_factory):
    """The whole stack, its read model on PostgreSQL: it refuses what SQLite takes (text holding
    NUL, a string longer than its column), so what passes here passes there. One database only:
    each fuzzing run takes minutes (add "sqlite" to the params to fuzz both).

    The fuzzer writes far faster than anyone could: no rate limit may answer for the API, and a
    command whose outcome is slow answers 202 after half a second. Its own broker: thousands of
    generated events on the session's broker would make every later test's projection (a fresh
    read model replays the whole history) catch up on them first."""
    state = tmp_path_factory.mktemp(f"e2e-fuzz-{request.param}")
    with own_kafka(tmp_path_factory.mktemp("kafka-fuzz")) as kafka_settings, \
            fresh_database(request.param, state) as url, \
            running_system(kafka_settings, state, database_url=url, command_wait_s=0.5,
                           token_limit_per_minute=1_000_000, caller_limit_per_minute=1_000_000,
                           public_limit_per_minute=1_000_000) as settings:
        yield settings


def seed(settings) -> dict[str, str]:
    """A unit with a position, an incident it is assigned to, evidence, a duty: their ids by the
    names the operations' path parameters have."""
    run = uuid.uuid4().hex[:6]
    unit_id = f"u-fuzz-{run}"
    with api_client(settings, Role.admin) as admin:
        r = admin.post("/api/v1/units", json={"unit_id": unit_id, "callsign": f"FUZZ-{run}", "kind": "car",
                                               "station": "polsek-kebayoran-baru",
                                               "jurisdiction": "polsek-kebayoran-baru"})
        assert r.status_code == 201, r.text
        assert admin.post(f"/api/v1/units/{unit_id}/position",
                          json={"lat": SCENE[0], "lon": SCENE[1]}).status_code == 202
        wait_for(lambda: any(u["unit_id"] == unit_id and u["position"]
                             for u in admin.get("/api/v1/units").json()["items"]), timeout=60, what="the unit")
        r = admin.post("/api/v1/reports", json={
            "channel": "phone_110", "description": f"Pencurian motor di parkiran, kode {run}", "category": "theft",
            "location": {"lat": SCENE[0], "lon": SCENE[1], "address": "Jl. Melawai Raya"},
            "reporter": {"name": "Siti Rahmawati", "phone": "081277770001"}})
        assert r.status_code == 202, r.text
        report = r.json()
        incident_id = wait_for(lambda: admin.get(f"/api/v1/reports/{report['report_id']}").json().get("incident_id"),
                               timeout=60, what="the report's incident")
        admin.post(f"/api/v1/incidents/{incident_id}/assignments", json={"unit_id": unit_id})
        assignment_id = wait_for(lambda: [a["assignment_id"] for a in
                                          admin.get(f"/api/v1/incidents/{incident_id}").json()["assignments"]],
                                 timeout=60, what="the assignment")[0]
        r = admin.post(f"/api/v1/incidents/{incident_id}/evidence", json={
            "description": "Kunci letter T", "kind": "alat", "seal_number": f"SGL-FUZZ-{run}"})
        assert r.status_code in (201, 202), r.text
        evidence_id = r.headers["Location"].rsplit("/", 1)[1] if r.status_code == 202 else r.json()["evidence_id"]
        wait_for(lambda: admin.get(f"/api/v1/evidence/{evidence_id}").status_code == 200, timeout=60,
                 what="the evidence")
        r = admin.post("/api/v1/duties", json={"kind": "penjagaan", "unit_ids": [unit_id], "incident_id": incident_id,
                                                "area": "Pintu parkiran"})
        assert r.status_code == 201, r.text
        duty_id = r.json()["duty_id"]
        wait_for(lambda: admin.get(f"/api/v1/duties?incident_id={incident_id}").json(), timeout=60, what="the duty")
    return {"unit_id": unit_id, "incident_id": incident_id, "assignment_id": assignment_id,
            "evidence_id": evidence_id, "duty_id": duty_id, "report_id": report["report_id"],
            "tracking_code": report["tracking_code"]}


@dataclass
class Pass:
    name: str
    token: str
    modes: tuple[GenerationMode, ...]
    max_examples: int
    known_ids: bool = False  # path parameters are ids that exist (operations without them are skipped)


@dataclass
class Results:
    by_status: Counter = field(default_factory=Counter)
    by_pass: Counter = field(default_factory=Counter)
    with_token: int = 0  # sent with the pass's valid token (negative cases also leave it out)
    failures: dict = field(default_factory=dict)  # (check, status, operation) -> first example

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def fuzz(schema, passes: list[Pass], known: dict[str, str]) -> Results:
    """Every operation, pass after pass; each request's answer goes through CHECKS and every failed
    check is kept (the first example of each) rather than stopping at the first."""
    results = Results()
    session = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    for run in passes:
        headers = {"Authorization": f"Bearer {run.token}"}
        for operation in operations:
            names = [p.name for p in operation.path_parameters]
            if run.known_ids and not names:
                continue
            pinned = {n: known[n] for n in names if n in known} if run.known_ids else None
            for mode in run.modes:
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=pinned)

                @hypothesis.settings(max_examples=run.max_examples, deadline=None, derandomize=True, database=None,
                                     phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                                     suppress_health_check=list(hypothesis.HealthCheck))
                @hypothesis.given(strategy)
                def call(case):
                    try:
                        response = case.call(session=session, headers=headers, timeout=30)
                    except requests.RequestException as exc:  # a hang or a dropped connection is a fault too
                        results.failures.setdefault((type(exc).__name__, 0, operation.label),
                                                    (str(exc)[:500], case.as_curl_command(headers=headers), ""))
                        return
                    results.by_status[response.status_code] += 1
                    results.by_pass[run.name] += 1
                    results.with_token += response.request.headers.get("Authorization") == headers["Authorization"]
                    try:
                        case.validate_response(response, checks=CHECKS, headers=headers)
                    except (Exception, BaseExceptionGroup) as exc:  # FailureGroup is a BaseExceptionGroup
                        for failure in getattr(exc, "exceptions", None) or [exc]:
                            key = (getattr(failure, "title", type(failure).__name__), response.status_code,
                                   operation.label)
                            results.failures.setdefault(key, (str(failure)[:800],
                                                              case.as_curl_command(headers=headers)[:800],
                                                              response.text[:500]))

                try:
                    call()
                except hypothesis.errors.Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                    pass
    return results


def log_errors(log_file) -> list[str]:
    """Lines of the API's log at level error or above, and tracebacks."""
    out = []
    for line in log_file.read_text(errors="replace").splitlines():
        try:
            level = json.loads(line).get("level", "")
        except (ValueError, AttributeError):
            level = ""
        if level in ("error", "critical") or "Traceback" in line:
            out.append(line)
    return out


def test_no_generated_request_gets_a_5xx_or_an_answer_outside_the_documented_schema(system):
    known = seed(system)
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(system.api_url + "/openapi.json").exclude(path=STREAM)
    assert STREAM not in [op.ok().path for op in schema.get_all_operations()]
    admin = mint(system, sub="fuzz-admin", role=Role.admin)
    unit = mint(system, sub="fuzz-unit", role=Role.field_unit, unit_id=known["unit_id"])
    results = fuzz(schema, [
        Pass("admin, made-up ids", admin, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE), max_examples=9),
        Pass("admin, known ids", admin, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE), max_examples=7,
             known_ids=True),
        Pass("field unit, its own ids", unit, (GenerationMode.POSITIVE,), max_examples=3, known_ids=True),
    ], known)
    took = time.monotonic() - started

    print(f"\nschemathesis {schemathesis.__version__}, read model on {system.database_url.split(':')[0]}: "
          f"{results.total} requests ({results.with_token} with a valid token) in {took:.0f} s")
    print("  by pass:  ", dict(results.by_pass))
    print("  by status:", dict(sorted(results.by_status.items())))
    server_errors = sum(n for code, n in results.by_status.items() if code >= 500)
    print(f"  5xx: {server_errors}; failed checks: {len(results.failures)}")
    for (check, code, label), (message, curl, body) in sorted(results.failures.items()):
        print(f"--- {label} -> {code}: {check}\n{message}\n{curl}\n  -> {body}")
    errors = log_errors(system.state_dir / "logs" / "api.log")
    for line in errors:
        print("api.log:", line)

    assert results.with_token >= 1000
    assert server_errors == 0
    assert not results.failures, sorted(results.failures)
    assert errors == []


# --- what the fuzzer found, pinned down ------------------------------------------------------------
def test_a_refused_lp_names_its_field_in_the_documented_422_shape(system):
    with api_client(system, Role.admin) as admin:  # no jurisdiction on the token, no place known: no LP
        r = admin.post("/api/v1/reports", json={"channel": "walk_in", "description": "Dompet hilang", "lp_model": "B",
                                                 "location": {"landmark": "Dekat warung"}})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["detail"]] == ["lp_model"]


def test_times_beyond_what_utc_can_hold_are_a_422_not_a_500(system):
    import base64

    def cursor(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    with api_client(system, Role.admin) as admin:
        for day in ("0001-01-01", "9999-12-31"):
            r = admin.get("/api/v1/intervals", params={"date": day})
            assert r.status_code == 422 and r.json()["detail"][0]["field"] == "date", r.text
        assert admin.get("/api/v1/intervals", params={"date": "2026-11-28"}).status_code == 200
        for made_up in ("0001-01-01T00:00:00+14:00|x", "2026-11-28T10:00:00|x"):  # not in UTC's range; no offset
            r = admin.get("/api/v1/incidents", params={"cursor": cursor(made_up)})
            assert r.status_code == 422 and "cursor" in r.text, r.text
        r = admin.post("/api/v1/units/u-nowhere/position", json={"lat": -6.2, "lon": 106.8,
                                                                 "at": "0001-01-01T00:00:00+14:00"})
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "at", r.text
        r = admin.post("/api/v1/duties", json={"kind": "patroli", "unit_ids": ["u-nowhere"],
                                                "starts_at": "9999-12-31T23:00:00-05:00"})
        assert r.status_code in (404, 422), r.text  # the unit is unknown; never a 500


def test_text_holding_nul_is_refused_naming_where(system):
    """PostgreSQL cannot compare or store text holding U+0000: a 500 there, and a report accepted
    with 202 and then set aside by the worker that could not store it."""
    with api_client(system, Role.admin) as admin:
        for path, name in (("/api/v1/incidents/inc%00x", "incident_id"), ("/api/v1/reports/r%00", "report_id"),
                           ("/api/v1/incidents?jurisdiction=polres%00", "jurisdiction"),
                           ("/api/v1/duties?incident_id=%00", "incident_id")):
            r = admin.get(path)
            assert r.status_code == 422 and r.json()["detail"][0]["field"] == name, (path, r.text)
        r = admin.post("/api/v1/reports", json={"channel": "web", "description": "Ada\x00apa",
                                                 "location": {"address": "Jl. Melawai\x00"}})
        assert r.status_code == 422, r.text
        assert {e["field"] for e in r.json()["detail"]} == {"description", "location"}
    with httpx_client(system) as public:
        assert public.get("/track/SPKT-%00").status_code == 422


def test_a_long_idempotency_key_from_a_long_subject_is_kept_and_honoured(system):
    import httpx

    token = mint(system, sub="petugas." + "x" * 150 + "@polda-metro-jaya.example", role=Role.call_taker)
    key = "k" * 200  # with the subject, longer than the column that keeps it (PostgreSQL: a 500)
    report = {"channel": "walk_in", "description": "Kehilangan KTP di halte", "location": {"address": "Halte Blok M"}}
    with httpx.Client(base_url=system.api_url, timeout=30,
                      headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key}) as taker:
        first, again = taker.post("/api/v1/reports", json=report), taker.post("/api/v1/reports", json=report)
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert first.json()["report_id"] == again.json()["report_id"]


def httpx_client(settings):
    import httpx

    return httpx.Client(base_url=settings.api_url, timeout=30)
