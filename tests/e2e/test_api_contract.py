"""API.md on the running stack: the incident queue with its cursor, the board, jurisdiction scope,
the public tracker's privacy rules, and a role x endpoint matrix over every endpoint."""
import uuid

import pytest
from fastapi.routing import APIRoute

from schemas import topics
from services.api.auth import Role
from services.api.main import ROUTERS
from tests.conftest import fresh_database
from tests.support import api_client, events_on, running_system, wait_for

pytestmark = pytest.mark.e2e

api = api_client
SOUTH = (-6.2440, 106.7990)   # Kebayoran Baru, Jakarta Selatan
NORTH = (-6.1090, 106.8820)   # Tanjung Priok, Jakarta Utara


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def system(request, kafka_settings, tmp_path_factory):
    """The whole stack, its read model on SQLite and then on PostgreSQL (both on the session's
    broker: the second run's reports are filed about 900 m east, so they are not the first's)."""
    global EAST
    EAST = 0.0 if request.param == "sqlite" else 0.008
    state = tmp_path_factory.mktemp(f"e2e-contract-{request.param}")
    with fresh_database(request.param, state) as url, \
            running_system(kafka_settings, state, command_wait_s=10.0, assignment_ack_s=600.0, public_limit_per_minute=100_000,
                           database_url=url) as settings:
        yield settings


CALLERS = iter(range(1000, 9999))
EAST = 0.0


def file_report(system, where, description, **extra) -> dict:
    phone = f"08127777{next(CALLERS)}"  # one number files at most a few reports a minute
    with api(system, Role.call_taker) as taker:
        r = taker.post("/api/v1/reports", json={
            "channel": "phone_110", "description": description,
            "location": {"lat": where[0], "lon": where[1] + EAST, "address": "Jl. Melati No. 7 RT 03/RW 05"},
            "reporter": {"name": "Siti Rahmawati", "phone": phone, "nik": "3174011201900003"}, **extra})
        assert r.status_code == 202, r.text
        report = r.json()
    with api(system, Role.dispatcher) as dispatcher:
        report["incident_id"] = wait_for(lambda: dispatcher.get(f"/api/v1/reports/{report['report_id']}")
                                         .json().get("incident_id"), timeout=60, what="the report's incident")
    return report


@pytest.fixture(scope="module")
def two_areas(system):
    run = uuid.uuid4().hex[:6]
    south = [file_report(system, (SOUTH[0] + 0.01 * n, SOUTH[1]), f"Kebakaran gudang nomor {n} kode {run}",
                         category="fire") for n in range(3)]
    north = file_report(system, NORTH, f"Tawuran pelajar di dekat pelabuhan kode {run}", category="public_order")
    return {"south": south, "north": north}


