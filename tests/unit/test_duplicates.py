"""Duplicate matching: the score's parts, best_match, the grouper, and a small benchmark run.

Most tests use stub rules, so they hold whatever the catalogue's radii and windows become.
"""
import ast
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.intake import duplicates as dup
from services.intake.duplicates import (
    CATEGORY_COMPATIBLE, CATEGORY_SAME, CATEGORY_UNCLASSIFIED, IncidentGrouper, MatchRules, OpenIncident,
    ReportFacts, best_match, distance_m, falloff, score, sequential_ids, text_similarity, tokens,
)

T0 = datetime(2026, 11, 27, 21, 0, tzinfo=timezone.utc)
BLOK_M = (-6.2443, 106.8000)
M_PER_DEG = 111_195.0

RADIUS = {"vehicle_theft": 300, "street_robbery": 500, "fire": 1000, "brawl": 800, "public_order": 300,
          "unclassified": 500}
WINDOW = {"vehicle_theft": 3600, "street_robbery": 3600, "fire": 7200, "brawl": 3600, "public_order": 3600,
          "unclassified": 1800}
GROUP = {"vehicle_theft": "property", "street_robbery": "property", "fire": "disaster", "brawl": "public_order",
         "public_order": "public_order"}
RULES = MatchRules(radius_m=RADIUS.__getitem__, window_s=WINDOW.__getitem__,
                   compatible=lambda a, b: GROUP[a] == GROUP[b])

THEFT = "Motor Honda Beat merah saya dicuri di parkiran minimarket dekat Blok M, pelaku dua orang"
THEFT_AGAIN = "Pencurian motor Beat warna merah di parkir minimarket Blok M, malingnya dua orang kabur"
FIRE = "Kebakaran kios di Pasar Senen, api sudah besar dan asap hitam tebal"


def north(metres: float, at: tuple[float, float] = BLOK_M) -> tuple[float, float]:
    return at[0] + metres / M_PER_DEG, at[1]


def report(category="vehicle_theft", metres=0.0, minutes=0.0, text=THEFT, accuracy=None, lat_lon=None):
    lat, lon = lat_lon if lat_lon is not None else north(metres)
    return ReportFacts(category=category, lat=lat, lon=lon, at=T0 + timedelta(minutes=minutes), text=text,
                       accuracy_m=accuracy)


def incident(incident_id="INC-1", category="vehicle_theft", metres=0.0, opened=0.0, last=None, texts=(THEFT,),
             status="open", accuracy=None):
    lat, lon = north(metres)
    return OpenIncident(incident_id=incident_id, category=category, lat=lat, lon=lon,
                        opened_at=T0 + timedelta(minutes=opened),
                        last_report_at=T0 + timedelta(minutes=opened if last is None else last),
                        texts=list(texts), report_count=len(texts), status=status, accuracy_m=accuracy)


# --- the parts of the score ----------------------------------------------------------------------
def test_distance_part_is_one_on_the_spot_falls_with_distance_and_stops_at_the_radius():
    here = score(report(metres=0), incident(), RULES)
    near = score(report(metres=100), incident(), RULES)
    edge = score(report(metres=290), incident(), RULES)
    assert here.distance_score == pytest.approx(1.0) and here.distance_m == pytest.approx(0.0, abs=0.01)
    assert near.distance_m == pytest.approx(100, rel=0.01)
    assert 1.0 > near.distance_score > edge.distance_score > 0.0
    assert score(report(metres=310), incident(), RULES) is None  # vehicle_theft: 300 m


def test_the_radius_is_the_larger_of_the_two_categories():
    # 400 m: beyond a stolen motorbike's 300 m, within a street robbery's 500 m (a compatible pair).
    assert score(report("vehicle_theft", metres=400), incident(category="vehicle_theft"), RULES) is None
    assert score(report("vehicle_theft", metres=400), incident(category="street_robbery"), RULES) is not None
    assert score(report("street_robbery", metres=400), incident(category="vehicle_theft"), RULES) is not None


