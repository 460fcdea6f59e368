"""Is a new report another account of an open incident? Pure: no Kafka, no faust, no HTTP, no SQL.

Several reports from several channels often describe one event (DOMAIN.md: a report is not yet
an incident). Intake attaches a new report to the best matching open incident instead of opening
a new one, and shows the dispatcher why: distance, time gap, category and wording, each as a part
of the score and as a reason in Bahasa Indonesia.

The rules that depend on the category (how near in space and time, which categories may describe
the same event) are injected as `MatchRules`, so this module never depends on the catalogue's
contents; `rules_from_catalogue()` builds them from `services.intake.categories`.

    rules = rules_from_catalogue()
    grouper = IncidentGrouper(rules, new_id=lambda report: derived_id("incident", report.report_id))
    decision = grouper.add(ReportFacts("fire", -6.2, 106.8, received_at, "Ada kebakaran kios..."))
    decision.attached, decision.incident_id, decision.match.reasons
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import count
from typing import Callable, Iterable

UNCLASSIFIED = "unclassified"
OPEN = "open"
CLOSED = "closed"

# --- weights -----------------------------------------------------------------------------------
# The total is a weighted mean of four parts, each in [0, 1], so it is in [0, 1] too and the
# dispatcher can see what each part gave. Hard limits come first: outside the radius, outside the
# window or with incompatible categories there is no score at all, so the weights only rank pairs
# that are already plausible.
#
# - Wording weighs most. Within the radius and the window, what tells one event from another at
#   the same market or on the same street is what the reports name: the motorbike and its colour,
#   the victim, the burning kiosk. Among the pairs that pass the hard limits on the benchmark,
#   the text part alone tells same-event pairs from the others best (ROC AUC 0.95, against 0.86
#   for distance, 0.78 for time, 0.70 for category; the total reaches 0.985).
# - Distance next: reports of one event come from within a hundred metres or so once the
#   position's own error is taken off (see `ReportFacts.accuracy_m`).
# - Time and category weigh little. A second report comes 0-30 min after the first whatever the
#   event, so time mostly separates an event from a later one at the same place. The category
#   has done most of its work as a hard limit (incompatible: no score at all), and 15 % of
#   reports come in unclassified (0.5), which must not be kept out by it.
# Chosen by a grid search on the benchmark (benchmarks/grouping.py, seed 1): the neighbouring
# settings score within a point of these, so they are not a knife-edge.
# The details both sides name (see DETAIL_WORDS) then add or take off a little, outside the mean.
# They lifted pairwise precision and recall, pooled over the benchmark's 20 scenarios, from
# 0.944 / 0.933 to 0.966 / 0.962 (0.959 / 0.959 on 20 scenarios never looked at); the threshold
# went from 0.52 to 0.53 with them, because agreeing details push look-alike pairs up too.
W_TEXT = 0.50
W_DISTANCE = 0.25
W_TIME = 0.15
W_CATEGORY = 0.10
MATCH_THRESHOLD = 0.53

# Distance and time scores fall from 1 to 0 at the radius and the window, steeply first: half-way
# at about these values, whatever the category's limit (see `falloff`).
DISTANCE_HALF_M = 300.0
TIME_HALF_S = 10 * 60.0
# A position's stated accuracy is taken off the distance, up to this much for a pair: a report
# geocoded to a street is not 300 m "away" from the scene, but nor may a vague one match anything.
MAX_UNCERTAINTY_M = 300.0
DEFAULT_ACCURACY_M = 50.0  # weight of a position without a stated accuracy, in the incident's mean
MIN_ACCURACY_M = 10.0

CATEGORY_SAME = 1.0
CATEGORY_COMPATIBLE = 0.7
CATEGORY_UNCLASSIFIED = 0.5

MAX_TEXTS = 5  # descriptions kept per incident: the first and the latest ones
TEXT_SIMILAR = 0.45  # wording the dispatcher is told is "mirip"
TEXT_SOMEWHAT = 0.25  # ... "agak mirip"; below: "berbeda"

EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0


# --- rules -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatchRules:
    """How to judge a pair, given by the caller.

    `radius_m(category)` and `window_s(category)` take a category code (``"unclassified"``
    included); `compatible(a, b)` says whether two different classified codes may describe one
    event (an unclassified report is compatible with anything; the caller need not say so).
    """

    radius_m: Callable[[str], float]
    window_s: Callable[[str], float]
    compatible: Callable[[str, str], bool]


def rules_from_catalogue() -> MatchRules:
    """Rules read from the category catalogue: duplicate radius, window and compatible groups.

    An unknown code raises KeyError when first judged, as `categories.category` does.
    """
    # Imported here so this module stays importable (and testable) while the catalogue changes.
    from services.intake import categories as catalogue

    def radius_m(code: str) -> float:
        return float(catalogue.category(code).duplicate_radius_m)

    def window_s(code: str) -> float:
        return float(catalogue.category(code).duplicate_window_s)

    def compatible(a: str, b: str) -> bool:  # same code or group, or a known related pair
        return bool(catalogue.groups_compatible(a, b))

    return MatchRules(radius_m=_memo(radius_m), window_s=_memo(window_s), compatible=_memo(compatible))


def _memo(fn: Callable) -> Callable:
    cache: dict = {}

    def cached(*args):
        try:
            return cache[args]
        except KeyError:
            value = cache[args] = fn(*args)
            return value

    return cached


# --- what is compared --------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportFacts:
    """What is known of a new report.

    `at` is when the report came in (aware). Without a position no spatial match is possible,
    so such a report never matches an incident. `accuracy_m` is the position's stated error
    (the phone's GPS accuracy, or the geocoder's: a street, a landmark), None when unknown.
    """

    category: str
    lat: float | None
    lon: float | None
    at: datetime
    text: str
    accuracy_m: float | None = None
    report_id: str | None = None


Candidate = ReportFacts  # the name the intake issue gives it


@dataclass
class OpenIncident:
    """An incident reports may still be attached to (only while `status` is open).

    `lat`/`lon` are where its reports place it, `accuracy_m` how sure that is; `texts` the
    descriptions so far (at most MAX_TEXTS in the grouper: the first and the latest).
    """

    incident_id: str
    category: str
    lat: float | None
    lon: float | None
    opened_at: datetime
    last_report_at: datetime
    texts: list[str] = field(default_factory=list)
    report_count: int = 1
    status: str = OPEN
    accuracy_m: float | None = None


@dataclass(frozen=True)
class MatchScore:
    """How well a report matches an incident: the total, its parts, and the reasons in words.

    `distance_m` is the distance between the positions; `uncertainty_m` the part of it their
    stated accuracy explains (taken off before scoring); `minutes` the gap from the incident's
    last report (0 when the report falls inside the incident's span). `detail_score` is what the
    named details added (agreeing) or took off (contradicting), on top of the weighted mean.
    """

    incident_id: str
    total: float
    distance_m: float
    minutes: float
    category_score: float
    text_score: float
    distance_score: float
    time_score: float
    uncertainty_m: float
    reasons: list[str]
    detail_score: float = 0.0


# --- Indonesian text similarity ------------------------------------------------------------------
STOPWORDS = frozenset("""
    yang di ke dari dan ada saya itu ini dengan tolong pak bu bapak mas mbak kak halo
    sudah udah telah sedang lagi akan masih belum baru tadi barusan
    untuk pada dalam juga atau karena jadi sangat sekali banget amat
    kami kita aku gue gua kamu anda dia mereka beliau
    ya iya nya lah kah pun dong sih deh nih tuh kok kan
    mohon segera cepat minta harap bisa mau ingin tolongin
    sini sana situ tersebut oleh para sebuah seorang se
    saat waktu ketika lalu kemudian terus habis sejak
    dekat sekitar depan arah samping sebelah belakang
    tidak tak nggak gak ga enggak bukan
    orang ramai banyak beberapa
    lapor melapor laporan info informasi kejadian
    yg dgn utk sdh udh tdk gk blm tlg dr dkt dpn bgt aja jg krn sy
""".split())

# Words people use for the same thing in reports, mapped to one concept. A concept is added as
# an extra token (the words themselves still count), so "HP dirampas" and "ponsel dijambret"
# share #hp and #rampas. General police-report vocabulary, kept small and independent of the
# category catalogue; keys are words or the stems `stem` gives them (tabrakan -> tabra).
CONCEPTS: dict[str, str] = {
    word: concept
    for concept, words in {
        "#curi": "curi maling colong gondol raib curanmor embat garong",
        "#rampas": "jambret rampas rampok begal todong jarah copet",
        "#tabrak": "tabrak tabra laka lakalantas celaka tubruk serempet senggol banteng",
        "#api": "api bakar kebakaran asap damkar padam lalap hangus kobar",
        "#kelahi": "tawuran bentrok kelahi serang keroyok eroyo keroyo baku hantam",
        "#aniaya": "pukul pukuli aniaya hajar tampar tendang kdrt keras siksa",
        "#hp": "hp handphone ponsel smartphone gawai",
        "#motor": "motor spm matic",
        "#pelajar": "pelajar siswa siswi murid sma smk smp sekolah",
        "#pemuda": "pemuda remaja abg",
        "#sajam": "sajam celurit clurit golok parang pisau arit samurai",
        "#plat": "plat pelat nopol",
        "#luka": "luka cedera berdarah lecet",
        "#pingsan": "pingsan sadar",
        "#lansia": "kakek nenek lansia manula jompo",
        "#anak": "anak bocah balita bayi",
        "#hilang": "hilang tinggal ketinggalan terpisah pisah",
        "#mabuk": "mabuk pemabuk miras",
        "#pkl": "pkl pedagang lapak",
        "#jukir": "jukir parkir",
        "#ojol": "ojol ojek gojek grab",
        "#sopir": "sopir supir pengemudi kemudi endara pengendara",
        "#ribut": "ribut keributan gaduh onar cekcok mulut",
    }.items()
    for word in words.split()
}

_WORD = re.compile(r"[a-z0-9]+")
_VOWELS = frozenset("aiueo")


def _strip_accents(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def stem(word: str) -> str:
    """A light Indonesian stemmer: particles and -nya, then -kan/-an, then one prefix.

    Not a dictionary stemmer: it only has to map the forms reporters write (dicuri, mencuri,
    pencurian; kebakaran, terbakar, membakar) to a shared stem, and it leaves short words alone.
    """
    if word.isdigit() or len(word) <= 4:
        return word
    for suffix in ("nya", "lah", "kah", "pun"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    had_an = False
    for suffix in ("kan", "an"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            had_an = True
            break
    if word.startswith("ke") and had_an and len(word) >= 6:  # ke-an: kebakaran, kecelakaan
        return word[2:]
    for prefix in ("di", "ter", "ber", "per"):
        if word.startswith(prefix) and len(word) - len(prefix) >= 4:
            return word[len(prefix):]
    for prefix, before_vowel in (("meng", ""), ("peng", ""), ("meny", "s"), ("peny", "s"),
                                 ("mem", "p"), ("pem", "p"), ("men", "t"), ("pen", "t")):
        if word.startswith(prefix) and len(word) - len(prefix) >= 3:
            rest = word[len(prefix):]
            return before_vowel + rest if rest[0] in _VOWELS else rest
    if word.startswith(("me", "pe")) and len(word) >= 6:  # melempar, merampas, pelaku
        return word[2:]
    return word


def tokens(text: str) -> list[str]:
    """Lowercase words without punctuation and stopwords, stemmed, plus their concepts."""
    out = []
    for word in _WORD.findall(_strip_accents(text.lower())):
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        stemmed = stem(word)
        out.append(stemmed)
        concept = CONCEPTS.get(word) or CONCEPTS.get(stemmed)
        if concept:
            out.append(concept)
    return out


@lru_cache(maxsize=16384)
def text_features(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The set of stems and concepts, and the set of character trigrams of the stems; cached."""
    stems = frozenset(tokens(text))
    trigrams: set[str] = set()
    for s in stems:
        if s[0] == "#":
            continue
        padded = f" {s} "
        trigrams.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return stems, frozenset(trigrams)


def _cosine(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))


