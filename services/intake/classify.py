"""Suggest a category for a report's free-text description. Pure Python: no I/O, no network.

The keywords live in the catalogue (services.intake.categories; their syntax is described
there). A description is normalised (lower case, repeated letters collapsed, slang and
abbreviations expanded), cut into clauses at punctuation and into words, and matched against
every category's keywords. Phrases weigh more than single words, weak words little; a word
explains one thing only, so the heaviest match claims it (in "anak saya hilang" the phrase for
a missing child takes `hilang`, which alone would lean to lost goods). A keyword right after
a negation ("bukan kebakaran", "tidak dicuri") does not count, nor a phrase with a negation
among its words ("motor saya tidak dicuri").

The suggestion never stands alone: `confidence` grows with the winning score and with its
margin over the runner-up, and `low_confidence` is set when it is below `LOW_CONFIDENCE` or
nothing matched (category `unclassified`). The caller shows that to the dispatcher, who
confirms the category; the classifier does not guess silently.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from services.intake.categories import BY_CODE, CATEGORIES, PRIORITIES, UNCLASSIFIED, Category

LOW_CONFIDENCE = 0.6
"""Below this the suggestion is flagged for the dispatcher to confirm."""

STRONG = 2.0  # a strong single word
PHRASE_STEP = 1.0  # each further word of a strong phrase
WEAK = 0.7  # a weak word or phrase
GAP_FACTOR = 0.85  # a phrase with other words between its words
NEAR_FACTOR = 0.8  # an `a & b` pair
MAX_GAP = 2  # words allowed between the words of a two-word phrase
MAX_GAP_LONG = 1  # in all of a longer phrase, or of one that starts with a negation ("tidak pulang")
NEAR_WINDOW = 5  # at most this many positions apart for `a & b`
SCALE = 1.7  # score at which the strength part of the confidence reaches 1 - 1/e
RIVALRY = 0.6  # how much a runner-up as strong as the winner takes off the confidence
MAX_ALTERNATIVES = 3

NEGATIONS = frozenset({"bukan", "tanpa", "tidak"})
_NEGATION_LED = NEGATIONS | {"belum"}
SUFFIXES = ("nya", "ku", "mu", "lah", "kah", "pun", "in")

# One word to one or more words. Applied to the description and to the keywords alike.
SLANG: dict[str, str] = {
    # negation
    "gak": "tidak", "ga": "tidak", "gk": "tidak", "nggak": "tidak", "ngga": "tidak", "nggk": "tidak",
    "enggak": "tidak", "engga": "tidak", "kagak": "tidak", "kaga": "tidak", "tdk": "tidak", "tak": "tidak",
    "ndak": "tidak", "nda": "tidak", "tidk": "tidak", "bkn": "bukan",
    # function words
    "yg": "yang", "dgn": "dengan", "dg": "dengan", "dng": "dengan", "sy": "saya", "sya": "saya", "aq": "saya",
    "gue": "saya", "gua": "saya", "gw": "saya", "aku": "saya", "ane": "saya", "udh": "sudah",
    "udah": "sudah", "sdh": "sudah", "dah": "sudah", "blm": "belum", "blum": "belum", "krn": "karena",
    "karna": "karena", "utk": "untuk", "buat": "untuk", "dr": "dari", "dri": "dari", "jg": "juga", "tp": "tapi",
    "tpi": "tapi", "sm": "sama", "aja": "saja", "bgt": "banget", "skrg": "sekarang",
    "skrang": "sekarang", "sekarng": "sekarang", "td": "tadi", "tdi": "tadi", "kmrn": "kemarin",
    "kemaren": "kemarin", "org": "orang", "orng": "orang", "rmh": "rumah", "jln": "jalan", "jl": "jalan",
    "jalanan": "jalan", "thn": "tahun", "th": "tahun", "tlg": "tolong", "tlong": "tolong", "mhn": "mohon",
    "dtg": "datang", "pd": "pada", "lg": "lagi", "bs": "bisa", "bsa": "bisa", "sampe": "sampai",
    "ampe": "sampai", "pake": "pakai", "kyk": "kayak", "kaya": "kayak", "kayaknya": "sepertinya",
    "kek": "kayak", "deket": "dekat", "abis": "habis", "gimana": "bagaimana", "gmn": "bagaimana",
    "pengen": "ingin", "pingin": "ingin", "bener": "benar",
    "pas": "saat", "waktu": "saat", "kalo": "kalau", "klo": "kalau", "klu": "kalau", "lgsg": "langsung",
    # people
    "bokap": "ayah", "nyokap": "ibu", "bpk": "bapak", "bp": "bapak", "ibuk": "ibu",
    "bini": "istri", "bojo": "suami", "lakik": "suami", "misua": "suami", "paksu": "suami", "bocah": "anak",
    "bocil": "anak", "bayik": "bayi", "cewek": "perempuan", "cewe": "perempuan", "cowok": "pria",
    "cowo": "pria", "wanita": "perempuan", "lelaki": "pria", "ortu": "orangtua", "jenasah": "jenazah",
    # things
    "hape": "hp", "handphone": "hp", "ponsel": "hp", "gawai": "hp", "duit": "uang", "doku": "uang",
    "mtr": "motor", "motr": "motor", "pikap": "pickup", "mobl": "mobil", "ojol": "ojek", "pulisi": "polisi",
    "ambulan": "ambulans", "rs": "rumah_sakit",
    # verbs, Jakarta slang
    "ilang": "hilang", "ngilang": "menghilang", "ngilangin": "menghilangkan", "nyolong": "mencuri",
    "nyuri": "mencuri", "colong": "curi", "dicolongin": "dicolong", "ngembat": "mencuri", "embat": "curi",
    "ngebacok": "membacok", "digebukin": "dipukuli", "gebukin": "memukuli",
    "dipukulin": "dipukuli", "mukulin": "memukuli", "digebuk": "dipukul",
    "dikroyok": "dikeroyok", "ngeroyok": "mengeroyok", "dikeroyokin": "dikeroyok", "nabrak": "menabrak",
    "ketabrak": "tertabrak", "ditabrakin": "ditabrak", "nyerempet": "menyerempet", "keserempet": "diserempet",
    "ngamuk": "mengamuk", "ngintip": "mengintip", "ngintipin": "mengintip", "nusuk": "menusuk",
    "nyulik": "menculik", "nyandera": "menyandera", "nipu": "menipu", "ketipu": "tertipu",
    "nyopet": "mencopet", "ngerampok": "merampok", "ngerampas": "merampas", "ngejambret": "menjambret",
    "kebakar": "terbakar",
    "ngebakar": "membakar", "nembak": "menembak", "ketembak": "tertembak", "ngerusak": "merusak",
    "dirusakin": "dirusak", "ngelempar": "melempar", "dilemparin": "dilempari",
    "rame": "ramai", "mabok": "mabuk", "ngobat": "narkoba", "ngetes": "tes",
    "nyerang": "menyerang", "ngeroyokin": "mengeroyok", "ngegebukin": "memukuli",
    "nonjok": "meninju", "ngebunuh": "membunuh",
    "nyiksa": "menyiksa", "ngancem": "mengancam", "diancem": "diancam", "ngelecehin": "melecehkan",
    "dilecehin": "dilecehkan", "ngikutin": "membuntuti", "diikutin": "diikuti", "kelelep": "tenggelam",
}

# A run of words to other words, after the one-word replacements.
PHRASES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("laki", "laki"), ("pria",)),
    (("laki", "saya"), ("suami", "saya")),
    (("lakinya",), ("suaminya",)),
    (("sepeda", "motor"), ("motor",)),
    (("spd", "motor"), ("motor",)),
    (("spd", "mtr"), ("motor",)),
    (("kendaraan", "bermotor"), ("ranmor",)),
    (("kena", "tipu"), ("tertipu",)),
    (("tolong", "tolong"), ("tolong",)),
    (("lalin",), ("lalu", "lintas")),
    (("lantas",), ("lalu", "lintas")),
    (("pick", "up"), ("pickup",)),
)
_PHRASES_BY_FIRST: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = defaultdict(list)
for _from, _to in sorted(PHRASES, key=lambda p: -len(p[0])):
    _PHRASES_BY_FIRST[_from[0]].append((_from, _to))

_NUMBER_SEPARATOR = re.compile(r"(?<=\d)[.,](?=\d)")
_REDUPLICATION = re.compile(r"\b([a-z]{2,})2\b")
_CLAUSE = re.compile(r"[.,;:!?\n\r()\[\]{}\"]+|\s[-–—]\s")
_NON_WORD = re.compile(r"[^a-z0-9_]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_DOUBLES = re.compile(r"([a-z])\1")


@dataclass(frozen=True)
class Classification:
    category: str
    confidence: float  # 0..1
    matched: tuple[str, ...]  # the words and phrases of the description that decided it
    low_confidence: bool
    alternatives: tuple[tuple[str, float], ...] = ()  # runner-ups, best first, with their confidence


# --- normalisation ---------------------------------------------------------------------------
def _word(token: str) -> list[str]:
    token = _REPEATS.sub(r"\1", token)
    return SLANG.get(token, token).split()


def _phrases(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        for src, dst in _PHRASES_BY_FIRST.get(words[i], ()):
            if tuple(words[i:i + len(src)]) == src:
                out.extend(dst)
                i += len(src)
                break
        else:
            out.append(words[i])
            i += 1
    return out


def clauses(text: str) -> list[list[str]]:
    """The description as clauses of normalised words."""
    text = _NUMBER_SEPARATOR.sub("", text.lower())
    text = _REDUPLICATION.sub(r"\1 \1", text)
    result = []
    for part in _CLAUSE.split(text):
        words = [w for token in _NON_WORD.sub(" ", part).split() for w in _word(token)]
        words = _phrases(words)
        if words:
            result.append(words)
    return result


def normalise(text: str) -> str:
    """The normalised words of a description, clauses separated by " | "."""
    return " | ".join(" ".join(c) for c in clauses(text))


def _collapse_doubles(word: str) -> str:
    return _DOUBLES.sub(r"\1", word)


@lru_cache(maxsize=20_000)
def _forms(word: str) -> tuple[str, ...]:
    """A word and the forms it may stand for: without a possessive or particle, without doubled letters."""
    forms = {word}
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            forms.add(word[: -len(suffix)])
    forms |= {_collapse_doubles(f) for f in forms}
    return tuple(forms)


# --- keyword compilation ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Term:
    category: str
    keyword: str
    size: int  # positions
    near: bool
    weight: float


def _parse(keyword: str) -> tuple[list[list[str]], bool]:
    """Positions (each a list of alternatives) and whether it is an `a & b` pair."""
    text = keyword.strip().lower()
    if "&" in text:
        sides = [s.strip() for s in text.split("&")]
        if len(sides) != 2 or any(not s or " " in s for s in sides):
            raise ValueError(f"keyword {keyword!r}: `a & b` takes one word (with |alternatives) on each side")
        positions = [s.split("|") for s in sides]
        near = True
    else:
        positions = [p.split("|") for p in text.split()]
        near = False
    if not positions or any(not alt for p in positions for alt in p):
        raise ValueError(f"keyword {keyword!r}: empty word")
    for p in positions:
        for alt in p:
            if not re.fullmatch(r"[a-z0-9_]+\*?", alt):
                raise ValueError(f"keyword {keyword!r}: bad word {alt!r}")
    if not near and all(len(p) == 1 and not p[0].endswith("*") for p in positions):
        # A plain phrase: normalise it exactly as a description, multi-word slang included.
        return [[w] for w in clauses(text)[0]], False
    result = []
    for p in positions:
        words = [(_word(a.rstrip("*")), a.endswith("*")) for a in p]
        if any(len(w) != 1 for w, _ in words):
            raise ValueError(f"keyword {keyword!r}: an alternative normalises to several words")
        result.append([w[0] + ("*" if star else "") for w, star in words])
    return result, near


class _Index:
    def __init__(self, categories: tuple[Category, ...]):
        self.terms: list[_Term] = []
        self.exact: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.prefix: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.order = {c.code: (PRIORITIES.index(c.priority), i) for i, c in enumerate(categories)}
        for c in categories:
            for keyword, weak in [(k, False) for k in c.keywords] + [(k, True) for k in c.weak_keywords]:
                positions, near = _parse(keyword)
                size = len(positions)
                weight = WEAK if weak else STRONG + PHRASE_STEP * (size - 1)
                term_id = len(self.terms)
                self.terms.append(_Term(c.code, keyword, size, near, weight))
                for pos, alternatives in enumerate(positions):
                    for alt in alternatives:
                        if alt.endswith("*"):
                            stem = alt[:-1]
                            if len(stem) < 3:
                                raise ValueError(f"keyword {keyword!r}: prefix {alt!r} too short")
                            self.prefix[stem].append((term_id, pos))
                        else:
                            for form in {alt, _collapse_doubles(alt)}:
                                self.exact[form].append((term_id, pos))
        self.longest_prefix = max((len(p) for p in self.prefix), default=0)

    @lru_cache(maxsize=20_000)
    def hits(self, word: str) -> frozenset[tuple[int, int]]:
        """(term, position) pairs this word can fill."""
        found: set[tuple[int, int]] = set()
        for form in _forms(word):
            found.update(self.exact.get(form, ()))
            for n in range(3, min(len(form), self.longest_prefix) + 1):
                found.update(self.prefix.get(form[:n], ()))
        return frozenset(found)


_INDEX = _Index(CATEGORIES)


@dataclass(frozen=True)
class _Match:
    term: _Term
    positions: tuple[int, ...]  # indices into the flat word list
    weight: float


def _negated(words: list[str], clause_of: list[int], i: int) -> bool:
    before = [j for j in (i - 1, i - 2) if j >= 0 and clause_of[j] == clause_of[i]]
    if before and words[before[0]] in NEGATIONS:
        return True
    return len(before) == 2 and words[before[0]] == "ada" and words[before[1]] in ("tidak", "bukan")


def _matches(words: list[str], clause_of: list[int]) -> list[_Match]:
    where: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, word in enumerate(words):
        for term_id, pos in _INDEX.hits(word):
            where[term_id][pos].append(i)
    found: list[_Match] = []
    for term_id, by_pos in where.items():
        term = _INDEX.terms[term_id]
        if len(by_pos) < term.size:
            continue
        best: _Match | None = None
        if term.size == 1:
            for i in by_pos[0]:
                if not _negated(words, clause_of, i):
                    best = _Match(term, (i,), term.weight)
                    break
        elif term.near:
            for a in by_pos[0]:
                for b in by_pos[1]:
                    if (a != b and clause_of[a] == clause_of[b] and abs(a - b) <= NEAR_WINDOW
                            and not NEGATIONS.intersection(words[min(a, b) + 1:max(a, b)])):
                        best = _Match(term, tuple(sorted((a, b))), term.weight * NEAR_FACTOR)
                        break
                if best:
                    break
        else:
            for start in by_pos[0]:
                if _negated(words, clause_of, start):
                    continue
                budget = MAX_GAP if term.size == 2 and words[start] not in _NEGATION_LED else MAX_GAP_LONG
                chain, gaps = [start], 0
                for pos in range(1, term.size):
                    nxt = next((j for j in by_pos[pos] if chain[-1] < j <= chain[-1] + 1 + budget - gaps
                                and clause_of[j] == clause_of[start]
                                and not NEGATIONS.intersection(words[chain[-1] + 1:j])), None)
                    if nxt is None:
                        break
                    gaps += nxt - chain[-1] - 1
                    chain.append(nxt)
                else:
                    weight = term.weight * (1.0 if gaps == 0 else GAP_FACTOR)
                    if best is None or weight > best.weight:
                        best = _Match(term, tuple(chain), weight)
                    if gaps == 0:
                        break
        if best:
            found.append(best)
    return found


def _strength(score: float) -> float:
    return 1.0 - math.exp(-score / SCALE)


def _confidence(score: float, rival: float) -> float:
    """Strength of the evidence, less a share for a rival: a tie keeps only 1 - RIVALRY of it."""
    if score <= 0:
        return 0.0
    return _strength(score) * (1.0 - RIVALRY * min(1.0, rival / score) ** 1.5)


def classify(description: str) -> Classification:
    """The most likely category of a description, how sure, and why."""
    parts = clauses(description or "")
    words = [w for c in parts for w in c]
    clause_of = [n for n, c in enumerate(parts) for _ in c]
    matches = _matches(words, clause_of)
    # The heaviest match claims its words; lighter matches that need any of them drop out.
    matches.sort(key=lambda m: (-m.weight, -len(m.positions), _INDEX.order[m.term.category], m.positions))
    taken: set[int] = set()
    scores: dict[str, float] = defaultdict(float)
    evidence: dict[str, list[_Match]] = defaultdict(list)
    for m in matches:
        if taken.isdisjoint(m.positions):
            taken.update(m.positions)
            scores[m.term.category] += m.weight
            evidence[m.term.category].append(m)
    if not scores:
        return Classification(UNCLASSIFIED, 0.0, (), True, ())
    # Best first; on a tie the more urgent category first, so the dispatcher sees the worst case.
    ranked = sorted(scores, key=lambda c: (-scores[c], _INDEX.order[c]))
    top = ranked[0]
    runner_up = scores[ranked[1]] if len(ranked) > 1 else 0.0
    confidence = round(_confidence(scores[top], runner_up), 3)
    alternatives = tuple((c, round(_confidence(scores[c], scores[top]), 3)) for c in ranked[1:1 + MAX_ALTERNATIVES])
    matched = tuple(" ".join(words[i] for i in m.positions) for m in sorted(evidence[top], key=lambda m: m.positions))
    return Classification(top, confidence, matched, confidence < LOW_CONFIDENCE, alternatives)


# --- priority ---------------------------------------------------------------------------------
URGENT_WORDS = frozenset({
    "meninggal", "tewas", "sekarat", "kritis", "pingsan", "berdarah", "terjepit", "terjebak", "tertimbun",
    "senjata", "sajam", "pisau", "celurit", "golok", "parang", "samurai", "pistol", "senpi", "sandera",
    "disandera", "bayi", "balita", "sedang", "berlangsung", "masih",
})


def suggest_priority(code: str | None, description: str) -> str:
    """The category's default priority, one step more urgent when the description says life is at risk.

    Cues: death or serious injury, weapons, a child, an event still going on. Never less urgent
    than the category's default; the dispatcher confirms.
    """
    default = BY_CODE[code or UNCLASSIFIED].priority
    words = {f for c in clauses(description or "") for w in c for f in _forms(w)}
    if words & URGENT_WORDS:
        return PRIORITIES[max(PRIORITIES.index(default) - 1, 0)]
    return default