def incident_ids(client, **params) -> list[str]:
    """Every page of the queue, following next_cursor."""
    ids, cursor = [], None
    for _ in range(200):
        r = client.get("/api/v1/incidents", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        ids += [i["incident_id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("the cursor never ended")


def test_the_queue_pages_with_a_cursor_and_filters_by_jurisdiction_and_priority(system, two_areas):
    ours = {r["incident_id"] for r in two_areas["south"]} | {two_areas["north"]["incident_id"]}
    with api(system, Role.dispatcher) as dispatcher:
        paged = incident_ids(dispatcher, limit=1)
        assert len(paged) == len(set(paged)) and ours <= set(paged)  # one page at a time: none twice, none lost
        whole = dispatcher.get("/api/v1/incidents", params={"limit": 200}).json()["items"]
        assert [i["incident_id"] for i in whole] == paged  # the same order, newest first
        assert [i["opened_at"] for i in whole] == sorted((i["opened_at"] for i in whole), reverse=True)
        south = set(incident_ids(dispatcher, jurisdiction="polres-jaksel"))
        assert {r["incident_id"] for r in two_areas["south"]} <= south
        assert two_areas["north"]["incident_id"] not in south
        open_ = dispatcher.get("/api/v1/incidents", params={"status": "open", "limit": 200}).json()["items"]
        assert all(i["status"] not in ("closed", "duplicate") for i in open_)
        row = next(i for i in whole if i["incident_id"] == two_areas["north"]["incident_id"])
        assert row["category"] == "public_order" and row["targets"] and row["jurisdiction"].startswith("polsek-")
        by_priority = dispatcher.get("/api/v1/incidents", params={"priority": row["priority"], "limit": 200}).json()
        assert {i["priority"] for i in by_priority["items"]} == {row["priority"]}
        bad = dispatcher.get("/api/v1/incidents", params={"cursor": "not-a-cursor"})
        assert bad.status_code == 422 and "cursor" in bad.text
        assert dispatcher.get("/api/v1/incidents", params={"limit": 0}).status_code == 422


def test_a_command_center_sees_its_own_jurisdiction_only_and_writes_nothing(system, two_areas):
    north_id, south_id = two_areas["north"]["incident_id"], two_areas["south"][0]["incident_id"]
    with api(system, Role.command_center, jurisdiction="polres-jakut") as jakut:
        seen = set(incident_ids(jakut))
        assert north_id in seen and south_id not in seen
        assert jakut.get(f"/api/v1/incidents/{north_id}").status_code == 200
        outside = jakut.get(f"/api/v1/incidents/{south_id}")
        assert outside.status_code == 403 and "wilayah" in outside.json()["detail"]
        assert jakut.get("/api/v1/incidents", params={"jurisdiction": "polres-jaksel"}).status_code == 403
        board = jakut.get("/api/v1/board")
        assert board.status_code == 200
        assert all(u["jurisdiction"] in ("polres-jakut",) or u["jurisdiction"].startswith("polsek-")
                   for units in board.json()["units_by_status"].values() for u in units)
        r = jakut.post("/api/v1/incidents/" + north_id + "/assignments", json={"unit_id": "x"})
        assert r.status_code == 403  # reads everything in its area, writes nothing
    with api(system, Role.command_center, jurisdiction="polda-metro-jaya") as polda:
        assert {north_id, south_id} <= set(incident_ids(polda))


def test_the_board_counts_open_incidents_and_units(system, two_areas):
    with api(system, Role.supervisor) as supervisor:
        board = supervisor.get("/api/v1/board").json()
        listed = supervisor.get("/api/v1/incidents", params={"status": "open", "limit": 200}).json()["items"]
        units = supervisor.get("/api/v1/units").json()["items"]
    assert sum(board["incidents"]["by_priority"].values()) == sum(board["incidents"]["by_status"].values())
    assert sum(board["incidents"]["by_status"].values()) >= len([i for i in listed])  # opened since, not fewer
    assert sum(board["units"]["by_status"].values()) == sum(board["units"]["by_class"].values())
    assert sum(len(v) for v in board["units_by_status"].values()) >= len(units)
    assert set(board["units"]["by_class"]) <= {"available", "conditional", "not_available"}


def test_an_incident_page_says_whether_it_includes_an_event_seen_on_the_stream(system, two_areas):
    """The stream comes straight from Kafka and the read model a moment later: `?seen=` lets a
    console know whether the page it got already shows what the stream told it."""
    incident_id = two_areas["north"]["incident_id"]
    opened = wait_for(lambda: next((e for e in events_on(system, topics.INCIDENTS)
                                    if e.type == "incident.opened" and e.data.get("incident_id") == incident_id),
                                   None), timeout=30, what="the incident's opening on Kafka")
    with api(system, Role.dispatcher) as dispatcher:
        plain = dispatcher.get(f"/api/v1/incidents/{incident_id}")
        assert plain.status_code == 200 and "x-read-model" not in plain.headers
        included = dispatcher.get(f"/api/v1/incidents/{incident_id}", params={"seen": opened.id})
        assert included.status_code == 200 and included.headers["x-read-model"] == "includes"
        assert included.json() == plain.json()
        later = dispatcher.get(f"/api/v1/incidents/{incident_id}", params={"seen": f"not-applied-{uuid.uuid4()}"})
        assert later.status_code == 200 and later.headers["x-read-model"] == "behind"
        assert later.json()["incident_id"] == incident_id
        too_long = dispatcher.get(f"/api/v1/incidents/{incident_id}", params={"seen": "x" * 201})
        assert too_long.status_code == 422, too_long.text


def test_the_public_tracker_shows_progress_but_nothing_private(system):
    run = uuid.uuid4().hex[:6]
    report = file_report(system, (SOUTH[0] - 0.02, SOUTH[1] + 0.02), f"Jambret tas di halte kode {run}",
                         category="theft")
    anonymous = api(system, Role.admin)
    anonymous.headers.pop("Authorization")
    with anonymous:
        tracked = wait_for(lambda: (lambda r: r if r["status"] == "in_progress" else None)(
            anonymous.get(f"/track/{report['tracking_code']}").json()), timeout=30, what="the tracker in progress")
        assert [m["code"] for m in tracked["milestones"]] == ["received", "in_progress"]
        assert tracked["status_text"] and tracked["tracking_code"] == report["tracking_code"]
        page = anonymous.get(f"/track/{report['tracking_code'].lower()}").text
        for private in ("Siti", "0812", "+62812", "3174011201900003", "Melati", str(SOUTH[0] - 0.02)[:6]):
            assert private not in page, private
        unknown = anonymous.get("/track/SPKT-XXXX-XXXX")
        assert unknown.status_code == 404 and "Kode" in unknown.json()["detail"]


def test_a_sensitive_report_shows_only_received_until_an_officer_shares_it(system):
    run = uuid.uuid4().hex[:6]
    report = file_report(system, (SOUTH[0] + 0.03, SOUTH[1] - 0.02),
                         f"Anak saya dicabuli tetangga kode {run}", category="sexual_offence")
    anonymous = api(system, Role.admin)
    anonymous.headers.pop("Authorization")
    with anonymous, api(system, Role.supervisor) as supervisor:
        assert supervisor.get(f"/api/v1/incidents/{report['incident_id']}").json()["sensitive"] is True
        tracked = anonymous.get(f"/track/{report['tracking_code']}").json()
        assert tracked["status"] == "received" and len(tracked["milestones"]) == 1
        assert anonymous.post(f"/api/v1/incidents/{report['incident_id']}/shareable", json={}).status_code == 401
        with api(system, Role.call_taker) as taker:
            assert taker.post(f"/api/v1/incidents/{report['incident_id']}/shareable", json={}).status_code == 403
        r = supervisor.post(f"/api/v1/incidents/{report['incident_id']}/shareable",
                            json={"reason": "pelapor meminta informasi perkembangan"})
        assert r.status_code == 202, r.text
        wait_for(lambda: anonymous.get(f"/track/{report['tracking_code']}").json()["status"] == "in_progress",
                 timeout=30, what="the tracker to show progress once shared")
        timeline = supervisor.get(f"/api/v1/incidents/{report['incident_id']}").json()["timeline"]
        assert any(e["type"] == "incident.marked-shareable" for e in timeline)


# --- role x endpoint ----------------------------------------------------------------------------
ALL = set(Role)
R = Role
READERS = ALL  # every signed-in role may read incidents (a field unit: only its own)
BOARD = {R.dispatcher, R.supervisor, R.command_center, R.admin}
# API.md "Authentication and roles", endpoint by endpoint. A new endpoint must be added here.
MATRIX = {
    ("POST", "/api/v1/reports"): {R.call_taker, R.dispatcher, R.field_unit, R.admin},
    ("GET", "/api/v1/reports/{report_id}"): READERS,
    ("GET", "/api/v1/categories"): READERS,
    ("GET", "/api/v1/incidents"): READERS,
    ("GET", "/api/v1/incidents/{incident_id}"): READERS,
    ("GET", "/api/v1/incidents/{incident_id}/recommendations"): READERS,
    ("POST", "/api/v1/incidents/{incident_id}/merge"): {R.dispatcher, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/split"): {R.dispatcher, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/decision"): {R.dispatcher, R.supervisor, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/shareable"): {R.dispatcher, R.supervisor, R.admin},
    ("GET", "/api/v1/escalations"): {R.supervisor, R.command_center, R.admin},
    ("GET", "/api/v1/units"): BOARD,
    ("POST", "/api/v1/units"): {R.admin},
    ("POST", "/api/v1/units/{unit_id}/status"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/units/{unit_id}/position"): {R.field_unit, R.admin},
    ("POST", "/api/v1/units/{unit_id}/panic"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/units/{unit_id}/sign-in"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/units/{unit_id}/sign-out"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/assignments"): {R.dispatcher, R.admin},
    ("POST", "/api/v1/assignments/{assignment_id}/accept"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/assignments/{assignment_id}/decline"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/recommendations"): {R.dispatcher, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/backup"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/location"): {R.dispatcher, R.admin},
    ("GET", "/api/v1/intervals"): BOARD,
    ("POST", "/api/v1/incidents/{incident_id}/tptkp"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/olah-tkp"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/evidence"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/evidence/{evidence_id}/custody"): {R.field_unit, R.dispatcher, R.supervisor, R.admin},
    ("POST", "/api/v1/evidence/{evidence_id}/corrections"): {R.field_unit, R.dispatcher, R.supervisor, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/letters"): {R.field_unit, R.dispatcher, R.supervisor, R.admin},
    ("GET", "/api/v1/evidence/{evidence_id}"): READERS,
    ("POST", "/api/v1/incidents/{incident_id}/close"): {R.dispatcher, R.supervisor, R.admin},
    ("POST", "/api/v1/incidents/{incident_id}/reopen"): {R.dispatcher, R.supervisor, R.admin},
    ("GET", "/api/v1/incidents/{incident_id}/chain"): READERS,
    ("GET", "/api/v1/incidents/{incident_id}/eido"): READERS,
    ("POST", "/api/v1/duties"): {R.dispatcher, R.admin},
    ("POST", "/api/v1/duties/{duty_id}/check-in"): {R.field_unit, R.dispatcher, R.admin},
    ("POST", "/api/v1/duties/{duty_id}/complete"): {R.dispatcher, R.admin},
    ("GET", "/api/v1/duties"): BOARD,
    ("GET", "/api/v1/notifications"): {R.supervisor, R.command_center, R.admin},
    ("GET", "/api/v1/board"): BOARD,
    ("GET", "/api/v1/stream"): BOARD,
}
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/track/{tracking_code}"),
          ("POST", "/api/v1/inbound/messages")}  # gateways sign the body with their own secret


def every_endpoint() -> set[tuple[str, str]]:
    return {(method, r.path) for router in ROUTERS for r in router.routes
            if isinstance(r, APIRoute) and r.include_in_schema for method in r.methods}


def test_the_matrix_covers_every_endpoint():
    assert every_endpoint() - PUBLIC == set(MATRIX), "add the new endpoint's roles to MATRIX"
    assert all(R.command_center not in roles for (method, _), roles in MATRIX.items() if method == "POST")
    assert all(R.call_taker not in roles for (_, path), roles in MATRIX.items() if "assign" in path)


def test_every_endpoint_admits_its_roles_refuses_the_others_and_wants_a_token(system, two_areas):
    incident_id = two_areas["north"]["incident_id"]
    report_id = two_areas["north"]["report_id"]
    unit_id = f"matrix-{uuid.uuid4().hex[:6]}"
    ids = {"incident_id": incident_id, "report_id": report_id, "unit_id": unit_id, "assignment_id": "asg-none",
           "evidence_id": "ev-none", "duty_id": "duty-none"}
    outcome: dict[tuple[str, str, str], int] = {}
    nobody = api(system, Role.admin)
    nobody.headers.pop("Authorization")
    clients = {role: api(system, role, unit_id=unit_id if role is Role.field_unit else None) for role in Role}
    try:
        for (method, path), allowed in sorted(MATRIX.items()):
            url = path.format(**ids)
            kwargs = {"json": {}} if method == "POST" else {}
            if path == "/api/v1/stream":  # a live stream: the status line is all this test needs
                for who, client in [("none", nobody), *((r.value, c) for r, c in clients.items())]:
                    with client.stream("GET", url, timeout=10) as r:
                        outcome[(method, path, who)] = r.status_code
                continue
            outcome[(method, path, "none")] = nobody.request(method, url, **kwargs).status_code
            for role, client in clients.items():
                outcome[(method, path, role.value)] = client.request(method, url, **kwargs).status_code
    finally:
        nobody.close()
        for client in clients.values():
            client.close()
    wrong = []
    for (method, path), allowed in MATRIX.items():
        if outcome[(method, path, "none")] != 401:
            wrong.append((method, path, "no token", outcome[(method, path, "none")]))
        for role in Role:
            code = outcome[(method, path, role.value)]
            refused = code == 403
            # A field unit is refused the incidents it is not assigned to: its scope, not its role.
            scoped = role is R.field_unit and "{incident_id}" in path
            if (role in allowed) == refused and not (scoped and refused) or code in (401, 500):
                wrong.append((method, path, role.value, code))
    assert wrong == [], wrong
    # Allowed roles get the endpoint's own answer: the reads with real ids succeed.
    for path in ("/api/v1/incidents/{incident_id}", "/api/v1/reports/{report_id}", "/api/v1/incidents",
                 "/api/v1/board", "/api/v1/categories", "/api/v1/incidents/{incident_id}/eido"):
        for role in MATRIX[("GET", path)] - {R.field_unit}:
            assert outcome[("GET", path, role.value)] == 200, (path, role, outcome[("GET", path, role.value)])


# --- rebuild equivalence (last in the module: it stops the stack's writers) ----------------------
# Written by the API itself, not from events: a rebuild has no way to know them.
NOT_FROM_EVENTS = {"idempotent_requests", "seal_claims", "alembic_version"}
# When this database applied it, not what happened; a page's revision is new on every write.
WALL_CLOCK = {("processed_events", "processed_at"), ("incidents", "revision")}
# The order this database wrote each incident's timeline in (its hash chain). A projection that
# catches up on a backlog reads the partitions in its own interleaving, a rebuild in timestamp
# order: the same entries, each chain valid, the links may differ. Checked separately below.
WRITE_ORDER = {("timeline", "seq"), ("timeline", "prev_hash"), ("timeline", "hash")}


def read_model_rows(url: str) -> dict[str, list[tuple]]:
    """Every table's rows, in primary-key order, with values made comparable across databases."""
    from datetime import datetime, timezone

    from sqlalchemy import create_engine, select

    from services.projection import tables as t

    def plain(value):
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        if isinstance(value, float):
            return round(value, 9)
        return value

    engine = create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            for table in t.Base.metadata.sorted_tables:
                if table.name in NOT_FROM_EVENTS:
                    continue
                columns = [c for c in table.columns if (table.name, c.name) not in WALL_CLOCK | WRITE_ORDER]
                rows = conn.execute(select(*columns).order_by(*table.primary_key.columns)).all()
                out[table.name] = [{c.name: plain(v) for c, v in zip(columns, row)} for row in rows]
    finally:
        engine.dispose()
    return out


def read_model_differences(live: dict[str, list[dict]], rebuilt: dict[str, list[dict]]) -> dict:
    """By table: the first rows that differ, as (the row's first column, {column: (live, rebuilt)}),
    or (live rows, rebuilt rows) when only the counts differ."""
    differ = {}
    for name, rows in live.items():
        other = rebuilt.get(name, [])
        if rows != other:
            pairs = [(next(iter(a.values())), {c: (a[c], b.get(c)) for c in a if a[c] != b.get(c)})
                     for a, b in zip(rows, other) if a != b]
            differ[name] = pairs[:3] or (len(rows), len(other))
    return differ


def broken_chains(url: str) -> list[str]:
    """The incidents whose timeline or TKP hash chain does not verify."""
    from sqlalchemy import select

    from services.projection import tables as t
    from services.projection.verify import incident_chains

    sessions = t.prepare(url)
    try:
        with sessions() as session:
            ids = session.scalars(select(t.Incident.incident_id)).all()
            return [i for i in ids if not incident_chains(session, i)["valid"]]
    finally:
        sessions.kw["bind"].dispose()


def test_a_rebuilt_read_model_equals_the_live_one(system, two_areas, tmp_path, request):
    from deploy.stack import WORKERS, Stack
    from deploy.topics import admin_client
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec
    from schemas import topics
    from services.projection import rebuild

    # Nothing new is written (every process but the projection stops), and the projection has
    # applied everything on its topics (its committed offsets reach the ends).
    supervisor = Stack(system).rpc().supervisor
    for name in [w for w in WORKERS if w != "projection"] + ["api"]:
        supervisor.stopProcess(name)
    admin = admin_client(system)
    try:
        parts = [TopicPartition(topic, p) for topic in rebuild.READ_MODEL_TOPICS
                 for p in range(system.topic_partitions)]

        def lag() -> int | None:
            ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in parts})
            done = {}  # GPS positions have a group of their own, committed once their fixes are written
            for group in topics.groups_of("projection"):
                done.update(admin.list_group_offsets({group: None}).get(group, {}))
            behind = sum(max(0, ends[tp].offset - (done[tp].offset if tp in done else 0)) for tp in parts)
            return behind == 0 or None

        wait_for(lag, timeout=60, what="the projection to apply every event on its topics")
    finally:
        admin.close()

    kind = "postgresql" if system.db_url.startswith("postgresql") else "sqlite"
    with fresh_database(kind, tmp_path) as fresh:
        result = rebuild.run(system, fresh)
        assert result.applied > 0
        live, rebuilt = read_model_rows(system.db_url), read_model_rows(fresh)
        chains_ok = {url: broken_chains(url) for url in (system.db_url, fresh)}
    assert all(broken == [] for broken in chains_ok.values()), chains_ok
    assert set(live) == set(rebuilt) and len(live) >= 15
    differ = read_model_differences(live, rebuilt)
    assert differ == {}, differ
    assert len(live["incidents"]) >= 4 and len(live["timeline"]) > len(live["incidents"])
    print(f"\nrebuild on {kind}: {result.applied} events applied, {sum(map(len, live.values()))} rows equal "
          f"in {len(live)} tables")
