"""The README's pictures of the consoles, made from a running demo:

    .venv/bin/python docs/screenshots.py

Starts the whole system the way `spkt up --demo` does (its own Kafka broker, every service, the
API and the Jakarta demo flow) in a fresh temporary state folder on free ports, waits until the
demo has filed several reports that became incidents with recommendations, assigns a few of them
through the API, and photographs with Debian's Chromium (through Playwright):

- docs/images/dispatcher-console.jpg — the dispatcher console (1600x960) on a P1/P2 incident with
  its recommendation and reasons (JPEG: as a PNG it is about 1 MB);
- docs/images/field-unit.png — the field-unit page of an assigned unit on a phone (390x844).

Then stops everything it started. Each picture is a PNG unless that is larger than MAX_BYTES, then a
JPEG (quality 80); the README links the names printed at the end. SPKT_TEST_CHROMIUM names another
Chromium.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.harness import wait_until  # noqa: E402
from benchmarks.system import free_port  # noqa: E402
from deploy.kafka import free_port_block  # noqa: E402
from deploy.stack import start_system, stop_system  # noqa: E402
from services.api.auth import Role, mint  # noqa: E402
from spkt.settings import Settings  # noqa: E402

IMAGES = ROOT / "docs" / "images"
CHROMIUM = os.environ.get("SPKT_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
MAX_BYTES = 600_000
INCIDENTS = 10  # open incidents with a recommendation before the pictures are taken
ASSIGNED = 3  # of which this many get their top candidate assigned (units dispatched on the board)
WAIT_S = 180.0
WAIT_MS = 60_000


def wait_for(probe, *, timeout: float, what: str, interval: float = 0.5):
    try:
        return wait_until(probe, timeout=timeout, what=what, interval=interval)
    except TimeoutError as exc:
        raise SystemExit(str(exc)) from None


def demo_settings(state: Path) -> Settings:
    kafka_port, controller_port = free_port_block(1)
    return Settings(state_dir=state, kafka_bootstrap=None, kafka_port=kafka_port,
                    kafka_controller_port=controller_port, kafka_data_dir=state / "kafka",
                    api_port=free_port(), database_url=f"sqlite:///{state / 'spkt.db'}",
                    demo_report_interval_s=3.0, assignment_ack_s=3600.0)


def incidents_with_recommendations(api: httpx.Client) -> list[dict]:
    """The open incidents whose detail has a recommendation with candidates (the details)."""
    items = api.get("/api/v1/incidents", params={"status": "open", "limit": 100}).json().get("items", [])
    details = []
    for item in items:
        detail = api.get(f"/api/v1/incidents/{item['incident_id']}").json()
        if (detail.get("recommendation") or {}).get("candidates"):
            details.append(detail)
    return details


def save(page, name: str) -> Path:
    """`name`.png, or `name`.jpg (quality 80) when the PNG is larger than MAX_BYTES."""
    png, jpg = IMAGES / f"{name}.png", IMAGES / f"{name}.jpg"
    png.unlink(missing_ok=True)
    jpg.unlink(missing_ok=True)
    page.screenshot(path=str(png))
    path = png
    if png.stat().st_size > MAX_BYTES:
        png.unlink()
        page.screenshot(path=str(jpg), type="jpeg", quality=80)
        path = jpg
        print(f"  {name}.png was over {MAX_BYTES // 1000} KB: saved as JPEG (update the README's link)")
    print(f"  {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")
    return path


def photograph(settings: Settings, profiles: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    dispatcher_token = mint(settings, sub="docs-screenshots", role=Role.dispatcher, ttl_s=3600)
    with httpx.Client(base_url=settings.api_url, headers={"Authorization": f"Bearer {dispatcher_token}"},
                      timeout=30) as api:
        print(f"waiting for the demo to open {INCIDENTS} incidents with recommendations …")
        details = wait_for(lambda: (lambda d: len(d) >= INCIDENTS and d)(incidents_with_recommendations(api)),
                           timeout=WAIT_S, what=f"{INCIDENTS} open incidents with recommendations")
        # The one shown: of the most urgent (P1, else P2), the one nearest the middle of the units,
        # so the map around it is busy. The queue puts it near the top.
        by_urgency = sorted(details, key=lambda d: (d["priority"], d["opened_at"]))
        urgent = [d for d in by_urgency if d["priority"] == "P1"] or [d for d in by_urgency if d["priority"] == "P2"]
        if not urgent:
            raise SystemExit("no P1/P2 incident with a recommendation yet: run again")
        fixes = [u["position"] for u in api.get("/api/v1/units").json()["items"] if u.get("position")]
        middle = (statistics.median(f["lat"] for f in fixes), statistics.median(f["lon"] for f in fixes))
        shown = min(urgent, key=lambda d: (d["location"]["lat"] - middle[0]) ** 2
                    + (d["location"]["lon"] - middle[1]) ** 2)
        # A few others get their top free candidate, so the board has units on their way; the first
        # one assigned is the field unit photographed.
        assigned: list[tuple[dict, str]] = []
        for detail in by_urgency:
            if len(assigned) >= ASSIGNED:
                break
            if detail["incident_id"] == shown["incident_id"]:
                continue
            busy = {unit for _, unit in assigned} | {c["unit_id"] for c in shown["recommendation"]["candidates"]}
            free = [c["unit_id"] for c in detail["recommendation"]["candidates"] if c["unit_id"] not in busy]
            if not free:
                continue
            r = api.post(f"/api/v1/incidents/{detail['incident_id']}/assignments", json={"unit_id": free[0]})
            if r.status_code == 201:
                assigned.append((detail, free[0]))
            else:
                print(f"  assignment of {free[0]} to {detail['number']}: {r.status_code} {r.text[:200]}")
        if not assigned:
            raise SystemExit("no unit could be assigned: run again")
        field_incident, field_unit = assigned[0]
        print(f"dispatcher console on {shown['number']} ({shown['priority']}); field unit {field_unit} "
              f"on {field_incident['number']}")

    IMAGES.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        def open_page(name: str, **options):
            context = p.chromium.launch_persistent_context(
                str(profiles / name), executable_path=CHROMIUM, headless=True, args=ARGS, locale="id-ID",
                timezone_id="Asia/Jakarta", **options)
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(WAIT_MS)
            return context, page

        context, page = open_page("dispatcher", viewport={"width": 1600, "height": 960}, device_scale_factor=1)
        try:
            page.goto(f"{settings.api_url}/console/#token={dispatcher_token}")
            expect(page.locator("#stream-pill")).to_have_attribute("data-state", "live")
            page.wait_for_function("n => document.querySelectorAll('.inc-row').length >= n", arg=INCIDENTS)
            page.wait_for_function("() => window.SPKT.console.unitMarkers.size > 20")
            for _, unit in assigned:  # the board has heard of the assignments
                expect(page.locator(f'#pane-units .unit-card[data-unit-id="{unit}"]')).to_have_attribute(
                    "data-status", "dispatched")
            page.locator(f'.inc-row[data-incident-id="{shown["incident_id"]}"]').click()
            expect(page.locator(".candidate.top .reasons li").first).to_be_visible()
            expect(page.locator("#detail .dnumber")).to_have_text(shown["number"])
            page.evaluate("""id => {
                document.getElementById('queue').scrollTop = 0;
                document.querySelector(`.inc-row[data-incident-id="${id}"]`).scrollIntoView({ block: 'nearest' });
            }""", shown["incident_id"])
            # The incident and its first candidates, with enough of the city around them to see the others.
            page.evaluate("""id => {
                const c = window.SPKT.console;
                const d = c.state.detail;
                const points = [[d.location.lat, d.location.lon]];
                (d.recommendation.candidates || []).slice(0, 3).forEach((x) => {
                    const p = c.unitLatLng(x.unit_id);
                    if (p) points.push(p);
                });
                c.map.fitBounds(window.L.latLngBounds(points).pad(0.6), { maxZoom: 13, animate: false });
            }""", shown["incident_id"])
            page.wait_for_function("() => !document.querySelector('.leaflet-zoom-anim')")
            save(page, "dispatcher-console")
        finally:
            context.close()

        unit_token = mint(settings, sub=f"docs-{field_unit}", role=Role.field_unit, unit_id=field_unit, ttl_s=3600)
        context, page = open_page("field-unit", viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
        try:
            page.goto(f"{settings.api_url}/console/unit#token={unit_token}")
            expect(page.locator("#accept")).to_be_visible()
            expect(page.locator("#assignment .anumber")).to_have_text(field_incident["number"])
            # The little map has zoomed in on the incident (its scale says so) and stopped moving.
            page.wait_for_function("""() => {
                const node = document.getElementById('umap');
                const scale = node && node.querySelector('.leaflet-control-scale-line');
                return node && node.querySelector('.inc-pin') && !node.classList.contains('leaflet-zoom-anim')
                    && scale && /^(\\d+ m|[1-3] km)$/.test(scale.textContent.trim());
            }""")
            save(page, "field-unit")
        finally:
            context.close()


def progress(text: str, _last=[""]) -> None:
    if text != _last[0]:
        print(f"  {text}")
        _last[0] = text


def main() -> int:
    if not Path(CHROMIUM).exists():
        print(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="spkt-screenshots-") as tmp:
        state = Path(tmp) / "state"
        settings = demo_settings(state)
        print(f"starting the system with the demo flow (state in {state}) …")
        try:
            start_system(settings, demo=True, on_progress=progress)
            print(f"running: {settings.api_url}")
            photograph(settings, Path(tmp) / "profiles")
        finally:
            services, broker = stop_system(settings)
            print(f"stopped: {len(services)} processes, {len(broker)} broker processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