def test_time_part_is_one_at_once_falls_with_the_gap_and_stops_at_the_window():
    at_once = score(report(minutes=0), incident(), RULES)
    later = score(report(minutes=30), incident(), RULES)
    assert at_once.time_score == pytest.approx(1.0) and at_once.minutes == 0
    assert later.minutes == pytest.approx(30) and 0.0 < later.time_score < at_once.time_score
    assert score(report(minutes=61), incident(), RULES) is None  # window 60 min


def test_the_window_runs_from_the_incidents_last_report_and_its_span_counts_as_no_gap():
    old_but_active = incident(opened=0, last=50)
    assert score(report(minutes=100), old_but_active, RULES).minutes == pytest.approx(50)
    assert score(report(minutes=111), old_but_active, RULES) is None
    assert score(report(minutes=20), old_but_active, RULES).minutes == 0  # between its first and last report
    # A report received before the incident's first one (delivered out of order) counts from that one.
    assert score(report(minutes=-30), old_but_active, RULES).minutes == pytest.approx(30)
    assert score(report(minutes=-61), old_but_active, RULES) is None


def test_category_part_same_compatible_unclassified_incompatible():
    assert score(report("vehicle_theft"), incident(category="vehicle_theft"), RULES).category_score == CATEGORY_SAME
    assert score(report("street_robbery"), incident(category="vehicle_theft"),
                 RULES).category_score == CATEGORY_COMPATIBLE == 0.7
    unclassified = score(report("unclassified"), incident(category="fire"), RULES)
    assert unclassified.category_score == CATEGORY_UNCLASSIFIED == 0.5
    assert score(report("fire"), incident(category="unclassified"), RULES).category_score == 0.5
    assert score(report("fire", text=FIRE), incident(category="vehicle_theft"), RULES) is None


def test_indonesian_tokens_drop_stopwords_and_punctuation_and_share_stems():
    words = tokens("Tolong pak, motor saya dicuri di parkiran yang ada di dekat Blok M!")
    assert not {"tolong", "pak", "saya", "di", "yang", "ada", "dekat"} & set(words)
    assert {"motor", "curi", "parkir", "blok"} <= set(words)
    assert "curi" in tokens("pencurian") and "curi" in tokens("mencuri") and "bakar" in tokens("kebakaran")
    assert "bakar" in tokens("terbakar") and "motor" in tokens("motornya")


def test_similar_indonesian_descriptions_score_high_and_different_ones_low():
    assert text_similarity(THEFT, THEFT) == pytest.approx(1.0)
    similar = text_similarity(THEFT, THEFT_AGAIN)
    different = text_similarity(THEFT, FIRE)
    assert similar > 0.45 and different < 0.15
    # Other words for the same thing still meet: HP / ponsel, dijambret / dirampas.
    assert text_similarity("HP saya dijambret orang bermotor", "ponselnya dirampas pengendara motor") > \
        text_similarity("HP saya dijambret orang bermotor", "ada kebakaran gudang kayu")


def test_wording_changes_the_score_of_otherwise_equal_pairs():
    same_words = score(report(metres=50, text=THEFT_AGAIN), incident(), RULES)
    other_words = score(report(metres=50, text="Tawuran pelajar, ada yang bawa celurit"), incident(), RULES)
    assert same_words.text_score > 0.45 > 0.15 > other_words.text_score
    assert same_words.total > other_words.total


def test_the_total_is_the_weighted_mean_of_its_parts():
    match = score(report(metres=120, minutes=7, text=THEFT_AGAIN), incident(), RULES)
    expected = (dup.W_DISTANCE * match.distance_score + dup.W_TIME * match.time_score
                + dup.W_CATEGORY * match.category_score + dup.W_TEXT * match.text_score + match.detail_score)
    assert match.detail_score > 0  # the same make, colour and spot named on both sides
    assert match.total == pytest.approx(expected)
    assert 0.0 <= match.total <= 1.0
    assert dup.W_DISTANCE + dup.W_TIME + dup.W_CATEGORY + dup.W_TEXT == pytest.approx(1.0)