def text_similarity(a: str, b: str) -> float:
    """Mean of the cosine over stems and the cosine over character trigrams, in [0, 1].

    Cosine rather than Jaccard, so a short SMS is not punished for being short against a long
    call transcript; trigrams catch what the stemmer misses (keroyok/pengeroyokan, typos).
    """
    sa, ta = text_features(a)
    sb, tb = text_features(b)
    return 0.5 * _cosine(sa, sb) + 0.5 * _cosine(ta, tb)


def incident_text_similarity(text: str, texts: Iterable[str]) -> float:
    """How like the incident's descriptions the new one is: the best of its descriptions."""
    return max((text_similarity(text, t) for t in texts), default=0.0)


# --- geometry and time ---------------------------------------------------------------------------
def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: within 0.1 % of the geodesic over the few km that matter here."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return EARTH_RADIUS_M * math.hypot(x, y)


def falloff(x: float, limit: float, half: float) -> float:
    """1 at 0, 0 at `limit` and beyond, and about 1/2 at `half` when the limit is well beyond it.

    A hyperbola 1/(1 + x/half), shifted and stretched to reach exactly 0 at the limit. It drops
    fast over the first `half` and slowly after, so the score follows the absolute distance (or
    gap) more than the category's limit: 300 m is about as telling for a fire (radius 1 km) as
    for a stolen motorbike (radius 300 m); only the hard limit differs.
    """
    if x >= limit:
        return 1.0 if limit <= 0 and x <= 0 else 0.0
    if half <= 0:
        return 1.0 - x / limit
    at_limit = 1.0 / (1.0 + limit / half)
    return (1.0 / (1.0 + x / half) - at_limit) / (1.0 - at_limit)


