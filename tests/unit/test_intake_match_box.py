"""The real tools' duplicate search looks only at incidents near the report, with the same answer."""
import random
from datetime import datetime, timedelta, timezone

from schemas.events import Location, ReportReceived
from services.intake import domain, duplicates
from services.intake.categories import CATEGORIES
from services.intake.setup import _open_incident, build_tools
from spkt.settings import Settings

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
TEXTS = ("ada kebakaran rumah warga", "pencurian motor di parkiran", "kecelakaan mobil dan motor",
         "perkelahian pemuda di gang", "orang pingsan di jalan")


def test_the_near_incidents_give_the_same_match_as_all_of_them():
    tools = build_tools(Settings())
    rules = duplicates.rules_from_catalogue()
    rng = random.Random(7)
    codes = [c.code for c in CATEGORIES]
    state = domain.AreaState(open_incidents={}, counters={}, outcomes={}, recent_messages={})
    matched = 0
    for n in range(600):
        # Clustered around a few places so that some reports match and some incidents are just outside.
        lat = -6.2 + rng.choice((0.0, 0.004, 0.02, 0.3)) + rng.gauss(0, 0.002)
        lon = 106.85 + rng.choice((0.0, 0.004, 0.02, 0.3)) + rng.gauss(0, 0.002)
        report = ReportReceived(report_id=f"r-{n}", tracking_code=f"SPKT-{n}", channel="phone_110",
                                description=rng.choice(TEXTS), category=rng.choice(codes[:12]),
                                location=Location(lat=lat, lon=lon, accuracy_m=rng.choice((10, 50, 300))),
                                received_at=T0 + timedelta(seconds=n * 3), area="polres-jaksel")
        located = tools.locate(report.location)
        incidents = list(state.open_incidents.values())
        found = tools.best_match(report, located, report.category, state.open_incidents)
        facts = duplicates.ReportFacts(category=report.category, lat=located.lat, lon=located.lon,
                                       at=report.received_at, text=report.description, report_id=report.report_id,
                                       accuracy_m=report.location.accuracy_m)
        everything = duplicates.best_match(facts, [_open_incident(i) for i in incidents], rules)
        assert (found[0] if found else None) == (everything.incident_id if everything else None)
        matched += found is not None
        domain.handle_report(report, f"e-{n}", state, tools, report.received_at)
    assert matched > 20


def _box(facts: dict, lat: float, lon: float, reach: float) -> bool:
    return facts["lat"] is not None and abs(facts["lat"] - lat) <= reach and abs(facts["lon"] - lon) <= reach


def test_the_grid_finds_what_a_scan_finds_through_changes_made_in_front_of_it_and_behind_it():
    rng = random.Random(11)
    backing: dict[str, dict] = {}
    grid = domain.OpenIncidents(backing)

    def facts(n: int) -> dict:
        return {"incident_id": f"i-{n}", "lat": rng.choice((None, -6.2 + rng.uniform(-0.05, 0.05))),
                "lon": 106.85 + rng.uniform(-0.05, 0.05)}

    def agrees() -> None:
        for _ in range(40):
            lat, lon, reach = -6.2 + rng.uniform(-0.05, 0.05), 106.85 + rng.uniform(-0.05, 0.05), rng.uniform(0, 0.03)
            scan = sorted(f["incident_id"] for f in backing.values() if _box(f, lat, lon, reach))
            assert sorted(f["incident_id"] for f in grid.near(lat, lon, reach, reach)) == scan

    for n in range(300):
        grid[f"i-{n}"] = facts(n)
    agrees()
    for n in range(0, 300, 3):  # moved (a relocation), removed, popped
        grid[f"i-{n}"] = facts(n)
        del grid[f"i-{n + 1}"]
        assert grid.pop(f"i-{n + 2}")["incident_id"] == f"i-{n + 2}"
    assert grid.pop("i-none", None) is None and grid.get("i-none") is None and "i-0" in grid
    agrees()
    # Behind the grid, as a faust table's recovery changes it: told, or the count differs.
    backing.clear()
    backing.update({f"j-{n}": {**facts(n), "incident_id": f"j-{n}"} for n in range(200)})
    agrees()  # 200 against the grid's 100: built again
    for n in range(100):
        backing[f"j-{n}"] = {**facts(n), "incident_id": f"j-{n}"}  # the same count, other places
    grid.stale()
    agrees()