def test_reasons_are_in_indonesian_for_the_dispatcher():
    match = score(report(metres=120, minutes=4, text=THEFT_AGAIN), incident(), RULES)
    assert match.reasons[0] == "jarak 120 m"
    assert match.reasons[1] == "selisih 4 menit"
    assert match.reasons[2] == "kategori sama"
    assert match.reasons[3] == f"uraian mirip ({match.text_score:.2f})".replace(".", ",")
    other = score(report("street_robbery", minutes=0.2, text="Tawuran pelajar di jalan"), incident(), RULES)
    assert other.reasons[1:] == ["selisih kurang dari 1 menit", "kategori sejenis", other.reasons[3]]
    assert other.reasons[3].startswith("uraian berbeda (0,")
    unclassified = score(report("unclassified", accuracy=200), incident(), RULES)
    assert unclassified.reasons[0] == "jarak 0 m (lokasi ±200 m)"
    assert unclassified.reasons[2] == "salah satu belum diklasifikasi"


def test_a_positions_stated_accuracy_is_taken_off_the_distance():
    # 350 m is beyond a stolen motorbike's 300 m for two GPS fixes, not for a street geocoded to ±250 m.
    assert score(report(metres=350), incident(), RULES) is None
    vague = score(report(metres=350, accuracy=250), incident(), RULES)
    assert vague is not None and vague.uncertainty_m == pytest.approx(250)
    assert vague.distance_m == pytest.approx(350, rel=0.01)
    assert vague.distance_score == pytest.approx(falloff(100, 300, dup.DISTANCE_HALF_M), rel=0.02)
    # ... but never more than MAX_UNCERTAINTY_M: a position "somewhere in the city" matches nothing far.
    assert score(report(metres=300 + dup.MAX_UNCERTAINTY_M + 20, accuracy=5000), incident(), RULES) is None


def test_falloff_reaches_its_ends():
    assert falloff(0, 300, 100) == 1.0 and falloff(300, 300, 100) == 0.0 and falloff(400, 300, 100) == 0.0
    assert 0.4 < falloff(100, 10_000, 100) < 0.55  # about half-way at `half`
    assert falloff(0, 0, 100) == 1.0


# --- best_match --------------------------------------------------------------------------------
def test_best_match_picks_the_best_scoring_incident():
    far = incident("INC-far", metres=250)
    near = incident("INC-near", metres=20)
    other = incident("INC-fire", category="fire", texts=(FIRE,))
    match = best_match(report(metres=0, text=THEFT_AGAIN), [far, other, near], RULES)
    assert match.incident_id == "INC-near"
    assert match.total > score(report(metres=0, text=THEFT_AGAIN), far, RULES).total


def test_best_match_respects_the_threshold():
    candidate = incident(metres=200)
    found = score(report(text=THEFT_AGAIN), candidate, RULES)
    assert best_match(report(text=THEFT_AGAIN), [candidate], RULES, threshold=found.total) is not None
    assert best_match(report(text=THEFT_AGAIN), [candidate], RULES, threshold=found.total + 0.01) is None
    weak = report(metres=250, minutes=50, text="Ada ribut-ribut di jalan")
    assert best_match(weak, [candidate], RULES) is None  # passes the limits, scores below MATCH_THRESHOLD


def test_ties_go_to_the_most_recent_incident_whatever_the_order():
    older = incident("INC-older", opened=-20, last=0)
    newer = incident("INC-newer", opened=-5, last=0)
    assert score(report(), older, RULES).total == score(report(), newer, RULES).total
    assert best_match(report(), [older, newer], RULES).incident_id == "INC-newer"
    assert best_match(report(), [newer, older], RULES).incident_id == "INC-newer"


def test_a_report_without_coordinates_never_matches():
    blind = ReportFacts(category="vehicle_theft", lat=None, lon=None, at=T0, text=THEFT)
    assert score(blind, incident(), RULES) is None
    assert best_match(blind, [incident()], RULES, threshold=0.0) is None
    grouper = IncidentGrouper(RULES)
    first, second = grouper.add(blind), grouper.add(blind)
    assert not first.attached and not second.attached and first.incident_id != second.incident_id
    # ... nor does a located report attach to the unlocated incident.
    assert not grouper.add(report()).attached


