"""Where an incident is, and whose it is. Pure: no Kafka, no faust, no HTTP framework, no SQL.

Three things, all working offline:

- `Jurisdictions.locate(lat, lon)`: the Polsek / Polres / Polda whose area holds a point. With
  boundary polygons (GeoJSON) when a deployment has them, the most specific containing area wins;
  otherwise the nearest Polsek station by great-circle distance (DOMAIN.md: "every incident
  belongs to the Polsek/Polres whose area holds its location").
- `Gazetteer`: a geopy geocoder that answers from the city file (places, stations and the
  gazetteer of landmarks and streets) without touching the network, and refuses to guess.
- `resolve(location, geocoder)`: turns a report's `Location` into coordinates plus a flag saying
  whether a dispatcher can trust them, and a note in Indonesian for the dispatcher.

`make_geocoder` picks the gazetteer or one of geopy's network geocoders by name (configuration).
"""
from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from geopy.adapters import BaseSyncAdapter
from geopy.exc import GeocoderServiceError
from geopy.geocoders import get_geocoder_for_service
from geopy.geocoders.base import Geocoder
from geopy.location import Location as GeoLocation

log = logging.getLogger(__name__)

Level = Literal["polda", "polres", "polsek"]
LEVELS: tuple[str, ...] = ("polda", "polres", "polsek")
EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)

NOTE_CALLER = "koordinat dari pelapor"
NOTE_UNVERIFIED = "lokasi belum terverifikasi"


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on a sphere: within ~0.5 % of geodesic, and cheap."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


# --- stations and jurisdiction -----------------------------------------------------------------

@dataclass(frozen=True)
class Station:
    station_id: str
    name: str
    level: Level
    parent: str | None
    lat: float
    lon: float
    office: str | None = None
    """The issuing office written in LP numbers (Polres), e.g. "POLRES METRO JAKARTA SELATAN"."""

    @property
    def office_name(self) -> str:
        return self.office or self.name.upper()


@dataclass(frozen=True)
class Jurisdiction:
    polsek: str | None
    polres: str
    polda: str
    method: Literal["polygon", "nearest_station"]
    distance_m: float | None
    """Distance to the station chosen by the nearest-station method; None for polygons."""
    office: str | None = None
    """The Polres office that numbers LPs for this area, e.g. "POLRES METRO JAKARTA SELATAN"."""

    @property
    def code(self) -> str:
        """The most specific station id: the Polsek if known, else the Polres."""
        return self.polsek or self.polres


Ring = tuple[tuple[float, float], ...]  # (lon, lat) pairs, GeoJSON order


@dataclass(frozen=True)
class _Area:
    station_id: str
    level: str
    polygons: tuple[tuple[Ring, tuple[Ring, ...]], ...]  # (outer ring, holes)
    bbox: tuple[float, float, float, float]  # west, south, east, north
    area: float

    def contains(self, lon: float, lat: float) -> bool:
        west, south, east, north = self.bbox
        if not (west <= lon <= east and south <= lat <= north):
            return False
        return any(_in_ring(lon, lat, outer) and not any(_in_ring(lon, lat, h) for h in holes)
                   for outer, holes in self.polygons)


def _in_ring(x: float, y: float, ring: Ring) -> bool:
    """Ray casting (even-odd rule); closed or open rings both work."""
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _ring_area(ring: Ring) -> float:
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]))) / 2


def _ring(coords: Any, where: str) -> Ring:
    try:
        ring = tuple((float(p[0]), float(p[1])) for p in coords)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{where}: a ring must be a list of [lon, lat] positions") from exc
    if len(ring) < 3:
        raise ValueError(f"{where}: a ring needs at least 3 positions")
    return ring


