"""The consoles in a real browser (Debian's Chromium through Playwright) on the running stack: the
dispatcher sees a report arrive, reads why a unit is recommended, assigns it with one click and
sees the unit's status change on the unit board, and watches a unit move; the command center sees
the same without the assign buttons; the field unit accepts on a phone-sized screen and records a
TPTKP step, which then shows in the incident detail of a dispatcher console already open; the
public tracker shows progress and nothing personal; with no tile server the map still draws the
jurisdictions. Nothing is reloaded: the pages follow the live stream, within bounded waits.

Screenshots are saved with the test output, in `test-output/screenshots/` at the repository's root
(or `$SPKT_TEST_OUTPUT/screenshots/`); their paths are printed."""
import os
import re
import time
import uuid
from pathlib import Path

import pytest

from services.api.auth import Role, mint
from services.tkp.domain import STEP_WORDS, TPTKP_STEPS
from tests.support import api_client, running_system, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("SPKT_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
# Kelapa Gading, Jakarta Utara: away from the other end-to-end tests' units on the same broker.
SCENE = (-6.1590, 106.9060)
REPORTER = {"name": "Sutrisno Wibowo", "phone": "081298765432"}
WAIT_MS = 45_000
OUTPUT = Path(os.environ.get("SPKT_TEST_OUTPUT") or Path(__file__).resolve().parents[2] / "test-output")

api = api_client


@pytest.fixture(scope="module")
def system(kafka_settings, tmp_path_factory):
    with running_system(kafka_settings, tmp_path_factory.mktemp("e2e-consoles"), command_wait_s=15.0,
                        assignment_ack_s=600.0) as settings:
        yield settings


@pytest.fixture(scope="module")
def playwright():
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright  # a dev dependency: installed by ./spkt.sh

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def screens() -> Path:
    folder = OUTPUT / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(playwright, tmp_path):
    """Opens a browser context with a fresh profile; every one is closed at the end."""
    opened = []

    def open_context(name: str, **options):
        profile = tmp_path / f"profile-{name}"
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS, locale="id-ID",
            timezone_id="Asia/Jakarta", **options)
        opened.append(context)
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        return page

    yield open_context
    for context in opened:
        context.close()


def shot(page, screens: Path, name: str) -> Path:
    path = screens / f"{name}.png"
    path.unlink(missing_ok=True)  # never mistake an earlier run's picture for this one's
    page.screenshot(path=str(path))
    assert path.stat().st_size > 0, path
    print(f"screenshot: {path}")
    return path


def token(system, role: Role, **claims) -> str:
    return mint(system, sub=f"console-{role.value}", role=role, **claims)


@pytest.fixture(scope="module")
def units(system):
    """Two units of this test's own near the scene, with GPS fixes."""
    run = uuid.uuid4().hex[:6]
    spec = {"car": ("car", (SCENE[0] + 0.0028, SCENE[1])), "moto": ("motorcycle", (SCENE[0] - 0.0065, SCENE[1]))}
    ids = {name: f"cns-{name}-{run}" for name in spec}
    with api(system, Role.admin) as admin:
        for name, (kind, _) in spec.items():
            r = admin.post("/api/v1/units", json={"unit_id": ids[name], "callsign": f"{name.upper()} Gading {run}",
                                                   "kind": kind, "station": "polsek-kelapa-gading"})
            assert r.status_code == 201, r.text
    for name, (_, where) in spec.items():
        with api(system, Role.field_unit, unit_id=ids[name]) as phone:
            r = phone.post(f"/api/v1/units/{ids[name]}/position", json={"lat": where[0], "lon": where[1]})
            assert r.status_code == 202, r.text
    with api(system, Role.dispatcher) as board:
        def positioned():
            items = {u["unit_id"]: u for u in board.get("/api/v1/units").json()["items"]}
            return all(ids[n] in items and items[ids[n]]["position"] for n in spec)
        wait_for(positioned, timeout=60, what="the console test's units on the board")
    return {**ids, "start": {ids[n]: where for n, (_, where) in spec.items()}}


@pytest.fixture(scope="module")
def scene(system):
    """What the consoles look at: one report at the scene, its incident and its tracking code."""
    return {}