def _uncertainty_m(a: float | None, b: float | None) -> float:
    return min(MAX_UNCERTAINTY_M, math.hypot(a or 0.0, b or 0.0))


def _gap_s(at: datetime, incident: OpenIncident) -> float:
    """Seconds from the incident's last report (0 when the report falls inside its span)."""
    if at >= incident.last_report_at:
        return (at - incident.last_report_at).total_seconds()
    if at >= incident.opened_at:
        return 0.0
    return (incident.opened_at - at).total_seconds()


def _is_unclassified(code: str | None) -> bool:
    return not code or code == UNCLASSIFIED


def _code(code: str | None) -> str:
    return UNCLASSIFIED if not code else code


def _category_score(a: str, b: str, rules: MatchRules) -> float | None:
    if _is_unclassified(a) or _is_unclassified(b):  # either or both: it could be anything
        return CATEGORY_UNCLASSIFIED
    if a == b:
        return CATEGORY_SAME
    return CATEGORY_COMPATIBLE if rules.compatible(a, b) else None


# --- reasons, in the dispatcher's words ----------------------------------------------------------
def _decimal(x: float, places: int = 2) -> str:
    return f"{x:.{places}f}".replace(".", ",")


def _distance_words(metres: float, uncertainty: float) -> str:
    words = f"jarak {round(metres / 10) * 10:.0f} m" if metres < 1000 else f"jarak {_decimal(metres / 1000, 1)} km"
    if uncertainty >= 20:
        words += f" (lokasi ±{round(uncertainty / 10) * 10:.0f} m)"
    return words