def _areas(boundaries: Mapping[str, Any], stations: Mapping[str, Station]) -> list[_Area]:
    if boundaries.get("type") != "FeatureCollection":
        raise ValueError("boundaries must be a GeoJSON FeatureCollection")
    areas = []
    for n, feature in enumerate(boundaries.get("features") or ()):
        where = f"feature {n}"
        station_id = ((feature or {}).get("properties") or {}).get("station_id")
        station = stations.get(station_id)
        if station is None:
            raise ValueError(f"{where}: properties.station_id {station_id!r} is not a known station")
        if station.level not in ("polsek", "polres"):
            raise ValueError(f"{where}: {station_id} is a {station.level}; boundaries name a polsek or polres")
        geometry = feature.get("geometry") or {}
        kind, coords = geometry.get("type"), geometry.get("coordinates")
        if kind == "Polygon":
            raw_polygons = [coords]
        elif kind == "MultiPolygon":
            raw_polygons = list(coords or ())
        else:
            raise ValueError(f"{where}: geometry must be Polygon or MultiPolygon, not {kind!r}")
        polygons = []
        for rings in raw_polygons:
            if not rings:
                raise ValueError(f"{where}: empty polygon")
            outer = _ring(rings[0], where)
            polygons.append((outer, tuple(_ring(h, where) for h in rings[1:])))
        xs = [x for outer, _ in polygons for x, _y in outer]
        ys = [y for outer, _ in polygons for _x, y in outer]
        area = sum(_ring_area(o) - sum(_ring_area(h) for h in hs) for o, hs in polygons)
        areas.append(_Area(station_id, station.level, tuple(polygons), (min(xs), min(ys), max(xs), max(ys)), area))
    return areas


class Jurisdictions:
    """The Polda → Polres → Polsek tree and the areas they cover.

    `stations` must hold one Polda (or several, each Polres naming its own as parent), its Polres
    (parent: the Polda, or None when there is a single Polda) and its Polsek (parent: a Polres).
    `boundaries`, optional, is a GeoJSON FeatureCollection whose features carry
    `properties.station_id` of a Polsek or Polres and a Polygon or MultiPolygon geometry.
    """

    def __init__(self, stations: Iterable[Station], boundaries: Mapping[str, Any] | None = None):
        by_id: dict[str, Station] = {}
        for s in stations:
            if s.level not in LEVELS:
                raise ValueError(f"station {s.station_id}: unknown level {s.level!r}")
            if s.station_id in by_id:
                raise ValueError(f"duplicate station id {s.station_id!r}")
            by_id[s.station_id] = s
        poldas = [s for s in by_id.values() if s.level == "polda"]
        if not poldas:
            raise ValueError("no polda among the stations")
        self._polda_of: dict[str, str] = {}
        for s in by_id.values():
            if s.level == "polres":
                if s.parent is None and len(poldas) == 1:
                    self._polda_of[s.station_id] = poldas[0].station_id
                elif s.parent in by_id and by_id[s.parent].level == "polda":
                    self._polda_of[s.station_id] = s.parent
                else:
                    raise ValueError(f"polres {s.station_id}: parent {s.parent!r} is not a polda")
        for s in by_id.values():
            if s.level == "polsek" and (s.parent not in by_id or by_id[s.parent].level != "polres"):
                raise ValueError(f"polsek {s.station_id}: parent {s.parent!r} is not a polres")
        self._stations = by_id
        polsek = [s for s in by_id.values() if s.level == "polsek"]
        self._nearest_pool = tuple(polsek or [s for s in by_id.values() if s.level == "polres"])
        if not self._nearest_pool:
            raise ValueError("no polsek or polres stations")
        areas = _areas(boundaries, by_id) if boundaries is not None else []
        # most specific level first, then the smallest area, so overlaps resolve predictably
        self._areas = sorted(areas, key=lambda a: (a.level != "polsek", a.area))

    @classmethod
    def from_city_file(cls, path: str | Path, boundaries_path: str | Path | None = None) -> Jurisdictions:
        """From the demo city file (stations, polda) and optionally a GeoJSON boundaries file."""
        stations = stations_from_city(json.loads(Path(path).read_text(encoding="utf-8")))
        boundaries = None
        if boundaries_path is not None:
            boundaries = json.loads(Path(boundaries_path).read_text(encoding="utf-8"))
        return cls(stations, boundaries)

    @property
    def stations(self) -> tuple[Station, ...]:
        return tuple(self._stations.values())

    @property
    def has_boundaries(self) -> bool:
        return bool(self._areas)

    def station(self, code: str) -> Station:
        try:
            return self._stations[code]
        except KeyError:
            raise KeyError(f"no station {code!r}") from None

    def polres_of(self, code: str) -> str:
        """The Polres of a Polsek, or the Polres itself; ValueError for a Polda."""
        s = self.station(code)
        if s.level == "polsek":
            return s.parent  # type: ignore[return-value]  # checked in __init__
        if s.level == "polres":
            return s.station_id
        raise ValueError(f"{code} is a polda, above any polres")

    def polda_of(self, code: str) -> str:
        s = self.station(code)
        return s.station_id if s.level == "polda" else self._polda_of[self.polres_of(code)]

    def within(self, code: str) -> frozenset[str]:
        """Every station code at or under `code` (a Polda holds its Polres and their Polsek)."""
        top = self.station(code)
        inside = {top.station_id}
        for s in self._stations.values():
            if s.level == "polsek" and (s.parent == code or self._polda_of.get(s.parent or "") == code):
                inside.add(s.station_id)
            elif s.level == "polres" and self._polda_of.get(s.station_id) == code:
                inside.add(s.station_id)
        return frozenset(inside)

    def jurisdiction(self, code: str, *, method: Literal["polygon", "nearest_station"] = "polygon",
                     distance_m: float | None = None) -> Jurisdiction:
        """The jurisdiction of a known Polsek or Polres code."""
        s = self.station(code)
        polres = self.polres_of(code)
        return Jurisdiction(polsek=code if s.level == "polsek" else None, polres=polres,
                            polda=self._polda_of[polres], method=method, distance_m=distance_m,
                            office=self._stations[polres].office_name)

    def locate(self, lat: float, lon: float) -> Jurisdiction:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"not a coordinate: {lat}, {lon}")
        for area in self._areas:
            if area.contains(lon, lat):
                return self.jurisdiction(area.station_id, method="polygon")
        nearest, distance = min(((s, haversine_m(lat, lon, s.lat, s.lon)) for s in self._nearest_pool),
                                key=lambda pair: pair[1])
        return self.jurisdiction(nearest.station_id, method="nearest_station", distance_m=distance)


