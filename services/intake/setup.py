"""Builds intake's tools from the settings: geography, geocoder, classifier, duplicate rules.

Shared by the intake worker (which decides) and the API (which routes each report to its area's
partition with the same geography, without the network).
"""
from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache

from schemas.events import Location, MatchScore, ReportReceived
from spkt.settings import Settings

from . import classify as classifier
from . import duplicates, geography
from .categories import CATEGORIES
from .domain import UNLOCATED, Classified, IntakeTools, Located, OpenIncidents


@lru_cache(maxsize=4)
def jurisdictions(city: str, boundaries: str | None) -> geography.Jurisdictions:
    return geography.Jurisdictions.from_city_file(city, boundaries)


def area_of(settings: Settings, location: Location, fallback: str | None = None) -> str:
    """The Polres whose partition decides this report: from coordinates, else the offline gazetteer."""
    juris = jurisdictions(str(settings.city), _str(settings.boundaries_file))
    lat, lon = location.lat, location.lon
    if lat is None:
        found = geography.resolve(location, _gazetteer(str(settings.city)))
        lat, lon = found.lat, found.lon
    if lat is None:
        return fallback or UNLOCATED
    return juris.locate(lat, lon).polres


@lru_cache(maxsize=4)
def _gazetteer(city: str) -> geography.Gazetteer:
    return geography.make_geocoder("gazetteer", city_file=city)


def build_tools(settings: Settings) -> IntakeTools:
    from datetime import timedelta

    juris = jurisdictions(str(settings.city), _str(settings.boundaries_file))
    geocoder = geography.make_geocoder(settings.geocoder, city_file=str(settings.city))
    rules = duplicates.rules_from_catalogue()

    def locate(location: Location) -> Located:
        found = geography.resolve(location, geocoder)
        if found.lat is None:
            return Located(None, None, False, found.note, None, None)
        j = juris.locate(found.lat, found.lon)
        return Located(found.lat, found.lon, found.verified, found.note or None, j.polsek, j.polres)

    def classify(text: str) -> Classified:
        c = classifier.classify(text)
        return Classified(c.category, round(c.confidence, 3), c.low_confidence, tuple(c.matched))

    # No incident farther than the largest duplicate radius (plus the most the positions' accuracy
    # can take off a distance) can match. That box is checked on the stored facts, so only nearby
    # incidents become OpenIncidents: with thousands open, building every one cost intake about
    # 13 ms a report (benchmarks/pipeline.py). duplicates.best_match still applies the exact box.
    reach_deg = (max(rules.radius_m(c.code) for c in CATEGORIES) + duplicates.MAX_UNCERTAINTY_M) / duplicates.M_PER_DEG

    def best_match(report: ReportReceived, located: Located, category: str, incidents: OpenIncidents):
        if located.lat is None:
            return None
        lat, lon = located.lat, located.lon
        near = incidents.near(lat, lon, reach_deg, reach_deg / max(math.cos(math.radians(lat)), 1e-6))
        facts = duplicates.ReportFacts(category=category, lat=lat, lon=lon,
                                       at=report.received_at, text=report.description, report_id=report.report_id,
                                       accuracy_m=report.location.accuracy_m)
        found = duplicates.best_match(facts, (_open_incident(i) for i in near), rules)
        if found is None:
            return None
        return found.incident_id, MatchScore(total=round(found.total, 3), distance_m=round(found.distance_m, 1),
                                             minutes=round(found.minutes, 1),
                                             category_score=round(found.category_score, 3),
                                             text_score=round(found.text_score, 3), reasons=list(found.reasons),
                                             detail_score=round(found.detail_score, 3))

    def office_name(polres: str) -> str:
        try:
            return juris.station(polres).office_name
        except KeyError:  # an area the city file does not know: its id stands for the office
            return polres.upper()

    def area_code(polres: str) -> str:
        return polres.removeprefix("polres-").upper()

    return IntakeTools(locate=locate, classify=classify, best_match=best_match, office_name=office_name,
                       area_code=area_code, resend_window=timedelta(seconds=settings.resend_window_s),
                       decision_limit=timedelta(seconds=settings.assistance_decision_s))


def _open_incident(facts: dict) -> duplicates.OpenIncident:
    return duplicates.OpenIncident(
        incident_id=facts["incident_id"], category=facts["category"], lat=facts["lat"], lon=facts["lon"],
        opened_at=datetime.fromisoformat(facts["opened_at"]),
        last_report_at=datetime.fromisoformat(facts["last_report_at"]),
        texts=list(facts["texts"]), report_count=len(facts["report_ids"]), accuracy_m=facts.get("accuracy_m"))


def _str(path) -> str | None:
    return str(path) if path else None