def _minutes_words(minutes: float) -> str:
    return "selisih kurang dari 1 menit" if minutes < 1 else f"selisih {minutes:.0f} menit"


def _category_words(a: str, b: str, category_score: float) -> str:
    if category_score == CATEGORY_SAME:
        return "kategori sama"
    if category_score == CATEGORY_COMPATIBLE:
        return "kategori sejenis"
    return "keduanya belum diklasifikasi" if _is_unclassified(a) and _is_unclassified(b) \
        else "salah satu belum diklasifikasi"


def _text_words(score: float) -> str:
    if score >= TEXT_SIMILAR:
        word = "uraian mirip"
    elif score >= TEXT_SOMEWHAT:
        word = "uraian agak mirip"
    else:
        word = "uraian berbeda"
    return f"{word} ({_decimal(score)})"


# --- scoring ---------------------------------------------------------------------------------
# --- details that tell two events apart -------------------------------------------------------
# Dispatchers tell look-alike reports apart, and recognise one event in two wordings, by the
# details they name: "Honda Beat merah" is not "Yamaha NMAX hitam", "HP dijambret" is not "dompet
# dijambret", a burning "rumah makan" is not a burning "tumpukan sampah". Each kind below maps
# what reporters write to one value. A kind named on both sides either shares a value (the
# details agree: DETAIL_AGREE[kind] added) or shares none (they contradict: DETAIL_CONFLICT[kind]
# taken off). Two different plate numbers are two vehicles: no match at all.
# Vehicle kinds and makes are what police reports record; items and burning objects what victims
# and witnesses name first. Agreement on a common word ("motor", a colour) tells little, on a make
# or an item more; a contradiction tells more than an agreement, because a detail left out of a
# short report is no evidence while a different one is.
DETAIL_WORDS: dict[str, dict[str, str]] = {
    "kendaraan": {
        **dict.fromkeys("motor|sepeda motor|spm|matic|motor matic|skuter|moge".split("|"), "motor"),
        **dict.fromkeys("mobil|sedan|minibus|suv|mpv|jeep".split("|"), "mobil"),
        **dict.fromkeys("truk|truck|truk tronton|tronton|dump truck|trailer|kontainer".split("|"), "truk"),
        **dict.fromkeys("bus|bis|transjakarta|busway|metromini|kopaja".split("|"), "bus"),
        **dict.fromkeys("angkot|mikrolet|angkutan umum".split("|"), "angkot"),
        **dict.fromkeys("taksi|taxi".split("|"), "taksi"),
        **dict.fromkeys("ojol|ojek|ojek online|gojek|grab|maxim".split("|"), "ojek"),
        **dict.fromkeys("mobil boks|mobil box|boks|pikap|pick up|pickup|bak terbuka".split("|"), "mobil barang"),
        **dict.fromkeys("bajaj|bajai".split("|"), "bajaj"),
        **dict.fromkeys("sepeda|sepeda onthel".split("|"), "sepeda"),
    },
    "merek": {word: word for word in (
        "beat scoopy vario supra revo pcx adv genio spacy cbr verza megapro tiger mio nmax aerox xmax lexi fino "
        "jupiter vixion byson rx-king satria nex address ninja klx kawasaki avanza xenia innova fortuner rush "
        "terios agya ayla calya sigra yaris jazz brio mobilio civic crv hrv pajero xpander ertiga apv carry "
        "livina grandmax luxio l300").split()}
    | {"gran max": "grandmax", "grand max": "grandmax", "cr-v": "crv", "hr-v": "hrv", "rx king": "rx-king"},
    "barang": {
        **dict.fromkeys("hp|handphone|ponsel|smartphone|telepon genggam|iphone|android|gawai".split("|"), "HP"),
        **dict.fromkeys("dompet".split("|"), "dompet"),
        **dict.fromkeys("tas|tas selempang|tas tangan|ransel|tas ransel|tas punggung".split("|"), "tas"),
        **dict.fromkeys("kalung|kalung emas".split("|"), "kalung"),
        **dict.fromkeys("laptop|notebook|tas laptop".split("|"), "laptop"),
        **dict.fromkeys("cincin|gelang|anting".split("|"), "perhiasan"),
        **dict.fromkeys("jam tangan|arloji".split("|"), "jam tangan"),
    },
    # Where on the road or the premises it happened. A crossing usually has traffic lights, so
    # the two are one place here; place names such as "Simpang Kebon Jeruk" name no spot.
    "tempat": {
        **dict.fromkeys("perempatan|simpang empat|prapatan|lampu merah|traffic light|lampu lalu lintas|"
                        "pertigaan|simpang tiga".split("|"), "persimpangan"),
        **dict.fromkeys("putaran balik|putar balik|u-turn|puteran".split("|"), "putaran balik"),
        **dict.fromkeys("jalan layang|flyover|fly over".split("|"), "jalan layang"),
        **dict.fromkeys("halte|halte bus|halte transjakarta".split("|"), "halte"),
        **dict.fromkeys("minimarket|indomaret|alfamart".split("|"), "minimarket"),
        **dict.fromkeys("kos|kos-kosan|kost|indekos".split("|"), "kos"),
        **dict.fromkeys("masjid|musala|musholla".split("|"), "masjid"),
        **dict.fromkeys("kantor|basement kantor".split("|"), "kantor"),
        **dict.fromkeys("pinggir jalan|bahu jalan|tepi jalan".split("|"), "pinggir jalan"),
    },
    # The age of a missing person or a victim: a stated age, or words that place them among the elderly.
    "umur": {
        **dict.fromkeys("lansia|manula|jompo|kakek|nenek|bapak tua|ibu tua|pikun".split("|"), "lansia"),
        **dict.fromkeys("balita|bayi".split("|"), "balita"),
    },
    "objek": {
        **dict.fromkeys("kios|kios-kios|lapak|los pasar".split("|"), "kios"),
        **dict.fromkeys("rumah warga|rumah tinggal|rumah dua lantai|permukiman|pemukiman|kontrakan".split("|"),
                        "rumah"),
        **dict.fromkeys("gudang|gudang kayu".split("|"), "gudang"),
        **dict.fromkeys("warung makan|rumah makan|restoran|warteg|rumah makan padang".split("|"), "rumah makan"),
        **dict.fromkeys("sampah|tumpukan sampah|gunungan sampah|tps".split("|"), "sampah"),
        **dict.fromkeys("bengkel|bengkel motor".split("|"), "bengkel"),
    },
}
DETAIL_AGREE = {"kendaraan": 0.02, "merek": 0.06, "barang": 0.05, "tempat": 0.03, "umur": 0.04, "objek": 0.05,
                "warna": 0.02}