def stations_from_city(doc: Mapping[str, Any]) -> list[Station]:
    """Stations from a parsed city file: its `polda` (if any) and its `stations`."""
    out = []
    polda = doc.get("polda")
    if polda:
        out.append(Station(station_id=polda["station_id"], name=polda["name"], level="polda", parent=None,
                           lat=float(polda["lat"]), lon=float(polda["lon"]), office=polda.get("office")))
    for s in doc["stations"]:
        parent = s.get("parent")
        if s["level"] == "polres" and parent is None and polda:
            parent = polda["station_id"]
        out.append(Station(station_id=s["station_id"], name=s["name"], level=s["level"], parent=parent,
                           lat=float(s["lat"]), lon=float(s["lon"]), office=s.get("office")))
    return out


# --- text normalisation ------------------------------------------------------------------------

# Common Indonesian abbreviations in addresses, expanded on both sides of a comparison.
ABBREVIATIONS: dict[str, str] = {
    "jl": "jalan", "jln": "jalan", "pd": "pondok", "kel": "kelurahan", "kec": "kecamatan",
    "gg": "gang", "rs": "rumah sakit", "psr": "pasar", "tmn": "taman", "jend": "jenderal",
    "jen": "jenderal", "jendral": "jenderal", "mal": "mall", "univ": "universitas",
    "stsn": "stasiun", "kp": "kampung", "kby": "kebayoran", "tj": "tanjung", "bdr": "bundaran",
    "bunderan": "bundaran", "perum": "perumahan", "komp": "kompleks", "komplek": "kompleks",
    "dkt": "dekat", "dpn": "depan", "blkg": "belakang", "sbl": "sebelah", "sblh": "sebelah",
    "jakpus": "jakarta pusat", "jaksel": "jakarta selatan", "jakbar": "jakarta barat",
    "jaktim": "jakarta timur", "jakut": "jakarta utara",
}
# Words that say where relative to a place, or that carry no place at all.
STOPWORDS: frozenset[str] = frozenset({
    "dekat", "depan", "sebelah", "belakang", "di", "seberang", "samping", "sekitar", "arah", "ke",
    "dari", "dan", "yang", "persis", "pas", "tepat", "area", "daerah", "wilayah", "lokasi", "tkp",
    "sini", "situ", "itu", "ini", "nya", "dekatnya", "depannya", "belakangnya", "seberangnya",
    "no", "nomor", "kav", "kavling", "lt", "lantai", "pinggir", "dalam", "luar", "gerbang",
})
_RT_RW = frozenset({"rt", "rw", "rtrw"})
# The region part of an address, not part of what identifies a place in this one city.
_REGION = re.compile(r"\b(dki\s+)?jakarta(\s+(pusat|selatan|barat|timur|utara))?\b|\bindonesia\s*$")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", " ", text)