def file_report(system, description: str) -> dict:
    with api(system, Role.call_taker) as taker:
        r = taker.post("/api/v1/reports", json={
            "channel": "phone_110", "category": "street_robbery", "description": description,
            "reporter": REPORTER, "location": {"lat": SCENE[0], "lon": SCENE[1], "address": "Jl. Boulevard Raya"}})
        assert r.status_code == 202, r.text
        accepted = r.json()
        incident_id = wait_for(lambda: taker.get(f"/api/v1/reports/{accepted['report_id']}").json().get("incident_id"),
                               timeout=60, what="the report on an incident")
    return {**accepted, "incident_id": incident_id}


def recommendation(system, incident_id: str) -> dict:
    with api(system, Role.dispatcher) as dispatcher:
        return wait_for(lambda: dispatcher.get(f"/api/v1/incidents/{incident_id}").json().get("recommendation"),
                        timeout=60, what=f"a recommendation for {incident_id}")


def open_console(browser, system, role: Role, name: str, *, fake_clock: bool = False, **claims):
    page = browser(name, viewport={"width": 1600, "height": 960})
    if fake_clock:
        page.clock.install()  # the page's own clock, to be moved forward: real time still flows
    page.goto(f"{system.api_url}/console/#token={token(system, role, **claims)}")
    page.wait_for_function("() => window.SPKT && window.SPKT.console && window.SPKT.console.state.claims")
    page.evaluate("() => { window.__notReloaded = true; }")
    return page