DETAIL_CONFLICT = {"kendaraan": 0.08, "merek": 0.12, "barang": 0.10, "tempat": 0.10, "umur": 0.20, "objek": 0.10,
                   "warna": 0.10}
# The vehicles of a collision are told as a pair ("motor sama mobil", "dua motor"): they agree
# only when both name the same ones; "motor" against "motor and car" is neither.
WHOLE_SET_KINDS = frozenset({"kendaraan"})
NUMBER_WORDS = {word: n for n, word in enumerate(
    "nol satu dua tiga empat lima enam tujuh delapan sembilan sepuluh sebelas".split())}
NUMBER_WORDS |= {f"{word} belas": n + 10 for word, n in NUMBER_WORDS.items() if 2 <= n <= 9}
COLOUR_WORDS = {
    "merah": "merah", "hitam": "hitam", "putih": "putih", "biru": "biru", "abu": "abu", "abu-abu": "abu",
    "silver": "perak", "perak": "perak", "kuning": "kuning", "hijau": "hijau", "coklat": "coklat",
    "cokelat": "coklat", "oranye": "oranye", "jingga": "oranye", "ungu": "ungu", "pink": "merah muda",
}
_PLATE = re.compile(r"\b([A-Z]{1,2})\s?(\d{1,4})\s?([A-Z]{1,3})\b")
# Colour words that name a place or a thing, not the colour of what was seen.
_NOT_A_COLOUR = re.compile(r"\b(lampu|palang|plat|pelat|zona|bendera|kartu) (merah|putih|kuning|hijau|hitam)\b")
# One pattern per kind, longest phrase first, so "tas laptop" is a laptop and not also a bag.
_DETAIL_PATTERNS = {
    kind: re.compile(r"(?<![\w-])(" + "|".join(re.escape(p) for p in sorted(words, key=len, reverse=True))
                     + r")(?![\w-])")
    for kind, words in DETAIL_WORDS.items()
}