def normalise(text: str) -> list[str]:
    """Lowercase tokens without punctuation, abbreviations expanded, relative words dropped."""
    raw = _fold(text).split()
    tokens: list[str] = []
    skip_numbers = False
    for tok in raw:
        if tok in _RT_RW:
            skip_numbers = True
            continue
        if skip_numbers and tok.isdigit():
            continue
        skip_numbers = False
        for word in ABBREVIATIONS.get(tok, tok).split():
            if word not in STOPWORDS:
                tokens.append(word)
    return tokens


def _strip_region(text: str) -> str:
    return _REGION.sub(" ", _fold(text))


def _name_parts(name: str) -> list[str]:
    """ "Monumen Nasional (Monas)" is also called "Monumen Nasional" and "Monas"."""
    inner = re.findall(r"\(([^()]+)\)", name)
    outer = re.sub(r"\([^()]*\)", " ", name).strip()
    return [part for part in (outer, *inner) if part.strip() and part != name]


def _contains(phrase: list[str], tokens: list[str]) -> bool:
    """Whether `phrase` occurs in `tokens` as consecutive words (substring containment, by word)."""
    n = len(phrase)
    return bool(n) and any(tokens[i:i + n] == phrase for i in range(len(tokens) - n + 1))


# --- the offline geocoder ----------------------------------------------------------------------

@dataclass(frozen=True)
class GazetteerEntry:
    name: str
    lat: float
    lon: float
    aliases: tuple[str, ...] = ()
    address: str | None = None
    kind: str = "place"
    source: Literal["place", "station", "gazetteer"] = "gazetteer"


@dataclass(frozen=True)
class Match:
    entry: GazetteerEntry
    score: float
    strong: bool
    matched: str


@dataclass(frozen=True)
class _Indexed:
    entry: GazetteerEntry
    variants: tuple[tuple[str, list[str]], ...]  # (original text, tokens): name and aliases
    address: list[str] = field(default_factory=list)


class _OfflineAdapter(BaseSyncAdapter):
    """geopy's HTTP layer, replaced: the gazetteer never fetches anything."""

    def get_json(self, url, *, timeout, headers):
        raise GeocoderServiceError("the gazetteer is offline; no request was made")

    def get_text(self, url, *, timeout, headers):
        raise GeocoderServiceError("the gazetteer is offline; no request was made")


