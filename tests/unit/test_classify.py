"""The category catalogue and the description classifier."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import get_args

import pytest

from benchmarks.classification import DATA, evaluate, load, main
from schemas.events import Priority, UnitKind
from services.intake import categories as cat
from services.intake.categories import (BY_CODE, CATEGORIES, GROUPS, UNCLASSIFIED, category,
                                        groups_compatible)
from services.intake.classify import LOW_CONFIDENCE, Classification, _parse, classify, normalise, suggest_priority

DEMO = Path(__file__).resolve().parents[2] / "spkt" / "demo" / "jakarta.json"
DEMO_CODES = {"vehicle_theft", "street_robbery", "traffic_accident", "fire", "brawl", "fraud", "domestic_violence",
              "missing_person", "public_order", "lost_goods"}


# --- the catalogue -----------------------------------------------------------------------------
def test_codes_are_unique_and_indexed():
    codes = [c.code for c in CATEGORIES]
    assert len(codes) == len(set(codes)) >= 25
    assert set(BY_CODE) == set(codes) and UNCLASSIFIED in BY_CODE


def test_every_priority_is_used_and_valid():
    assert {c.priority for c in CATEGORIES} == set(get_args(Priority))


def test_groups_are_the_known_ones_and_all_used():
    assert {c.group for c in CATEGORIES} == set(GROUPS)


def test_response_plans_name_real_unit_kinds_and_capabilities_units_have():
    demo = json.loads(DEMO.read_text())
    offered: dict[str, set[str]] = {}
    for unit in demo["units"]:
        offered.setdefault(unit["kind"], set()).update(unit.get("capabilities", []))
    for c in CATEGORIES:
        for need in c.response_plan:
            assert need.kind in get_args(UnitKind), (c.code, need.kind)
            assert need.count >= 1, c.code
            assert set(need.capabilities) <= offered[need.kind], (c.code, need)


def test_the_demo_codes_exist():
    demo = json.loads(DEMO.read_text())
    used = {t["category"] for t in demo["report_templates"] if t.get("category")}
    assert DEMO_CODES <= used <= set(BY_CODE)


def test_sensitive_categories_are_the_expected_ones():
    assert {c.code for c in CATEGORIES if c.sensitive} == {"sexual_offence", "child_abuse", "domestic_violence"}


def test_radius_window_and_targets_are_positive_and_ordered():
    for c in CATEGORIES:
        assert c.duplicate_radius_m > 0 and c.duplicate_window_s > 0, c.code
        assert 0 < c.targets.dispatch_s < c.targets.on_scene_s, c.code
        assert c.name and c.name[0].isupper(), c.code
    # large events are reported from far apart; a flood lasts longer than a fire
    assert BY_CODE["fire"].duplicate_radius_m >= 1000 and BY_CODE["demonstration"].duplicate_radius_m >= 1000
    assert BY_CODE["flood"].duplicate_window_s > BY_CODE["fire"].duplicate_window_s
    assert BY_CODE["theft"].duplicate_radius_m < BY_CODE["brawl"].duplicate_radius_m


def test_default_priorities_and_plans_follow_the_domain():
    for code in ("homicide", "kidnapping", "fire", "traffic_accident", "shooting", "brawl"):
        assert BY_CODE[code].priority == "P1", code
        assert BY_CODE[code].targets == cat.P1, code
    for code in ("lost_goods", "non_emergency", "fraud"):
        assert BY_CODE[code].priority == "P4" and BY_CODE[code].response_plan == (), code
    assert BY_CODE["theft"].priority == "P3"
    kinds = lambda code: Counter(k for n in BY_CODE[code].response_plan for k in [n.kind] * n.count)  # noqa: E731
    assert kinds("homicide") == Counter({"car": 1, "reskrim": 1, "inafis": 1})
    assert kinds("traffic_accident") == Counter({"lantas": 1, "car": 1})
    assert any("first_aid" in n.capabilities for n in BY_CODE["traffic_accident"].response_plan)
    assert kinds("brawl")["car"] >= 2 and kinds("brawl")["motorcycle"] >= 1


def test_every_category_but_unclassified_has_keywords_that_compile():
    for c in CATEGORIES:
        if c.code == UNCLASSIFIED:
            assert not c.keywords
            continue
        assert len(c.keywords) >= 5, c.code
        for keyword in c.keywords + c.weak_keywords:
            assert _parse(keyword)[0], keyword


@pytest.mark.parametrize("bad", ["anak kecil & dipukul", "a & b & c", "a |b", "kebakar@n", "ab*"])
def test_malformed_keywords_are_refused(bad):
    with pytest.raises(ValueError):
        from services.intake.classify import _Index
        _Index((dataclasses.replace(BY_CODE["fire"], keywords=(bad,), weak_keywords=()),))


def test_category_lookup():
    assert category(None).code == UNCLASSIFIED
    assert category("").code == UNCLASSIFIED
    assert category("fire").name == "Kebakaran"
    with pytest.raises(KeyError):
        category("arson")
    with pytest.raises(KeyError):
        groups_compatible("fire", "arson")


@pytest.mark.parametrize("a,b,expected", [
    ("fire", "fire", True),
    ("theft", "burglary", True),  # same group
    ("vehicle_theft", "street_robbery", True),
    ("fire", UNCLASSIFIED, True),
    (None, "homicide", True),
    ("street_robbery", "assault", True),  # known pairs across groups
    ("assault", "brawl", True),
    ("public_order", "brawl", True),
    ("traffic_jam", "traffic_accident", True),
    ("other_disaster", "fire", True),
    ("fire", "fraud", False),
    ("homicide", "lost_goods", False),
    ("traffic_accident", "domestic_violence", False),
    ("flood", "pickpocketing", False),
])
def test_groups_compatible(a, b, expected):
    assert groups_compatible(a, b) is expected
    assert groups_compatible(b, a) is expected


def test_groups_compatible_also_takes_group_names():
    assert groups_compatible("persons", "persons") is True
    assert groups_compatible("persons", "property") is False
    assert groups_compatible("homicide", "persons") is True
    assert groups_compatible(UNCLASSIFIED, "disaster") is True
    with pytest.raises(KeyError):
        groups_compatible("persons", "nowhere")


# --- the classifier -----------------------------------------------------------------------------
# Fresh sentences, not in the labelled set.
FRESH = [
    ("Ada mayat pria mengambang di kali dekat Pluit, kondisinya sudah membusuk", "homicide"),
    ("Pemilik warung ditemukan tewas bersimbah darah di dalam tokonya", "homicide"),
    ("Tukang ojek dibacok orang pas ngetem di pangkalan, lengannya luka parah", "assault"),
    ("bapak saya dipukulin tetangga gara2 masalah parkir mobil", "assault"),
    ("Saya dilecehkan atasan di kantor, dia memaksa mencium saya", "sexual_offence"),
    ("Anak tetangga umur 8 tahun badannya penuh luka bekas disundut rokok oleh ayah tirinya", "child_abuse"),
    ("Tolong pak, suami saya mukulin saya terus dari tadi, saya ngumpet di kamar mandi", "domestic_violence"),
    ("Keponakan saya diculik orang tak dikenal di depan sekolahnya tadi siang", "kidnapping"),
    ("Nenek saya yang pikun keluar rumah dari subuh dan belum pulang sampai sekarang", "missing_person"),
    ("Ada suara tembakan beberapa kali di komplek perumahan, warga ketakutan", "shooting"),
    ("Saya dijambret di dekat halte Cawang, tas saya ditarik orang naik motor", "street_robbery"),
    ("Minimarket di Jl. Raya Bogor dirampok dua orang bersenjata tajam tadi malam", "street_robbery"),
    ("motor gue ilang di parkiran kampus, kuncinya udah gue cabut", "vehicle_theft"),
    ("Telah terjadi curanmor di depan rumah warga, pelaku berhasil kabur", "vehicle_theft"),
    ("Laptop saya dicuri orang di perpustakaan waktu saya ke toilet", "theft"),
    ("Rumah kosong milik tetangga dibobol maling, pintunya dicongkel", "burglary"),
    ("Dompet saya kecopetan di bus TransJakarta jurusan Blok M", "pickpocketing"),
    ("Saya ditipu penjual online, sudah transfer uang tapi barang tidak dikirim", "fraud"),
    ("Ada yang ngaku-ngaku dari bank minta kode OTP, sekarang saldo rekening saya hilang", "fraud"),
    ("Kaca jendela rumah saya dilempari batu oleh orang tak dikenal", "vandalism"),
    ("Tetangga saya sering pakai sabu di kontrakannya, banyak tamu keluar masuk malam hari", "drugs"),
    ("Tabrakan motor dengan truk di Jl. Daan Mogot, pengendara motor terkapar", "traffic_accident"),
    ("lakalantas di depan pom bensin, mobil nabrak tiang listrik", "traffic_accident"),
    ("Macet parah di Jl. TB Simatupang, butuh polisi untuk mengatur lalu lintas", "traffic_jam"),
    ("Tawuran lagi di Manggarai, anak-anak muda saling lempar batu dan petasan", "brawl"),
    ("Ada orang mabuk teriak-teriak di depan rumah warga tengah malam", "public_order"),
    ("Ratusan mahasiswa berunjuk rasa di depan Balai Kota, jalan Medan Merdeka ditutup", "demonstration"),
    ("Ada orang mencurigakan mondar-mandir di depan ATM dari tadi sore", "suspicious_activity"),
    ("Kebakaran gudang di Cakung, api sudah besar dan asapnya hitam", "fire"),
    ("Banjir masuk rumah warga di Cipinang Melayu, tingginya sudah sepinggang", "flood"),
    ("Tanah longsor menutup jalan di bantaran kali, ada rumah yang ikut ambruk", "other_disaster"),
    ("Saya kehilangan SIM dan STNK, mau minta surat keterangan kehilangan", "lost_goods"),
    ("KTP saya jatuh entah di mana waktu naik ojek", "lost_goods"),
    ("Saya minta didampingi polisi untuk mengambil motor yang digadaikan adik saya", "assistance_request"),
    ("Mau tanya pak, kalau bikin SKCK syaratnya apa saja?", "non_emergency"),
]


@pytest.mark.parametrize("text,expected", FRESH)
def test_fresh_descriptions_are_classified_with_confidence(text, expected):
    result = classify(text)
    assert result.category == expected, result
    assert not result.low_confidence and LOW_CONFIDENCE <= result.confidence <= 1.0, result
    assert result.matched


def test_fresh_sentences_are_not_in_the_labelled_set():
    labelled = {row["text"] for row in load()}
    assert not labelled & {text for text, _ in FRESH}


def test_normalisation_of_slang_repeats_and_abbreviations():
    assert normalise("Tolooong!! yg tdk dgn gue") == "tolong | yang tidak dengan saya"
    assert normalise("anak2 kagak pulang, udh 2 hari") == "anak anak tidak pulang | sudah 2 hari"
    assert normalise("Laki gue ngamuk, spd motor ilang") == "suami saya mengamuk | motor hilang"
    assert normalise("Rp 4.500.000") == "rp 4500000"


@pytest.mark.parametrize("text,expected", [
    ("tolooong ada kebakaraaan di gang sebelah", "fire"),
    ("motor sy ilang pas lg parkir", "vehicle_theft"),
    ("laki gue ngamuk lagi, gue dipukulin", "domestic_violence"),
    ("ada org dikroyok di depan warung", "assault"),
    ("ketipu olshop, udh tf tp barang gak dtg", "fraud"),
    ("ada yg nyabu di pos ronda", "drugs"),
])
def test_slang_and_typos(text, expected):
    assert classify(text).category == expected


def test_hilang_is_disambiguated_by_what_is_missing():
    alone = classify("hilang")
    assert alone.category == "lost_goods" and alone.low_confidence
    assert classify("dompet saya hilang di stasiun").category == "lost_goods"
    assert classify("anak saya hilang di mall").category == "missing_person"
    assert classify("motor saya hilang di depan rumah").category == "vehicle_theft"
    assert classify("motor saya dicuri").category == "vehicle_theft"
    for text in ("dompet saya hilang di stasiun", "anak saya hilang di mall", "motor saya hilang di depan rumah"):
        assert not classify(text).low_confidence, text


@pytest.mark.parametrize("text", ["", "   ", "!!!", "12345", "asdf qwerty zxcv", "tolooong pak"])
def test_nothing_recognised_is_unclassified_and_flagged(text):
    assert classify(text) == Classification(UNCLASSIFIED, 0.0, (), True, ())


def test_a_weak_hint_alone_is_a_flagged_guess():
    for text, hinted in (("halo", "non_emergency"), ("ada api", "fire"), ("hilang", "lost_goods")):
        result = classify(text)
        assert result.category == hinted and result.low_confidence and 0 < result.confidence < LOW_CONFIDENCE


def test_confidence_grows_with_evidence_and_falls_with_rivals():
    weak = classify("ada api")
    strong = classify("kebakaran")
    more = classify("kebakaran rumah, api membesar dan asap hitam, pemadam belum datang")
    assert weak.category == strong.category == more.category == "fire"
    assert weak.confidence < strong.confidence < more.confidence
    assert weak.low_confidence and not strong.low_confidence
    contested = classify("kebakaran dan tawuran")
    assert contested.low_confidence and contested.confidence < strong.confidence
    assert {contested.category, contested.alternatives[0][0]} == {"fire", "brawl"}


def test_alternatives_are_runner_ups_best_first():
    result = classify("Istri saya dicekik dan ditendang suaminya, kepalanya berdarah")
    assert result.category == "domestic_violence"
    codes = [c for c, _ in result.alternatives]
    assert result.category not in codes and "assault" in codes
    confidences = [c for _, c in result.alternatives]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 <= c <= result.confidence for c in confidences)


def test_negation_does_not_count():
    assert classify("kebakaran").category == "fire"
    assert classify("bukan kebakaran").category == UNCLASSIFIED
    assert classify("motor saya dicuri").category == "vehicle_theft"
    assert classify("motor saya tidak dicuri, cuma bannya bocor").category != "vehicle_theft"
    assert classify("suami saya memukul").category == "domestic_violence"
    assert classify("suami saya tidak pernah memukul").category != "domestic_violence"


def test_classification_is_frozen():
    result = classify("kebakaran")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.category = "flood"  # type: ignore[misc]


@pytest.mark.parametrize("code,text,expected", [
    ("vehicle_theft", "Motor saya dicuri di parkiran", "P3"),
    ("assault", "Adik saya ditusuk pisau, berdarah banyak", "P1"),
    ("fire", "Kebakaran rumah, ada yang terjebak", "P1"),
    ("lost_goods", "Dompet saya hilang", "P4"),
    (None, "ada yang pingsan di jalan", "P2"),
])
def test_suggest_priority_raises_only_for_risk_to_life(code, text, expected):
    assert suggest_priority(code, text) == expected


# --- the labelled set --------------------------------------------------------------------------
def test_the_labelled_set_is_large_and_covers_every_category():
    rows = load()
    assert len(rows) >= 130
    counts = Counter(row["category"] for row in rows)
    assert set(counts) == set(BY_CODE) - {UNCLASSIFIED}
    assert min(counts.values()) >= 3
    assert len({row["text"] for row in rows}) == len(rows)
    assert DATA.read_text(encoding="utf-8").count("\n") == len(rows)


def test_the_labelled_set_accuracy_does_not_regress():
    figures = evaluate(load(), repeat=1)
    assert figures["accuracy"] >= 0.8, figures["confusions"]
    assert figures["confident_accuracy"] >= figures["accuracy"]
    assert figures["low_confidence_share"] < 0.3
    assert set(figures["recall"]) == set(BY_CODE) - {UNCLASSIFIED}


def test_benchmark_main_prints_and_returns_the_figures(capsys):
    figures = main([])
    out = capsys.readouterr().out
    assert f"{figures['accuracy']:.3f}" in out and "recall per category" in out and "confusions" in out
    assert {"n", "accuracy", "confident_accuracy", "low_confidence_share", "recall", "confusions",
            "mean_ms"} <= set(figures)
    assert figures["n"] == len(load()) and figures["mean_ms"] > 0