def _colours(text: str) -> set[str]:
    words = re.findall(r"[a-z-]+", _NOT_A_COLOUR.sub(" ", text.lower()))
    out = {COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS}
    if "muda" in words and "merah" in out:  # merah muda is pink, not red
        out.discard("merah")
        out.add("merah muda")
    return out


_AGE = re.compile(r"(?<![\w-])(\d{1,3}|" + "|".join(NUMBER_WORDS) + r") ?(?:tahun|thn|th)(?![\w-])")


def _ages(text: str) -> frozenset[str]:
    """Stated ages ("7 tahun", "tujuh tahun"); 60 and over count as "lansia", under 5 as "balita"."""
    out = set()
    for word in _AGE.findall(text):
        years = int(word) if word.isdigit() else NUMBER_WORDS[word]
        out.add("lansia" if years >= 60 else "balita" if years < 5 else str(years))
    return frozenset(out)


def _plates(text: str) -> set[str]:
    return {"".join(m) for m in _PLATE.findall(text)}


@lru_cache(maxsize=16384)
def text_details(text: str) -> dict[str, frozenset[str]]:
    """The details a description names, by kind ("kendaraan", "merek", "barang", "objek", "warna",
    "plat"); a kind it does not name is absent."""
    lower = _strip_accents(text.lower())
    found = {kind: frozenset(DETAIL_WORDS[kind][m] for m in pattern.findall(lower))
             for kind, pattern in _DETAIL_PATTERNS.items()}
    found["umur"] = found["umur"] | _ages(lower)
    found["warna"] = frozenset(_colours(lower))
    found["plat"] = frozenset(_plates(text))
    return {kind: values for kind, values in found.items() if values}


@dataclass(frozen=True)
class DetailComparison:
    """The kinds of detail both sides name: those sharing a value, and those sharing none
    (kind, the report's values, the incident's values)."""

    agree: tuple[tuple[str, frozenset[str]], ...]
    conflict: tuple[tuple[str, frozenset[str], frozenset[str]], ...]

    @property
    def adjustment(self) -> float:
        return (sum(DETAIL_AGREE.get(kind, 0.0) for kind, _ in self.agree)
                - sum(DETAIL_CONFLICT.get(kind, 0.0) for kind, _, _ in self.conflict))

    @property
    def plates_differ(self) -> bool:
        return any(kind == "plat" for kind, _, _ in self.conflict)


DETAIL_NAMES = {"kendaraan": "kendaraan", "merek": "merek/tipe", "barang": "barang", "tempat": "tempat", "umur": "umur",
                "objek": "objek",
                "warna": "warna", "plat": "plat nomor"}


def _shared(kind: str, mine: frozenset[str], theirs: frozenset[str]) -> frozenset[str]:
    shared = mine & theirs
    if kind == "umur" and not shared:  # a stated age is an estimate: two years either way agree
        shared = frozenset(a for a in mine for b in theirs
                           if a.isdigit() and b.isdigit() and abs(int(a) - int(b)) <= 2)
    return shared


def compare_details(text: str, texts: Iterable[str]) -> DetailComparison:
    """How the report's details stand against each of the incident's descriptions.

    A kind agrees when some description shares a value with the report, and contradicts when
    some description names it with none in common: an incident that already holds two accounts
    that disagree (one wrongly attached) then draws neither event's next reports by that detail.
    """
    mine = text_details(text)
    if not mine:
        return DetailComparison((), ())
    theirs = [text_details(other) for other in texts]
    agree, conflict = [], []
    for kind, values in mine.items():
        named = [details[kind] for details in theirs if kind in details]
        if not named:
            continue
        shared = [_shared(kind, values, other) for other in named]
        agreeing = [(s, other) for s, other in zip(shared, named)
                    if s and (kind not in WHOLE_SET_KINDS or values == other)]
        if agreeing:
            agree.append((kind, frozenset().union(*(s for s, _ in agreeing))))
        differing = [other for s, other in zip(shared, named) if not s]
        if differing:
            conflict.append((kind, values, frozenset().union(*differing)))
    return DetailComparison(tuple(agree), tuple(conflict))


def _detail_words(comparison: DetailComparison) -> list[str]:
    words = [f"{DETAIL_NAMES[kind]} berbeda ({', '.join(sorted(a))} / {', '.join(sorted(b))})"
             for kind, a, b in comparison.conflict]
    shared = sorted(v for kind, values in comparison.agree if kind != "kendaraan" for v in values)
    if shared:
        words.append(f"detail sama ({', '.join(shared)})")
    return words