class Gazetteer(Geocoder):
    """A geopy geocoder answering from a local list of named places, without the network.

    Query and names are normalised (`normalise`), then each entry is scored by the share of the
    query it explains and the share of its name the query mentions, both weighted by how rare
    each word is (so "jalan" or "pasar" count for little, "monas" for much). A name or alias
    appearing whole in the query scores at least 0.9. Addresses count, but less than names.
    Answers need `threshold`; below it, or when the best few answers lie far apart and none is
    strong, the answer is None: no wild guesses.

    A match is *strong* when the query names every word of a name or alias and that explains at
    least half of the query, or when it matches an entry's address almost word for word.
    `Location.raw` carries name, kind, source, score, strong and `gazetteer: True`.
    """

    NAME_IN_QUERY = 0.9
    ADDRESS_WEIGHT = 0.9
    EXACT_ADDRESS = 0.95
    STREET_FACTOR = 0.95  # a long road is a worse answer than a point with the same words
    AMBIGUITY_MARGIN = 0.05
    AMBIGUITY_SPREAD_M = 1000.0
    SAME_PLACE_M = 150.0

    def __init__(self, entries: Iterable[GazetteerEntry], *, threshold: float = 0.6,
                 user_agent: str | None = "spkt-dispatch", timeout: float | None = None):
        super().__init__(user_agent=user_agent, timeout=timeout, proxies={}, ssl_context=None,
                         adapter_factory=_OfflineAdapter)
        self.threshold = threshold
        self._index: list[_Indexed] = []
        df: dict[str, int] = {}
        for e in entries:
            variants = []
            for text in (e.name, *_name_parts(e.name), *e.aliases):
                tokens = normalise(text)
                if tokens and all(tokens != t for _, t in variants):
                    variants.append((text, tokens))
            if not variants:
                continue
            address = normalise(_strip_region(e.address)) if e.address else []
            item = _Indexed(e, tuple(variants), address)
            self._index.append(item)
            for tok in {t for _, ts in variants for t in ts} | set(address):
                df[tok] = df.get(tok, 0) + 1
        n = max(1, len(self._index))
        self._idf = {tok: math.log(1 + n / count) for tok, count in df.items()}
        self._unknown_idf = math.log(1 + n)

    @classmethod
    def from_city_file(cls, path: str | Path, **kwargs: Any) -> Gazetteer:
        return cls(entries_from_city(json.loads(Path(path).read_text(encoding="utf-8"))), **kwargs)

    def __len__(self) -> int:
        return len(self._index)

    # scoring ------------------------------------------------------------------------------------
    def _weight(self, tokens: Iterable[str]) -> float:
        return sum(self._idf.get(t, self._unknown_idf) for t in set(tokens))

    def _overlap(self, query: list[str], tokens: list[str]) -> tuple[float, float]:
        """(share of the query explained, share of the candidate mentioned), rarity-weighted."""
        common = set(query) & set(tokens)
        if not common:
            return 0.0, 0.0
        w = self._weight(common)
        return w / self._weight(query), w / self._weight(tokens)

    def _score(self, item: _Indexed, query: list[str], query_no_region: list[str]) -> Match | None:
        best: Match | None = None
        factor = self.STREET_FACTOR if item.entry.kind == "street" else 1.0
        for text, tokens in item.variants:
            cq, cv = self._overlap(query, tokens)
            if not cq:
                continue
            score = (cq + cv) / 2
            if _contains(tokens, query):
                score = max(score, self.NAME_IN_QUERY + (1 - self.NAME_IN_QUERY) * cq)
            strong = cv >= 0.999 and cq >= 0.5
            m = Match(item.entry, score * factor, strong, text)
            if best is None or (m.score, m.strong) > (best.score, best.strong):
                best = m
        if item.address and query_no_region:
            cq, cv = self._overlap(query_no_region, item.address)
            exact = cq >= 0.9 and cv >= 0.9  # the address itself, give or take a word
            score = (self.EXACT_ADDRESS + (1 - self.EXACT_ADDRESS) * min(cq, cv) if exact
                     else self.ADDRESS_WEIGHT * (cq + cv) / 2) * factor
            if cq and (best is None or score > best.score):
                best = Match(item.entry, score, exact, item.entry.address or "")
        return best

    def matches(self, query: str) -> list[Match]:
        """Every entry scoring at least the threshold, best first, one per place."""
        tokens = normalise(query)
        if not tokens:
            return []
        no_region = normalise(_strip_region(query))
        found = [m for item in self._index
                 if (m := self._score(item, tokens, no_region)) is not None and m.score >= self.threshold]
        found.sort(key=lambda m: (-m.score, not m.strong, m.entry.source != "gazetteer", m.entry.name))
        kept: list[Match] = []
        for m in found:
            if all(haversine_m(m.entry.lat, m.entry.lon, k.entry.lat, k.entry.lon) > self.SAME_PLACE_M
                   for k in kept):
                kept.append(m)
        return kept

    def best(self, query: str) -> Match | None:
        """The one answer, or None when nothing is good enough or the answer is ambiguous."""
        found = self.matches(query)
        if not found:
            return None
        top = found[0]
        if not top.strong:
            close = [m for m in found if m.score >= top.score - self.AMBIGUITY_MARGIN]
            if any(haversine_m(top.entry.lat, top.entry.lon, m.entry.lat, m.entry.lon) > self.AMBIGUITY_SPREAD_M
                   for m in close):
                return None
        return top

    # geopy's interface --------------------------------------------------------------------------
    def geocode(self, query: str | Mapping[str, str], *, exactly_one: bool = True,
                timeout: float | None = None) -> GeoLocation | list[GeoLocation] | None:
        if isinstance(query, Mapping):  # geopy's structured query: join its parts
            query = ", ".join(str(v) for v in query.values() if v)
        if not isinstance(query, str) or not query.strip():
            return None
        if exactly_one:
            match = self.best(query)
            return _location(match) if match else None
        found = self.matches(query)
        return [_location(m) for m in found[:10]] or None

    def reverse(self, query, *, exactly_one=True, timeout=None):
        raise NotImplementedError("the gazetteer does not reverse-geocode")