def test_a_closed_incident_never_matches():
    closed = incident(status="closed")
    assert score(report(), closed, RULES) is None
    assert best_match(report(), [closed], RULES, threshold=0.0) is None
    grouper = IncidentGrouper(RULES)
    opened = grouper.add(report())
    assert grouper.close(opened.incident_id) and not grouper.close(opened.incident_id)
    again = grouper.add(report(minutes=1))
    assert not again.attached and again.incident_id != opened.incident_id


def test_best_match_scores_only_the_incidents_its_cheap_checks_let_through(monkeypatch):
    # A thousand incidents over 20 km of the city: the box and the time gap must keep the costly
    # score (distance, wording) to the few near the report. Its speed is benchmarks.grouping's.
    incidents = [incident(f"INC-{i}", category=("vehicle_theft", "fire", "brawl")[i % 3],
                          metres=(i * 37) % 20_000, opened=-(i % 50), texts=(THEFT if i % 2 else FIRE,))
                 for i in range(1000)]
    probe = report(metres=5, text=THEFT_AGAIN)
    scored: list[str] = []

    def counted(rep, inc, rules):
        scored.append(inc.incident_id)
        return score(rep, inc, rules)

    monkeypatch.setattr(dup, "score", counted)
    assert best_match(probe, incidents, RULES) is not None
    by_id = {i.incident_id: i for i in incidents}
    reach = {i.incident_id: max(RADIUS["vehicle_theft"], RADIUS[i.category]) + dup.MAX_UNCERTAINTY_M
             for i in incidents}
    assert scored and len(scored) < 100, f"{len(scored)} of 1000 scored"
    assert all(distance_m(probe.lat, probe.lon, by_id[i].lat, by_id[i].lon) <= reach[i] for i in scored)
    # ... and every incident within its reach and window was scored: the box drops none of them.
    within = {i.incident_id for i in incidents
              if distance_m(probe.lat, probe.lon, i.lat, i.lon) <= reach[i.incident_id]
              and abs((probe.at - i.last_report_at).total_seconds())
              <= max(WINDOW["vehicle_theft"], WINDOW[i.category])}
    assert within <= set(scored)


# --- the grouper ---------------------------------------------------------------------------------
def test_the_grouper_opens_then_attaches_and_updates_the_incident():
    grouper = IncidentGrouper(RULES, new_id=sequential_ids("KJD-"))
    first = grouper.add(report(metres=0, text=THEFT, accuracy=20))
    second = grouper.add(report(metres=40, minutes=6, text=THEFT_AGAIN, accuracy=20))
    elsewhere = grouper.add(report("fire", metres=5000, minutes=7, text=FIRE))
    assert (first.incident_id, first.attached, first.match) == ("KJD-000001", False, None)
    assert second.attached and second.incident_id == "KJD-000001" and second.match.total >= dup.MATCH_THRESHOLD
    assert not elsewhere.attached and elsewhere.incident_id == "KJD-000002"
    theft = grouper.get("KJD-000001")
    assert theft.report_count == 2 and theft.texts == [THEFT, THEFT_AGAIN]
    assert theft.last_report_at == T0 + timedelta(minutes=6) and theft.opened_at == T0
    # Position: the mean of its reports (equal accuracy: half-way), and surer than either fix.
    assert distance_m(theft.lat, theft.lon, *north(20)) < 1.0
    assert theft.accuracy_m == pytest.approx(20 / math.sqrt(2))


def test_the_mean_position_weighs_each_report_by_its_accuracy():
    grouper = IncidentGrouper(RULES)
    grouper.add(report(metres=0, accuracy=10))
    grouper.add(report(metres=100, minutes=1, text=THEFT_AGAIN, accuracy=100))  # vague: weighs 1/100 as much
    theft = grouper.incidents[0]
    assert theft.report_count == 2
    assert distance_m(theft.lat, theft.lon, *BLOK_M) == pytest.approx(100 / 101, abs=0.05)


def test_an_unclassified_incident_takes_the_first_classified_category():
    grouper = IncidentGrouper(RULES)
    opened = grouper.add(report("unclassified"))
    attached = grouper.add(report("vehicle_theft", metres=10, minutes=2, text=THEFT_AGAIN))
    assert attached.attached and grouper.get(opened.incident_id).category == "vehicle_theft"


