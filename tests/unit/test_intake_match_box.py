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
        found = tools.best_match(report, located, report.category, incidents)
        facts = duplicates.ReportFacts(category=report.category, lat=located.lat, lon=located.lon,
                                       at=report.received_at, text=report.description, report_id=report.report_id,
                                       accuracy_m=report.location.accuracy_m)
        everything = duplicates.best_match(facts, [_open_incident(i) for i in incidents], rules)
        assert (found[0] if found else None) == (everything.incident_id if everything else None)
        matched += found is not None
        domain.handle_report(report, f"e-{n}", state, tools, report.received_at)
    assert matched > 20