def _location(m: Match) -> GeoLocation:
    e = m.entry
    label = f"{e.name}, {e.address}" if e.address else e.name
    raw = {"gazetteer": True, "name": e.name, "kind": e.kind, "source": e.source,
           "score": round(m.score, 3), "strong": m.strong, "matched": m.matched, "address": e.address}
    return GeoLocation(label, (e.lat, e.lon), raw)


def entries_from_city(doc: Mapping[str, Any]) -> list[GazetteerEntry]:
    """Gazetteer entries from a parsed city file: places, stations (and polda), gazetteer."""
    out = []
    for p in doc.get("places", ()):
        out.append(GazetteerEntry(name=p["name"], lat=float(p["lat"]), lon=float(p["lon"]),
                                  address=p.get("address"), kind=p.get("kind", "place"), source="place"))
    stations = ([doc["polda"]] if doc.get("polda") else []) + list(doc.get("stations", ()))
    for s in stations:
        name = s["name"]
        head, _, rest = name.partition(" ")
        aliases = [f"Ma{head.lower()} {rest}"] if head.lower() in LEVELS and rest else []
        out.append(GazetteerEntry(name=name, lat=float(s["lat"]), lon=float(s["lon"]), aliases=tuple(aliases),
                                  kind="police_station", source="station"))
    for g in doc.get("gazetteer", ()):
        out.append(GazetteerEntry(name=g["name"], lat=float(g["lat"]), lon=float(g["lon"]),
                                  aliases=tuple(g.get("aliases", ())), address=g.get("address"),
                                  kind=g.get("kind", "place"), source="gazetteer"))
    return out


def make_geocoder(name: str, *, city_file: str | Path | None = None, user_agent: str = "spkt-dispatch",
                  timeout: float = 5, **options: Any) -> Geocoder:
    """"gazetteer" → the offline `Gazetteer` of `city_file`; any other name → that geopy geocoder
    (e.g. "nominatim"; it needs the network), built with `user_agent`, `timeout` and `options`
    (api_key, domain, ...). geopy raises GeocoderNotFound for an unknown name."""
    if name.strip().lower() == "gazetteer":
        if city_file is None:
            raise ValueError("the gazetteer needs a city_file")
        return Gazetteer.from_city_file(city_file, user_agent=user_agent, timeout=timeout)
    cls = get_geocoder_for_service(name.strip().lower())
    return cls(user_agent=user_agent, timeout=timeout, **options)


# --- resolving a report's location -------------------------------------------------------------

class _HasLocation(Protocol):
    lat: float | None
    lon: float | None
    address: str | None
    landmark: str | None