def test_the_grouper_keeps_the_first_and_latest_descriptions():
    grouper = IncidentGrouper(RULES, max_texts=3)
    texts = [f"{THEFT_AGAIN} ({n})" for n in range(5)]
    decisions = [grouper.add(report(minutes=n, text=t)) for n, t in enumerate(texts)]
    assert all(d.attached for d in decisions[1:])
    assert grouper.incidents[0].texts == [texts[0], texts[3], texts[4]]
    assert grouper.incidents[0].report_count == 5


def test_expire_drops_incidents_whose_window_has_long_passed():
    grouper = IncidentGrouper(RULES, expire_on_add=False)
    theft = grouper.add(report("vehicle_theft")).incident_id  # window 60 min
    fire = grouper.add(report("fire", metres=5000, minutes=30, text=FIRE)).incident_id  # window 120 min
    # Every category seen so far has a window of at most 120 min: nothing can match an incident
    # whose last report is older than that.
    assert grouper.expire(T0 + timedelta(minutes=100)) == []
    assert grouper.expire(T0 + timedelta(minutes=121)) == [theft]
    assert [i.incident_id for i in grouper.incidents] == [fire]
    assert grouper.expire(T0 + timedelta(minutes=151)) == [fire] and grouper.incidents == []


def test_the_grouper_expires_on_its_own_as_reports_come_in():
    grouper = IncidentGrouper(RULES)
    grouper.add(report("vehicle_theft"))
    later = grouper.add(report("vehicle_theft", minutes=200))
    assert not later.attached and [i.incident_id for i in grouper.incidents] == [later.incident_id]


def test_the_grouper_is_deterministic():
    reports = [report(metres=m, minutes=t, text=x, category=c) for m, t, x, c in (
        (0, 0, THEFT, "vehicle_theft"), (30, 3, THEFT_AGAIN, "unclassified"), (4000, 4, FIRE, "fire"),
        (4020, 9, "Api besar di kios Pasar Senen", "fire"), (60, 12, THEFT_AGAIN, "vehicle_theft"))]

    def run():
        grouper = IncidentGrouper(RULES)
        return [(d.incident_id, d.attached, d.match.total if d.match else None) for d in map(grouper.add, reports)]

    first = run()
    assert first == run()
    assert [attached for _, attached, _ in first] == [False, True, False, True, True]


def test_facts_from_a_received_report(report):
    from services.intake.duplicates import facts_from_report

    facts = facts_from_report(report)
    assert (facts.lat, facts.lon, facts.at, facts.text, facts.report_id) == (
        report.location.lat, report.location.lon, report.received_at, report.description, report.report_id)
    assert facts.category == "unclassified"
    assert facts_from_report(report, category="vehicle_theft").category == "vehicle_theft"