def score(report: ReportFacts, incident: OpenIncident, rules: MatchRules) -> MatchScore | None:
    """How well the report matches the incident, or None when it cannot be the same event.

    None when either has no position, the incident is not open, the categories are
    incompatible, the distance (less the positions' stated accuracy) exceeds the larger radius of
    the two categories, or the time since the incident's last report exceeds the larger window.
    """
    if incident.status != OPEN or report.lat is None or report.lon is None:
        return None
    if incident.lat is None or incident.lon is None:
        return None
    rep_cat, inc_cat = _code(report.category), _code(incident.category)
    category_score = _category_score(rep_cat, inc_cat, rules)
    if category_score is None:
        return None
    window = max(rules.window_s(rep_cat), rules.window_s(inc_cat))
    gap = _gap_s(report.at, incident)
    if gap > window:
        return None
    radius = max(rules.radius_m(rep_cat), rules.radius_m(inc_cat))
    metres = distance_m(report.lat, report.lon, incident.lat, incident.lon)
    uncertainty = _uncertainty_m(report.accuracy_m, incident.accuracy_m)
    beyond = max(0.0, metres - uncertainty)
    if beyond > radius:
        return None
    distance_score = falloff(beyond, radius, DISTANCE_HALF_M)
    time_score = falloff(gap, window, TIME_HALF_S)
    details = compare_details(report.text, incident.texts)
    if details.plates_differ:
        return None  # two plate numbers: two vehicles, two events
    text_score = incident_text_similarity(report.text, incident.texts)
    total = (W_DISTANCE * distance_score + W_TIME * time_score + W_CATEGORY * category_score
             + W_TEXT * text_score + details.adjustment)
    minutes = gap / 60.0
    reasons = [_distance_words(metres, uncertainty), _minutes_words(minutes),
               _category_words(rep_cat, inc_cat, category_score), _text_words(text_score),
               *_detail_words(details)]
    return MatchScore(incident_id=incident.incident_id, total=min(1.0, max(0.0, total)), distance_m=metres,
                      minutes=minutes, category_score=category_score, text_score=text_score,
                      distance_score=distance_score, time_score=time_score, uncertainty_m=uncertainty,
                      reasons=reasons, detail_score=details.adjustment)


def best_match(report: ReportFacts, incidents: Iterable[OpenIncident], rules: MatchRules,
               threshold: float = MATCH_THRESHOLD) -> MatchScore | None:
    """The highest-scoring open incident scoring at least `threshold`, or None.

    Ties go to the most recently opened incident (then the latest report, then the highest id,
    so the answer never depends on the order given). Cheap checks run first: status, a lat/lon
    box around the report, the time gap; only then the exact distance and the wording.
    """
    if report.lat is None or report.lon is None:
        return None
    rep_cat = _code(report.category)
    rep_radius = rules.radius_m(rep_cat)
    rep_window = rules.window_s(rep_cat)
    lat, lon, at = report.lat, report.lon, report.at
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    slack = MAX_UNCERTAINTY_M  # the most the positions' accuracy can take off a distance
    box_of: dict[str, float] = {}
    window_of: dict[str, float] = {}
    best: MatchScore | None = None
    best_key: tuple = ()
    for incident in incidents:
        if incident.status != OPEN or incident.lat is None:
            continue
        inc_cat = incident.category or UNCLASSIFIED
        half_side = box_of.get(inc_cat)
        if half_side is None:
            half_side = box_of[inc_cat] = (max(rep_radius, rules.radius_m(inc_cat)) + slack) / M_PER_DEG
        if abs(incident.lat - lat) > half_side or abs(incident.lon - lon) > half_side / cos_lat:
            continue
        window = window_of.get(inc_cat)
        if window is None:
            window = window_of[inc_cat] = max(rep_window, rules.window_s(inc_cat))
        if _gap_s(at, incident) > window:
            continue
        match = score(report, incident, rules)
        if match is None or match.total < threshold:
            continue
        key = (match.total, incident.opened_at, incident.last_report_at, incident.incident_id)
        if best is None or key > best_key:
            best, best_key = match, key
    return best


# --- the sequential pipeline -------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    incident_id: str
    attached: bool
    match: MatchScore | None


def sequential_ids(prefix: str = "INC-") -> Callable[[ReportFacts], str]:
    """An id factory giving INC-000001, INC-000002, ... (deterministic, for tests and benchmarks)."""
    counter = count(1)
    return lambda _report: f"{prefix}{next(counter):06d}"