def test_the_dispatcher_sees_a_report_arrive_assigns_with_one_click_and_watches_units_move(
        system, units, scene, browser, screens):
    from playwright.sync_api import expect

    page = open_console(browser, system, Role.dispatcher, "dispatcher")
    expect(page.locator("#stream-pill")).to_have_attribute("data-state", "live")
    expect(page.locator("#console-title")).to_have_text("Konsol Dispatcher")

    # A report filed now appears in the queue without reloading the page.
    scene.update(file_report(system, f"Jambret tas di depan mal Kelapa Gading, pelaku kabur naik motor ({uuid.uuid4().hex[:4]})"))
    incident_id = scene["incident_id"]
    row = page.locator(f'.inc-row[data-incident-id="{incident_id}"]')
    expect(row).to_be_visible()
    expect(row.locator(".prio")).to_have_text("P2")
    expect(row.locator(".elapsed")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    marker_count = page.evaluate(f"() => window.SPKT.console.incidentMarkers.has({incident_id!r})")
    assert marker_count, "the incident is on the map"

    # The detail shows the recommendation with its reasons.
    rec = recommendation(system, incident_id)
    top = rec["candidates"][0]
    assert top["unit_id"] == units["car"], rec["candidates"]
    # The unit board (in the same page) has the unit available before the assignment.
    board_card = page.locator(f'#pane-units .unit-card[data-unit-id="{top["unit_id"]}"]')
    expect(board_card).to_have_attribute("data-status", "available")
    row.click()
    top_card = page.locator(".candidate.top")
    expect(top_card).to_have_attribute("data-unit-id", top["unit_id"])
    for reason in top["reasons"]:
        expect(top_card.locator(".reasons")).to_contain_text(reason)
    expect(page.locator("#detail .dnumber")).to_have_text(row.locator(".inc-number").inner_text())
    shot(page, screens, "dispatcher-recommendation")

    # One click assigns the top candidate; the assignment shows.
    top_card.locator("button.assign").click()
    expect(page.locator(f'#assignments .assignment[data-unit-id="{top["unit_id"]}"]')).to_be_visible()
    with api(system, Role.dispatcher) as dispatcher:
        assignments = dispatcher.get(f"/api/v1/incidents/{incident_id}").json()["assignments"]
    assert [a["unit_id"] for a in assignments] == [top["unit_id"]]
    expect(row.locator(".inc-status")).to_have_text("unit ditugaskan")

    # The unit board shows the unit dispatched to this incident, without a reload.
    page.locator("#tab-units").click()
    expect(page.locator("#pane-units")).to_be_visible()
    expect(board_card).to_be_visible()
    expect(board_card).to_have_attribute("data-status", "dispatched")
    expect(board_card).to_have_attribute("title", re.compile(r"— sedang ditugaskan$"))
    card_inside = page.locator(f'.unit-card[data-unit-id="{top["unit_id"]}"]')
    group = page.locator("#pane-units section.ugroup", has=card_inside)
    expect(group.locator("h3")).to_contain_text("sedang ditugaskan")
    expect(board_card.locator(".uc-inc")).to_have_text(row.locator(".inc-number").inner_text())
    assert page.evaluate("() => window.__notReloaded") is True
    shot(page, screens, "dispatcher-unit-board-dispatched")
    page.locator("#tab-incident").click()

    # A unit's new GPS fix moves its marker, without a reload.
    moto = units["moto"]
    start = units["start"][moto]
    page.wait_for_function("([id, lat, lon]) => { const p = window.SPKT.console.unitLatLng(id);"
                           " return p && Math.abs(p[0] - lat) < 1e-7 && Math.abs(p[1] - lon) < 1e-7; }",
                           arg=[moto, start[0], start[1]])
    moved = (SCENE[0] - 0.0030, SCENE[1] + 0.0040)
    with api(system, Role.field_unit, unit_id=moto) as phone:
        assert phone.post(f"/api/v1/units/{moto}/position", json={"lat": moved[0], "lon": moved[1]}).status_code == 202
    page.wait_for_function("([id, lat, lon]) => { const p = window.SPKT.console.unitLatLng(id);"
                           " return p && Math.abs(p[0] - lat) < 1e-7 && Math.abs(p[1] - lon) < 1e-7; }",
                           arg=[moto, moved[0], moved[1]])
    assert page.evaluate("() => window.__notReloaded") is True
    page.locator("#tab-units").click()
    expect(board_card).to_be_visible()
    shot(page, screens, "dispatcher-units")
    page.locator("#tab-intervals").click()
    expect(page.locator("#pane-intervals .iv-title")).to_be_visible()
    expect(page.locator("#pane-intervals .iv-group").first).to_contain_text("Proses panggilan")
    shot(page, screens, "dispatcher-intervals")
    page.locator("#tab-incident").click()
    shot(page, screens, "dispatcher-assigned")
    assert page.errors == []


def test_the_command_center_sees_the_same_read_only(system, units, scene, browser, screens):
    from playwright.sync_api import expect

    if "incident_id" not in scene:
        scene.update(file_report(system, "Jambret HP di halte Kelapa Gading, pelaku dua orang"))
    recommendation(system, scene["incident_id"])
    page = open_console(browser, system, Role.command_center, "command-center", fake_clock=True)
    expect(page.locator("#console-title")).to_have_text("Command Center")
    expect(page.locator("#readonly-badge")).to_be_visible()
    row = page.locator(f'.inc-row[data-incident-id="{scene["incident_id"]}"]')
    row.click()
    expect(page.locator(".candidate").first).to_be_visible()
    expect(page.locator(".candidate .reasons li").first).to_be_visible()
    assert page.locator("button.assign").count() == 0
    assert page.get_by_role("button", name="Tugaskan").count() == 0
    assert page.get_by_role("button", name="Minta rekomendasi baru").count() == 0
    shot(page, screens, "command-center")

    # An hour later (on the page's clock) the incident's running target has passed: red.
    expect(row).not_to_have_class(re.compile(r"\bbreached\b"))
    page.clock.fast_forward("01:00:00")
    expect(row).to_have_class(re.compile(r"\bbreached\b"))
    expect(row.locator(".target")).to_contain_text("lewat")
    expect(page.locator("#kpi-breach")).to_have_class(re.compile(r"\balarm\b"))
    shot(page, screens, "command-center-breach")
    assert page.errors == []


def test_the_field_unit_records_a_tptkp_step_on_a_phone_and_the_dispatcher_sees_it(
        system, units, scene, browser, screens):
    from playwright.sync_api import expect

    if "incident_id" not in scene:
        scene.update(file_report(system, "Penjambretan di depan pusat perbelanjaan Kelapa Gading"))
    incident_id = scene["incident_id"]
    unit_id = units["car"]
    with api(system, Role.dispatcher) as dispatcher:
        if not dispatcher.get(f"/api/v1/incidents/{incident_id}").json()["assignments"]:  # run on its own
            recommendation(system, incident_id)
            r = dispatcher.post(f"/api/v1/incidents/{incident_id}/assignments", json={"unit_id": unit_id})
            assert r.status_code == 201, r.text

    # The dispatcher has the incident open before the unit does anything; that page is not reloaded.
    desk = open_console(browser, system, Role.dispatcher, "dispatcher-watching")
    expect(desk.locator("#stream-pill")).to_have_attribute("data-state", "live")
    desk.locator(f'.inc-row[data-incident-id="{incident_id}"]').click()
    tptkp = desk.locator('#detail section.dsec').filter(has=desk.locator('ol.steps[data-phase="tptkp"]'))
    desk_step = tptkp.locator('ol.steps li[data-step="arrival_reported"]')
    progress = tptkp.locator("h3 .dsec-extra")
    expect(desk_step).to_be_visible()
    expect(desk_step).to_contain_text(STEP_WORDS["arrival_reported"])
    expect(desk_step).not_to_have_class(re.compile(r"\bdone\b"))
    expect(progress).to_have_text(f"0/{len(TPTKP_STEPS)}")

    page = browser("field-unit", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                   device_scale_factor=2)
    page.goto(f"{system.api_url}/console/unit#token={token(system, Role.field_unit, unit_id=unit_id)}")
    accept = page.locator("#accept")
    expect(accept).to_be_visible()
    expect(page.locator("#assignment .anumber")).not_to_be_empty()
    box = accept.bounding_box()
    assert box["height"] >= 48 and box["width"] >= 150, box  # a thumb can hit it
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, screens, "field-unit-assignment")

    accept.click()
    expect(page.locator("#tkp-card")).to_be_visible()
    expect(page.locator("#unit-status")).to_have_text("dalam perjalanan")
    page.locator("#step-note").fill("Korban luka ringan di tangan")
    page.locator('button.record[data-step="arrival_reported"]').click()
    recorded_at = time.monotonic()
    expect(page.locator('#steps li.done[data-step="arrival_reported"]')).to_be_visible()

    # The dispatcher's open page shows the step in the incident's TPTKP progress, within a bounded wait.
    expect(desk_step).to_have_class(re.compile(r"\bdone\b"), timeout=WAIT_MS)
    print(f"the TPTKP step showed in the dispatcher's detail {time.monotonic() - recorded_at:.1f} s after the tap")
    expect(desk_step.locator(".step-note")).to_have_text("Korban luka ringan di tangan")
    expect(desk_step.locator(".step-when")).to_contain_text(unit_id)
    expect(progress).to_have_text(f"1/{len(TPTKP_STEPS)}")
    assert desk.evaluate("() => window.__notReloaded") is True
    desk_step.scroll_into_view_if_needed()
    shot(desk, screens, "dispatcher-tptkp")
    assert desk.errors == []

    with api(system, Role.dispatcher) as dispatcher:
        def recorded():
            body = dispatcher.get(f"/api/v1/incidents/{incident_id}").json()
            steps = [s for s in body["tkp"]["tptkp"] if s["step"] == "arrival_reported"]
            mine = [a for a in body["assignments"] if a["unit_id"] == unit_id]
            return steps and mine and mine[0]["status"] != "assigned" and (steps[0], mine[0])
        step, assignment = wait_for(recorded, timeout=30, what="the TPTKP step and the accepted assignment")
    assert step["note"] == "Korban luka ringan di tangan" and step["by"] == unit_id
    assert assignment["acknowledged_at"]
    page.locator("#tkp-card").scroll_into_view_if_needed()
    shot(page, screens, "field-unit-tptkp")
    assert page.errors == []


