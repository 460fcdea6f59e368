"""Jurisdiction (nearest station, polygons with holes), the offline gazetteer and `resolve`.

No network: the gazetteer's HTTP adapter refuses every request, and the socket layer is blocked
for the geocoding tests so a stray request would fail loudly.
"""
from __future__ import annotations

import ast
import json
import logging
import math
import socket
from pathlib import Path

import pytest
from geopy.exc import GeocoderServiceError, GeocoderTimedOut
from geopy.geocoders import Nominatim
from geopy.geocoders.base import Geocoder
from geopy.location import Location as GeoLocation

from schemas.events import Location
from services.intake import geography
from services.intake.geography import (
    NOTE_UNVERIFIED, Gazetteer, GazetteerEntry, Jurisdiction, Jurisdictions, ResolvedLocation, Station,
    haversine_m, make_geocoder, normalise, resolve,
)

CITY = Path(__file__).resolve().parents[2] / "spkt" / "demo" / "jakarta.json"
POLDA = "polda-metro-jaya"
MONAS = (-6.1754, 106.8272)


@pytest.fixture(scope="module")
def raw_city() -> dict:
    return json.loads(CITY.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def jurisdictions() -> Jurisdictions:
    return Jurisdictions.from_city_file(CITY)


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_city_file(CITY)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def offset(lat: float, lon: float, north_m: float = 0.0, east_m: float = 0.0) -> tuple[float, float]:
    return lat + north_m / 111_320, lon + east_m / (111_320 * math.cos(math.radians(lat)))


# --- the data file additions -------------------------------------------------------------------

def test_city_file_has_polda_offices_and_a_gazetteer(raw_city):
    assert raw_city["polda"]["station_id"] == POLDA and raw_city["polda"]["name"] == "Polda Metro Jaya"
    for s in raw_city["stations"]:
        if s["level"] == "polres":
            assert s["office"] == s["name"].upper() and s["office"].startswith("POLRES METRO JAKARTA ")
        else:
            assert "office" not in s
    entries = raw_city["gazetteer"]
    assert len(entries) >= 40
    assert len({e["name"] for e in entries}) == len(entries)
    b = raw_city["bounds"]
    for e in entries:
        assert isinstance(e["aliases"], list), e["name"]
        assert b["south"] <= e["lat"] <= b["north"] and b["west"] <= e["lon"] <= b["east"], e["name"]
    names = {e["name"] for e in entries}
    assert {"Monas", "Bundaran HI", "Blok M", "Jl. Sudirman", "Pasar Tanah Abang"} <= names


# --- jurisdiction: nearest station -------------------------------------------------------------

@pytest.mark.parametrize("polsek, polres, office", [
    ("polsek-kebayoran-baru", "polres-jaksel", "POLRES METRO JAKARTA SELATAN"),
    ("polsek-tebet", "polres-jaksel", "POLRES METRO JAKARTA SELATAN"),
    ("polsek-gambir", "polres-jakpus", "POLRES METRO JAKARTA PUSAT"),
    ("polsek-matraman", "polres-jaktim", "POLRES METRO JAKARTA TIMUR"),
    ("polsek-kebon-jeruk", "polres-jakbar", "POLRES METRO JAKARTA BARAT"),
    ("polsek-kelapa-gading", "polres-jakut", "POLRES METRO JAKARTA UTARA"),
])
def test_a_point_beside_a_polsek_belongs_to_it_its_polres_and_the_polda(jurisdictions, polsek, polres, office):
    station = jurisdictions.station(polsek)
    lat, lon = offset(station.lat, station.lon, north_m=60, east_m=-40)
    j = jurisdictions.locate(lat, lon)
    assert (j.polsek, j.polres, j.polda) == (polsek, polres, POLDA)
    assert j.code == polsek and j.office == office
    assert j.method == "nearest_station"
    assert 60 < j.distance_m < 85  # sqrt(60² + 40²) ≈ 72 m


def test_every_polsek_wins_the_points_around_its_own_station(jurisdictions):
    polsek = [s for s in jurisdictions.stations if s.level == "polsek"]
    assert len(polsek) >= 10
    for s in polsek:
        for north, east in ((150, 0), (0, -150), (-100, 100)):
            assert jurisdictions.locate(*offset(s.lat, s.lon, north, east)).polsek == s.station_id, s.station_id


def test_station_lookups_and_the_tree(jurisdictions):
    assert jurisdictions.polres_of("polsek-menteng") == "polres-jakpus"
    assert jurisdictions.polres_of("polres-jakut") == "polres-jakut"
    with pytest.raises(ValueError):
        jurisdictions.polres_of(POLDA)
    with pytest.raises(KeyError):
        jurisdictions.station("polsek-atlantis")
    polda = jurisdictions.station(POLDA)
    assert polda.level == "polda" and polda.parent is None and polda.office_name == "POLDA METRO JAYA"
    assert jurisdictions.station("polres-jaksel").parent == POLDA
    assert jurisdictions.station("polres-jaksel").office == "POLRES METRO JAKARTA SELATAN"
    assert jurisdictions.polda_of("polsek-tebet") == POLDA
    assert not jurisdictions.has_boundaries


def test_jurisdiction_code_is_the_most_specific_id():
    assert Jurisdiction("polsek-x", "polres-y", "polda-z", "polygon", None).code == "polsek-x"
    assert Jurisdiction(None, "polres-y", "polda-z", "polygon", None).code == "polres-y"


def test_stations_must_form_a_tree():
    polda = Station("polda-a", "Polda A", "polda", None, -6.2, 106.8)
    polres = Station("polres-a", "Polres A", "polres", None, -6.2, 106.8, office="POLRES A")
    orphan = Station("polsek-a", "Polsek A", "polsek", "polres-missing", -6.2, 106.8)
    with pytest.raises(ValueError, match="polda"):
        Jurisdictions([polres])
    with pytest.raises(ValueError, match="polsek-a"):
        Jurisdictions([polda, polres, orphan])
    with pytest.raises(ValueError, match="duplicate"):
        Jurisdictions([polda, polres, polres])
    # a Polres with no Polsek still answers, from its own station
    j = Jurisdictions([polda, polres]).locate(-6.21, 106.8)
    assert (j.polsek, j.polres, j.polda, j.office) == (None, "polres-a", "polda-a", "POLRES A")
    assert j.distance_m == pytest.approx(1112, rel=0.01)


def test_haversine_agrees_with_geopy_geodesic_to_half_a_percent():
    from geopy.distance import geodesic
    for a, b in ((MONAS, (-6.2443, 106.8)), (MONAS, (-6.1148, 106.8801)), ((-6.3, 106.7), (-6.1, 106.95))):
        assert haversine_m(*a, *b) == pytest.approx(geodesic(a, b).m, rel=0.005)


# --- jurisdiction: polygons --------------------------------------------------------------------

def square(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


@pytest.fixture(scope="module")
def boundaries() -> dict:
    return {"type": "FeatureCollection", "features": [
        # deliberately drawn over Polsek Tebet's station: the polygon must beat the nearest station
        {"type": "Feature", "properties": {"station_id": "polsek-menteng"},
         "geometry": {"type": "Polygon", "coordinates": [square(106.84, -6.24, 106.87, -6.22)]}},
        # a Polres area around it, so the Polsek square is the more specific one
        {"type": "Feature", "properties": {"station_id": "polres-jaktim"},
         "geometry": {"type": "Polygon", "coordinates": [square(106.83, -6.25, 106.89, -6.21)]}},
        # a square with a hole, as a MultiPolygon
        {"type": "Feature", "properties": {"station_id": "polres-jakbar"},
         "geometry": {"type": "MultiPolygon", "coordinates": [[
             square(106.70, -6.30, 106.78, -6.25),
             square(106.73, -6.28, 106.75, -6.26),
         ]]}},
    ]}


@pytest.fixture(scope="module")
def with_polygons(boundaries, tmp_path_factory) -> Jurisdictions:
    path = tmp_path_factory.mktemp("geo") / "boundaries.geojson"
    path.write_text(json.dumps(boundaries), encoding="utf-8")
    return Jurisdictions.from_city_file(CITY, boundaries_path=path)


def test_the_containing_polygon_wins_over_the_nearest_station(with_polygons, jurisdictions):
    tebet = jurisdictions.station("polsek-tebet")
    beside = offset(tebet.lat, tebet.lon, 50, 50)
    assert jurisdictions.locate(*beside).polsek == "polsek-tebet"  # without polygons
    j = with_polygons.locate(*beside)
    assert with_polygons.has_boundaries
    assert (j.polsek, j.polres, j.polda, j.method, j.distance_m) == (
        "polsek-menteng", "polres-jakpus", POLDA, "polygon", None)
    assert j.office == "POLRES METRO JAKARTA PUSAT"


def test_the_most_specific_polygon_wins_and_a_polres_polygon_alone_gives_no_polsek(with_polygons):
    inside_both = with_polygons.locate(-6.23, 106.85)
    assert inside_both.polsek == "polsek-menteng" and inside_both.method == "polygon"
    polres_only = with_polygons.locate(-6.245, 106.88)
    assert (polres_only.polsek, polres_only.polres, polres_only.method) == (None, "polres-jaktim", "polygon")
    assert polres_only.code == "polres-jaktim" and polres_only.office == "POLRES METRO JAKARTA TIMUR"


def test_a_hole_is_not_part_of_the_polygon(with_polygons):
    ring = with_polygons.locate(-6.27, 106.715)
    assert (ring.polres, ring.polsek, ring.method) == ("polres-jakbar", None, "polygon")
    hole = with_polygons.locate(-6.27, 106.74)
    nearest = min((s for s in with_polygons.stations if s.level == "polsek"),
                  key=lambda s: haversine_m(-6.27, 106.74, s.lat, s.lon))
    assert (hole.polsek, hole.method) == (nearest.station_id, "nearest_station")
    assert hole.distance_m == pytest.approx(haversine_m(-6.27, 106.74, nearest.lat, nearest.lon))


def test_points_outside_every_polygon_fall_back_to_the_nearest_station(with_polygons, jurisdictions):
    gambir = jurisdictions.station("polsek-gambir")
    point = offset(gambir.lat, gambir.lon, 30, 30)
    j = with_polygons.locate(*point)
    assert (j.polsek, j.polres, j.method) == ("polsek-gambir", "polres-jakpus", "nearest_station")
    assert j.distance_m == pytest.approx(42, abs=5)


@pytest.mark.parametrize("feature, message", [
    ({"properties": {"station_id": "polsek-atlantis"},
      "geometry": {"type": "Polygon", "coordinates": [square(0, 0, 1, 1)]}}, "not a known station"),
    ({"properties": {"station_id": POLDA},
      "geometry": {"type": "Polygon", "coordinates": [square(0, 0, 1, 1)]}}, "polsek or polres"),
    ({"properties": {"station_id": "polsek-tebet"},
      "geometry": {"type": "Point", "coordinates": [106.8, -6.2]}}, "Polygon or MultiPolygon"),
])
def test_bad_boundaries_are_refused(jurisdictions, feature, message):
    with pytest.raises(ValueError, match=message):
        Jurisdictions(jurisdictions.stations, {"type": "FeatureCollection", "features": [feature]})


def test_the_module_imports_no_broker_web_or_sql_code():
    tree = ast.parse(Path(geography.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    forbidden = {"faust", "kafka", "aiokafka", "confluent_kafka", "fastapi", "starlette", "httpx", "requests",
                 "aiohttp", "sqlalchemy", "sqlite3", "psycopg", "uvicorn"}
    assert imported & forbidden == set()
    assert "geopy" in imported


# --- the gazetteer -----------------------------------------------------------------------------

def test_normalise_expands_abbreviations_and_drops_relative_words():
    assert normalise("Depan Jl. Sudirman") == ["jalan", "sudirman"]
    assert normalise("sebelah Pd. Indah Mall, Kec. Kebayoran Lama") == [
        "pondok", "indah", "mall", "kecamatan", "kebayoran", "lama"]
    assert normalise("di seberang RS Fatmawati") == ["rumah", "sakit", "fatmawati"]
    assert normalise("Gg. Mawar RT 03 RW 05 No. 7") == ["gang", "mawar", "7"]
    assert normalise("Jln. Kemang, Kel. Bangka") == ["jalan", "kemang", "kelurahan", "bangka"]


def test_the_gazetteer_is_a_geopy_geocoder_that_never_uses_the_network(gazetteer, no_network):
    assert isinstance(gazetteer, Geocoder) and len(gazetteer) > 90
    with pytest.raises(GeocoderServiceError):
        gazetteer.adapter.get_json("https://example.invalid/", timeout=1, headers={})
    found = gazetteer.geocode("Monas")
    assert isinstance(found, GeoLocation)


@pytest.mark.parametrize("query, name, near", [
    ("Monas", "Monas", MONAS),
    ("depan Blok M Plaza", "Blok M Plaza", (-6.2446, 106.7979)),
    ("jl sudirman", "Jl. Sudirman", (-6.2146, 106.8184)),
    ("JL. KH. Fachrudin, Tanah Abang", "Pasar Tanah Abang Blok A", (-6.187, 106.813)),  # an address from places
    ("Jl. Cipaku I, Kebayoran Baru, Jakarta Selatan", "Pasar Santa", (-6.2386, 106.8093)),
    ("Pasar Tanah Abang", "Pasar Tanah Abang", (-6.1868, 106.8133)),
    ("sebelah Pd. Indah Mall", "Pondok Indah Mall", (-6.2656, 106.7838)),
    ("Kota Tua", "Kota Tua (Taman Fatahillah)", (-6.1352, 106.8133)),  # a name in brackets is an alias
    ("Mapolsek Tebet", "Polsek Tebet", (-6.2318, 106.8522)),
    ("Jl. Sudirman dekat Dukuh Atas", "Dukuh Atas", (-6.201, 106.823)),  # the point beats the road
])
def test_the_gazetteer_finds_landmarks_streets_and_addresses(gazetteer, no_network, query, name, near):
    found = gazetteer.geocode(query)
    assert found is not None, query
    assert found.raw["name"] == name and found.raw["gazetteer"] is True
    assert haversine_m(found.latitude, found.longitude, *near) < 50
    assert found.raw["score"] >= gazetteer.threshold


@pytest.mark.parametrize("query", ["xyzzy plugh", "qwerty asdf", "", "   ", "di depan"])
def test_the_gazetteer_answers_nothing_for_nonsense(gazetteer, no_network, query):
    # nonsense, or nothing left after the stop words
    assert gazetteer.geocode(query) is None
    assert gazetteer.geocode(query, exactly_one=False) is None


@pytest.mark.parametrize("query", ["pasar", "stasiun", "gambir"])
def test_the_gazetteer_does_not_pick_among_far_apart_candidates(gazetteer, no_network, query):
    # a word that fits several places kilometres apart: candidates exist, but no single answer
    candidates = gazetteer.geocode(query, exactly_one=False)
    assert candidates is not None and len(candidates) >= 2
    assert gazetteer.geocode(query) is None


def test_the_gazetteer_lists_candidates_best_first_one_per_place(gazetteer, no_network):
    found = gazetteer.geocode("pasar", exactly_one=False)
    assert isinstance(found, list) and len(found) >= 3
    assert all("pasar" in normalise(loc.raw["matched"]) for loc in found)
    scores = [loc.raw["score"] for loc in found]
    assert scores == sorted(scores, reverse=True)
    monas = gazetteer.geocode("Monas", exactly_one=False)
    assert [loc.raw["name"] for loc in monas][:1] == ["Monas"]
    # the place "Monumen Nasional (Monas)" is the same spot: listed once
    assert sum(haversine_m(loc.latitude, loc.longitude, *MONAS) < 150 for loc in monas) == 1


def test_strong_and_weak_matches(gazetteer):
    assert gazetteer.geocode("Blok M Plaza").raw["strong"] is True
    weak = gazetteer.geocode("Kebayoran Baru")  # a district: the nearest thing is its Polsek, not a point
    assert weak is not None and weak.raw["strong"] is False


# --- resolve -----------------------------------------------------------------------------------

def test_caller_coordinates_are_taken_as_given(gazetteer):
    loc = Location(lat=-6.2441, lon=106.8001, accuracy_m=12, address="Jl. Sudirman")
    r = resolve(loc, gazetteer)
    assert (r.lat, r.lon, r.verified, r.source, r.query) == (-6.2441, 106.8001, True, "caller", None)
    assert "pelapor" in r.note and "12 m" in r.note and r.resolved


def test_resolve_an_address(gazetteer, no_network):
    r = resolve(Location(address="Jl. Melawai 5, Kebayoran Baru, Jakarta Selatan"), gazetteer)
    assert r.source == "geocoder" and r.verified is True
    assert r.query == "Jl. Melawai 5, Kebayoran Baru, Jakarta Selatan"
    assert haversine_m(r.lat, r.lon, -6.2443, 106.8) < 50
    assert "Blok M Square" in r.note


def test_resolve_a_landmark_when_the_address_finds_nothing(gazetteer, no_network):
    r = resolve(Location(address="Gg. Kenanga RT 04", landmark="depan Stasiun Tebet"), gazetteer)
    assert r.source == "geocoder" and r.verified is True and r.query == "depan Stasiun Tebet"
    assert haversine_m(r.lat, r.lon, -6.2262, 106.8584) < 50


def test_a_street_or_a_weak_match_is_kept_but_not_verified(gazetteer, no_network):
    street = resolve(Location(address="Jl. Sudirman"), gazetteer)
    assert street.source == "geocoder" and street.verified is False and street.lat is not None
    assert street.note.startswith(NOTE_UNVERIFIED) and "ruas jalan" in street.note
    weak = resolve(Location(landmark="Kebayoran Baru"), gazetteer)
    assert weak.source == "geocoder" and weak.verified is False and NOTE_UNVERIFIED in weak.note


def test_a_strong_later_query_beats_a_weak_earlier_one(gazetteer, no_network):
    r = resolve(Location(address="Jl. Sudirman", landmark="Semanggi"), gazetteer)
    assert r.verified is True and r.query == "Semanggi"


def test_nothing_resolvable_is_unresolved_with_a_note_in_indonesian(gazetteer, no_network):
    for loc in (Location(address="xyzzy plugh", landmark="qwerty"), Location()):
        r = resolve(loc, gazetteer)
        assert r == ResolvedLocation(None, None, False, "unresolved", None, r.note)
        assert r.note.startswith("lokasi belum terverifikasi") and not r.resolved
    assert resolve(Location(address="Monas"), None).source == "unresolved"


class Failing(Geocoder):
    def __init__(self, exc: Exception):
        self.exc, self.calls = exc, []

    def geocode(self, query, *, exactly_one=True, timeout=None):
        self.calls.append(query)
        raise self.exc


@pytest.mark.parametrize("exc", [GeocoderTimedOut("timed out"), GeocoderServiceError("503"), OSError("no route")])
def test_a_failing_geocoder_leaves_the_location_unresolved_without_raising(exc, caplog):
    geocoder = Failing(exc)
    with caplog.at_level(logging.WARNING):
        r = resolve(Location(address="Jl. Sudirman", landmark="Monas"), geocoder)
    assert (r.lat, r.lon, r.verified, r.source) == (None, None, False, "unresolved")
    assert r.note.startswith(NOTE_UNVERIFIED) and type(exc).__name__ in r.note
    assert geocoder.calls == ["Jl. Sudirman", "Monas", "Jl. Sudirman, Monas"]
    said = [rec.getMessage() for rec in caplog.records]
    assert said and all(type(exc).__name__ in m for m in said)
    assert not any("Sudirman" in m or "Monas" in m for m in said)  # an address may be a victim's home


class Network(Geocoder):
    """Stands in for a network geocoder: answers without a gazetteer's raw fields."""
    def __init__(self):
        pass

    def geocode(self, query, *, exactly_one=True, timeout=None):
        return GeoLocation("Jalan Jenderal Sudirman, Jakarta", (-6.21, 106.82), {"place_id": 1})


def test_a_network_geocoders_answer_is_kept_but_not_verified():
    r = resolve(Location(address="Jl. Sudirman 1"), Network())
    assert (r.lat, r.lon, r.verified, r.source) == (-6.21, 106.82, False, "geocoder")
    assert NOTE_UNVERIFIED in r.note


# --- make_geocoder -----------------------------------------------------------------------------

def test_make_geocoder_gazetteer(no_network):
    g = make_geocoder("gazetteer", city_file=CITY)
    assert isinstance(g, Gazetteer) and g.geocode("Bundaran HI").raw["name"] == "Bundaran HI"
    with pytest.raises(ValueError):
        make_geocoder("gazetteer", city_file=None)


def test_make_geocoder_builds_a_network_geocoder_without_calling_it(no_network):
    g = make_geocoder("nominatim", city_file=CITY, user_agent="spkt-test", timeout=3)
    assert isinstance(g, Nominatim) and not isinstance(g, Gazetteer)
    assert g.headers["User-Agent"] == "spkt-test" and g.timeout == 3


def test_gazetteer_entries_can_be_given_directly():
    g = Gazetteer([GazetteerEntry("Warung Bu Tini", -6.25, 106.81, aliases=("Warteg Tini",)),
                   GazetteerEntry("Bengkel Jaya", -6.30, 106.85, address="Jl. Mawar 3, Cilandak")])
    assert g.geocode("dekat warteg tini").raw["name"] == "Warung Bu Tini"
    assert g.geocode("Jl. Mawar 3, Cilandak").raw["name"] == "Bengkel Jaya"
    assert g.geocode("toko roti") is None