class IncidentGrouper:
    """Attaches reports to open incidents or opens new ones, one report at a time.

    Deterministic: the same reports in the same order give the same incidents and decisions.

    The incident's position is the mean of its reports' positions, each weighted by its stated
    accuracy (1/accuracy², DEFAULT_ACCURACY_M when none is stated), and its own accuracy is that
    of the combined fixes (as if their errors were independent). Every position carries its own
    error (a phone's fix, a walk-in geocoded to the nearest landmark), so the mean is a better
    estimate of the scene than the first fix, which may be the one 400 m off; a new report moves
    it only by its share of the weight, and only reports already within the radius are attached,
    so it cannot wander far. (On the benchmark's tuning seed, keeping the first report's position
    instead drops pairwise precision from 0.94 to 0.88 at the same recall.)
    An unclassified incident takes the category of the first classified report attached to it.
    """

    def __init__(self, rules: MatchRules, *, new_id: Callable[[ReportFacts], str] | None = None,
                 threshold: float = MATCH_THRESHOLD, max_texts: int = MAX_TEXTS,
                 expire_on_add: bool = True, grace_s: float = 0.0) -> None:
        self.rules = rules
        self.new_id = new_id or sequential_ids()
        self.threshold = threshold
        self.max_texts = max(1, max_texts)
        self.expire_on_add = expire_on_add
        self.grace_s = grace_s
        self._open: dict[str, OpenIncident] = {}
        # Per incident: sums of weight×lat, weight×lon, weight, and whether any accuracy was stated.
        self._position: dict[str, tuple[float, float, float, bool]] = {}
        self._horizon_s = 0.0  # the longest window of any category seen: no report matches beyond it

    @property
    def incidents(self) -> list[OpenIncident]:
        """The open incidents, oldest first."""
        return list(self._open.values())

    def get(self, incident_id: str) -> OpenIncident | None:
        return self._open.get(incident_id)

    def add(self, report: ReportFacts) -> Decision:
        code = _code(report.category)
        self._horizon_s = max(self._horizon_s, self.rules.window_s(code))
        if self.expire_on_add:
            self.expire(report.at)
        match = best_match(report, self._open.values(), self.rules, self.threshold)
        if match is None:
            incident_id = self.new_id(report)
            self._open[incident_id] = OpenIncident(
                incident_id=incident_id, category=code, lat=report.lat, lon=report.lon,
                opened_at=report.at, last_report_at=report.at, texts=[report.text] if report.text else [],
                report_count=1, accuracy_m=report.accuracy_m)
            if report.lat is not None and report.lon is not None:
                w = _weight(report.accuracy_m)
                self._position[incident_id] = (w * report.lat, w * report.lon, w, report.accuracy_m is not None)
            return Decision(incident_id, attached=False, match=None)
        self._attach(self._open[match.incident_id], report)
        return Decision(match.incident_id, attached=True, match=match)

    def _attach(self, incident: OpenIncident, report: ReportFacts) -> None:
        incident.report_count += 1
        incident.last_report_at = max(incident.last_report_at, report.at)
        if report.text:
            incident.texts.append(report.text)
            if len(incident.texts) > self.max_texts:  # keep the first and the latest ones
                del incident.texts[1]
        if _is_unclassified(incident.category) and not _is_unclassified(report.category):
            incident.category = report.category
        # Only a report with a position can match, so both have one here.
        lat_sum, lon_sum, weights, stated = self._position[incident.incident_id]
        w = _weight(report.accuracy_m)
        lat_sum += w * report.lat  # type: ignore[operator]
        lon_sum += w * report.lon  # type: ignore[operator]
        weights += w
        stated = stated or report.accuracy_m is not None
        self._position[incident.incident_id] = (lat_sum, lon_sum, weights, stated)
        incident.lat, incident.lon = lat_sum / weights, lon_sum / weights
        incident.accuracy_m = 1.0 / math.sqrt(weights) if stated else None

    def close(self, incident_id: str) -> bool:
        """Closes an incident: no report attaches to it any more. False if it was not open."""
        incident = self._open.pop(incident_id, None)
        self._position.pop(incident_id, None)
        if incident is None:
            return False
        incident.status = CLOSED
        return True

    def expire(self, now: datetime) -> list[str]:
        """Drops the incidents no report could match any more, and returns their ids.

        An incident is kept while a report of any category seen so far could still fall in the
        window (a pair's window is the larger of the two), plus `grace_s`. Every category an
        incident has had came from a report, so its window is within that horizon.
        """
        cutoff = now - timedelta(seconds=self._horizon_s + self.grace_s)
        dropped = [incident_id for incident_id, incident in self._open.items() if incident.last_report_at < cutoff]
        for incident_id in dropped:
            del self._open[incident_id]
            self._position.pop(incident_id, None)
        return dropped


def _weight(accuracy_m: float | None) -> float:
    accuracy = DEFAULT_ACCURACY_M if accuracy_m is None else max(MIN_ACCURACY_M, accuracy_m)
    return 1.0 / (accuracy * accuracy)


def facts_from_report(report, category: str | None = None) -> ReportFacts:
    """ReportFacts from a `report.received` payload (duck-typed: nothing imported from schemas).

    `category` overrides the report's own (e.g. the one intake's classifier chose).
    """
    location = report.location
    return ReportFacts(category=_code(category if category is not None else report.category),
                       lat=location.lat, lon=location.lon, at=report.received_at, text=report.description,
                       accuracy_m=getattr(location, "accuracy_m", None), report_id=report.report_id)