def test_the_public_tracker_shows_progress_and_nothing_personal(system, units, scene, browser, screens):
    from playwright.sync_api import expect

    if "tracking_code" not in scene:
        scene.update(file_report(system, "Tas dijambret di trotoar Kelapa Gading"))
    page = browser("tracker", viewport={"width": 412, "height": 860}, is_mobile=True)
    page.goto(f"{system.api_url}/lacak/{scene['tracking_code']}")
    expect(page.locator("#track-status")).not_to_be_empty()
    expect(page.locator("#milestones li").first).to_be_visible()
    expect(page.locator("#milestones")).to_contain_text("Laporan diterima")
    assert page.locator("#milestones li").count() >= 2  # received, and handled since
    text = page.locator("body").inner_text()
    html = page.content()
    for secret in (REPORTER["name"], "Sutrisno", REPORTER["phone"], "81298765432", "Boulevard"):
        assert secret not in text and secret not in html, secret
    shot(page, screens, "tracker")

    page.goto(f"{system.api_url}/lacak/SPKT-ZZZZ-ZZZZ")
    expect(page.locator(".tnotfound")).to_contain_text("Kode tidak ditemukan")
    assert page.errors == []


def test_without_tiles_the_map_draws_the_jurisdictions_and_says_when_leaflet_is_missing(system, browser, screens):
    from playwright.sync_api import expect

    page = open_console(browser, system, Role.dispatcher, "outlines")
    config = page.evaluate("() => fetch('/console/config.json').then(r => r.json())")
    assert config["tile_url"] is None and config["leaflet"] is True
    outlines = page.locator(".leaflet-overlay-pane svg path.spkt-outline")
    expect(outlines.first).to_be_attached()
    polres = [s for s in config["city"]["stations"] if s["level"] == "polres"]
    assert outlines.count() >= len(polres) + 1  # one outline per Polres and the city's bounds
    assert page.locator(".leaflet-tile").count() == 0
    expect(page.locator(".area-label").first).to_be_visible()
    shot(page, screens, "map-without-tiles")
    assert page.errors == []

    # Without the map library the console still works and says what to do.
    bare = browser("no-leaflet", viewport={"width": 1400, "height": 900})
    bare.route("**/console/vendor/leaflet/**", lambda route: route.fulfill(status=404, body="tidak ada"))
    bare.goto(f"{system.api_url}/console/#token={token(system, Role.dispatcher)}")
    expect(bare.locator(".map-missing")).to_contain_text("Pustaka peta belum terpasang")
    expect(bare.locator(".map-missing")).to_contain_text("./spkt.sh up")
    expect(bare.locator("#stream-pill")).to_have_attribute("data-state", "live")
    shot(bare, screens, "map-library-missing")
    assert bare.errors == []