@dataclass(frozen=True)
class ResolvedLocation:
    lat: float | None
    lon: float | None
    verified: bool
    source: Literal["caller", "geocoder", "unresolved"]
    query: str | None
    note: str

    @property
    def resolved(self) -> bool:
        return self.lat is not None and self.lon is not None


def _queries(location: _HasLocation) -> list[str]:
    """The address, the landmark, then both together: what to ask a geocoder, in order."""
    address = (getattr(location, "address", None) or "").strip()
    landmark = (getattr(location, "landmark", None) or "").strip()
    both = f"{address}, {landmark}" if address and landmark else ""
    return list(dict.fromkeys(q for q in (address, landmark, both) if q))


def resolve(location: _HasLocation, geocoder: Geocoder | None) -> ResolvedLocation:
    """Coordinates for a report's location, never raising for a geocoder's failure.

    - Coordinates given (a phone's GPS, a unit's position): taken as given, verified.
    - Otherwise the address, then the landmark, then both together are geocoded; the first strong
      gazetteer match wins and is verified. A weak match, a street (a long road is no point) or
      an answer from a network geocoder is kept but not verified: the dispatcher confirms it.
    - Nothing found, or the geocoder failed: unresolved, "lokasi belum terverifikasi".
    """
    lat, lon = getattr(location, "lat", None), getattr(location, "lon", None)
    if lat is not None and lon is not None:
        accuracy = getattr(location, "accuracy_m", None)
        note = NOTE_CALLER + (f" (akurasi ±{accuracy:.0f} m)" if accuracy is not None else "")
        return ResolvedLocation(float(lat), float(lon), True, "caller", None, note)

    queries = _queries(location) if geocoder is not None else []
    fallback: tuple[ResolvedLocation, float] | None = None
    failures: list[str] = []
    for query in queries:
        try:
            found = geocoder.geocode(query, exactly_one=True)
        except Exception as exc:  # noqa: BLE001 - timeouts, network, quota: never the caller's problem
            # Neither the typed address nor the error's text (geopy's carry the request URL, query
            # included) goes to the log: an address may be a victim's home.
            log.warning("geocoder %s failed: %s (the address is not logged)", type(geocoder).__name__,
                        type(exc).__name__)
            failures.append(type(exc).__name__)
            continue
        if isinstance(found, list):
            found = found[0] if found else None
        if found is None or found.latitude is None or found.longitude is None:
            continue
        raw = found.raw if isinstance(found.raw, Mapping) else {}
        if raw.get("gazetteer"):
            name, score = raw.get("name") or found.address, float(raw.get("score") or 0)
            if raw.get("strong") and raw.get("kind") != "street":
                return ResolvedLocation(found.latitude, found.longitude, True, "geocoder", query,
                                        f"ditemukan di gazetir: {name}")
            if raw.get("kind") == "street":
                note = f"{NOTE_UNVERIFIED}: ruas jalan {name}, titik perkiraan; konfirmasi ke pelapor"
            else:
                note = f"{NOTE_UNVERIFIED}: perkiraan dari gazetir ({name}); konfirmasi ke pelapor"
        else:
            score = 0.0
            note = f"{NOTE_UNVERIFIED}: hasil geocoder ({found.address}); konfirmasi ke pelapor"
        candidate = ResolvedLocation(found.latitude, found.longitude, False, "geocoder", query, note)
        if fallback is None or score > fallback[1]:
            fallback = (candidate, score)
    if fallback is not None:
        return fallback[0]
    if failures:
        note = f"{NOTE_UNVERIFIED}: geocoder gagal ({', '.join(sorted(set(failures)))})"
    elif queries:
        note = f"{NOTE_UNVERIFIED}: alamat tidak ditemukan"
    elif _queries(location):
        note = f"{NOTE_UNVERIFIED}: tidak ada geocoder"
    else:
        note = f"{NOTE_UNVERIFIED}: tanpa koordinat, alamat atau patokan"
    return ResolvedLocation(None, None, False, "unresolved", None, note)