# --- the module's boundaries ---------------------------------------------------------------------
def test_the_domain_module_imports_no_infrastructure_and_not_the_catalogue_at_import():
    source = Path(dup.__file__).read_text()
    tree = ast.parse(source)
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            top_level.add(node.module or "")
    everywhere = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | {
        n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    banned = ("faust", "kafka", "aiokafka", "fastapi", "starlette", "httpx", "requests", "sqlalchemy", "psycopg")
    assert not [m for m in everywhere if m.split(".")[0] in banned]
    assert not [m for m in top_level if "categories" in m or m.startswith("services")]


def test_rules_from_the_catalogue_read_its_values():
    from services.intake import categories

    rules = dup.rules_from_catalogue()
    unclassified = categories.category("unclassified")
    assert rules.radius_m("unclassified") == unclassified.duplicate_radius_m
    assert rules.window_s("unclassified") == unclassified.duplicate_window_s
    some = next(c for c in categories.CATEGORIES if c.code != "unclassified")
    assert rules.radius_m(some.code) == some.duplicate_radius_m
    assert rules.compatible(some.code, some.code) is True


# --- a small benchmark run -------------------------------------------------------------------------
def test_a_small_benchmark_run_groups_well():
    from benchmarks import grouping

    result = grouping.run(60, seed=8)
    assert result["events"] == 60 and result["reports"] > 60 and result["true_pairs"] > 30
    assert result["precision"] >= 0.9, result
    assert result["recall"] >= 0.9, result


def test_the_benchmark_tells_a_broken_grouper_from_a_good_one():
    from benchmarks import grouping

    attach_everything = grouping.run(60, seed=8, threshold=0.0)
    attach_nothing = grouping.run(60, seed=8, threshold=1.01)
    assert attach_everything["precision"] < 0.9 and attach_nothing["recall"] == 0.0


def _conflicts(text, texts):
    from services.intake.duplicates import compare_details

    return [kind for kind, _, _ in compare_details(text, texts).conflict]


def _agreements(text, texts):
    from services.intake.duplicates import compare_details

    return [kind for kind, _ in compare_details(text, texts).agree]


def test_contradicting_details_tell_look_alike_reports_apart():
    assert _conflicts("motor Beat merah dicuri", ["motor hitam hilang di parkiran"]) == ["warna"]
    assert _conflicts("motor merah dicuri", ["motor warna merah diambil orang"]) == []
    assert _conflicts("tabrakan di lampu merah, mobil putih", ["mobil putih menabrak motor"]) == []
    assert _conflicts("mobil B 1234 KJT", ["mobil plat B 9876 ZZ kabur"]) == ["plat"]
    assert _conflicts("mobil B 1234 KJT", ["mobil B1234KJT kabur"]) == []
    assert _conflicts("ada kebakaran", ["asap hitam tebal"]) == []
    # A make, an item, a burning object, a spot on the road, an age: each tells two events apart.
    assert _conflicts("Honda Beat hilang di parkiran", ["NMAX digondol maling"]) == ["merek"]
    assert _conflicts("ibu dijambret, HP dibawa kabur", ["jambret rampas dompet dari ibu-ibu"]) == ["barang"]
    assert _conflicts("rumah makan kebakaran", ["kebakaran tumpukan sampah"]) == ["objek"]
    assert _conflicts("tabrakan di halte bus", ["kecelakaan di perempatan"]) == ["tempat"]
    assert _conflicts("bocah 10 tahun hilang", ["lansia pikun hilang"]) == ["umur"]
    assert _conflicts("mobil tabrak motor", ["taksi dan ojol bertabrakan"]) == ["kendaraan"]


def test_the_same_details_in_other_words_agree():
    assert _agreements("HP dirampas", ["jambret ambil handphone"]) == ["barang"]
    assert _agreements("kios-kios terbakar", ["kebakaran deretan kios"]) == ["objek"]
    assert _agreements("kecelakaan di lampu merah", ["tabrakan di perempatan"]) == ["tempat"]
    assert _agreements("anak kecil tujuh tahun hilang", ["anak umur 8 tahun belum pulang"]) == ["umur"]
    assert _agreements("Toyota Avanza silver dicuri", ["mobil avanza warna perak hilang"]) == ["merek", "warna"]
    # "tas laptop" is the laptop; a pair of vehicles agrees only as a pair.
    assert _agreements("tas laptop dijambret", ["laptop dirampas"]) == ["barang"]
    assert _agreements("tabrakan dua motor", ["mobil dan motor tabrakan"]) == []
    assert _conflicts("tabrakan dua motor", ["mobil dan motor tabrakan"]) == []
    # A place name is not a spot on the road.
    assert _agreements("copet di Simpang Kebon Jeruk", ["tabrakan di perempatan"]) == []


def test_details_move_the_score_and_are_named_in_the_reasons():
    beat = incident(texts=["Honda Beat merah dicuri di parkiran minimarket"])
    same = score(report(minutes=3, text="motor Beat merah hilang di depan Indomaret"), beat, RULES)
    other = score(report(minutes=3, text="motor NMAX hitam hilang di halaman kos"), beat, RULES)
    assert same.total > other.total
    assert any(r.startswith("detail sama (") and "beat" in r for r in same.reasons)
    assert "merek/tipe berbeda (nmax / beat)" in other.reasons and "warna berbeda (hitam / merah)" in other.reasons