def test_the_detail_shows_what_the_stream_told_once_the_read_model_has_it(system, units, browser, screens):
    """The stream comes straight from Kafka, the read model a moment later. A detail refreshed on a
    stream event the projection has not applied yet shows it once applied, with no further event:
    here the projection is stopped while a new recommendation is made, then started again."""
    from playwright.sync_api import expect

    from deploy.stack import Stack

    report = file_report(system, f"Copet di pasar Kelapa Gading, dompet hilang ({uuid.uuid4().hex[:4]})")
    incident_id = report["incident_id"]
    recommendation(system, incident_id)
    page = open_console(browser, system, Role.dispatcher, "dispatcher-read-model-behind")
    expect(page.locator("#stream-pill")).to_have_attribute("data-state", "live")
    page.locator(f'.inc-row[data-incident-id="{incident_id}"]').click()
    made = page.locator("#detail ol.timeline li", has_text="Rekomendasi:")
    expect(made).to_have_count(1)

    supervisor = Stack(system).rpc().supervisor
    supervisor.stopProcess("projection")
    try:
        detail = (lambda r: r.request.method == "GET"
                  and r.url.split("?")[0].endswith(f"/api/v1/incidents/{incident_id}"))
        with page.expect_response(detail):  # the console heard of it and read the detail: not there yet
            with api(system, Role.dispatcher) as dispatcher:
                r = dispatcher.post(f"/api/v1/incidents/{incident_id}/recommendations", json={})
                assert r.status_code == 202, r.text
        expect(made).to_have_count(1)
    finally:
        supervisor.startProcess("projection")
    expect(made).to_have_count(2, timeout=WAIT_MS)  # the projection starts again and catches up
    page.wait_for_function("() => window.SPKT.console.state.awaited === null")
    assert page.evaluate("() => window.__notReloaded") is True
    shot(page, screens, "dispatcher-read-model-caught-up")
    assert page.errors == []
