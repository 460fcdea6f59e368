"""TKP rules: the scene checklists, the custody chain, closure, the legal clock and the guard's
check-in. Pure: stdlib only; no Kafka, no faust, no HTTP, no SQL.

The tkp worker keeps one small JSON-able dict per incident, the *scene*, in a table:

    {"incident_id", "category", "status", "steps": {"tptkp": {}, "olah_tkp": {}}, "evidence": {},
     "seals": [], "closed": None, "reopened": 0, "lp": None}

and asks this module every question. Functions change the scene in place and say what happened;
what an officer reads (refusals, warnings) is Bahasa Indonesia. Datetimes come in aware and are
stored as ISO strings, because the scene is JSON.

Two principles run through it. The field is never refused for *order*: an officer who records
a step out of the usual order did it that way for a reason (the victim first, the team already
there), so the step is accepted and flagged for the supervisor. The field is refused only for
what would make the record wrong: an unknown step, a reused seal, a closed incident.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

TPTKP_STEPS = (
    "arrival_reported", "victims_aided", "scene_secured", "police_line", "perpetrator_secured",
    "evidence_preserved", "witnesses_recorded", "handed_over",
)
OLAH_TKP_STEPS = ("team_arrived", "observation", "photographed", "sketched", "evidence_collected", "scene_released")
TURJAWALI_KINDS = ("pengaturan", "penjagaan", "pengawalan", "patroli")

SCENE_WORK = {"incident.opened": "scene work may start", "unit.assigned": "unit assigned", "incident.closed": "scene work ended"}

# --- vocabulary ---------------------------------------------------------------------------------
# The scene moves only forward through these (None before any unit is there).
SCENE_STATUSES = ("on_scene", "tptkp", "scene_secured", "olah_tkp", "scene_released")
PHASES = {"tptkp": TPTKP_STEPS, "olah_tkp": OLAH_TKP_STEPS}  # each phase's steps in the usual order
PHASE_WORDS = {"tptkp": "TPTKP", "olah_tkp": "olah TKP"}

STEP_WORDS: dict[str, str] = {
    # TPTKP: the first officer's actions (DOMAIN.md)
    "arrival_reported": "laporan kedatangan dan situasi",
    "victims_aided": "pertolongan korban",
    "scene_secured": "pengamanan TKP (status quo)",
    "police_line": "pemasangan garis polisi",
    "perpetrator_secured": "pengamanan pelaku",
    "evidence_preserved": "pengamanan barang bukti di tempat",
    "witnesses_recorded": "pencatatan saksi",
    "handed_over": "serah terima ke tim olah TKP",
    # olah TKP: the team's scene processing
    "team_arrived": "kedatangan tim olah TKP",
    "observation": "pengamatan umum",
    "photographed": "pemotretan",
    "sketched": "pembuatan sketsa",
    "evidence_collected": "pengumpulan dan penyegelan barang bukti",
    "scene_released": "pelepasan TKP",
}

DISPOSITIONS = ("lp_made", "resolved_on_spot", "no_report_needed", "referred", "restorative_justice",
                "false_report", "cancelled", "duplicate")
DISPOSITION_WORDS: dict[str, str] = {
    "lp_made": "dibuat Laporan Polisi",
    "resolved_on_spot": "selesai di tempat",
    "no_report_needed": "tidak perlu laporan polisi",
    "referred": "dirujuk ke instansi lain",
    "restorative_justice": "keadilan restoratif",
    "false_report": "laporan palsu / iseng",
    "cancelled": "dibatalkan",
    "duplicate": "duplikat kejadian lain",
}
# What a disposition asks of the scene before closing. Whenever the case goes on (an LP, a
# settlement, another agency) the record of the scene must be whole; a call that needed no
# report needs only proof that someone went; a prank, a cancellation or a duplicate needs nothing
# (about four in five 110 calls: closing them must stay cheap).
CLOSURE_NEEDS: dict[str, str] = {
    "lp_made": "checklist", "resolved_on_spot": "checklist", "restorative_justice": "checklist",
    "referred": "checklist", "no_report_needed": "arrival", "false_report": "nothing", "cancelled": "nothing",
    "duplicate": "nothing",
}


# --- checklists ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Checklist:
    """What a category asks of the scene. Each tuple is in the usual order of its phase."""

    tptkp: tuple[str, ...]  # TPTKP steps required before closing (with a disposition that needs them)
    before_olah: tuple[str, ...] = ()  # TPTKP steps that must come before olah TKP starts
    olah_tkp: tuple[str, ...] = ()  # olah TKP steps required before closing; (): no scene processing


def _checklist(tptkp: str, before_olah: str = "", olah_tkp: str = "") -> Checklist:
    """A checklist from space-separated step names; a typo fails at import, not in the field."""
    def steps(names: str, phase: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [n for n in names.split() if n not in phase]
        if unknown:
            raise ValueError(f"unknown steps {unknown}")
        return tuple(s for s in phase if s in names.split())  # the usual order, whatever was written

    checklist = Checklist(steps(tptkp, TPTKP_STEPS), steps(before_olah, TPTKP_STEPS), steps(olah_tkp, OLAH_TKP_STEPS))
    if not set(checklist.before_olah) <= set(checklist.tptkp):
        raise ValueError("before_olah must be part of the TPTKP checklist")
    return checklist


# Every step but dealing with the perpetrator, who is not always there.
_SERIOUS = "arrival_reported victims_aided scene_secured police_line evidence_preserved witnesses_recorded handed_over"
_ALL_OLAH = " ".join(OLAH_TKP_STEPS)

# By category code (services.intake.categories). Olah TKP is asked for where the response plan
# sends a team that processes the scene (Reskrim olah TKP with Inafis, Inafis for burglary, Lantas
# for an accident); elsewhere the checklist is what the first officer does. A checklist is the
# floor: officers may record any step beyond it.
CHECKLISTS: dict[str, Checklist] = {
    # crimes against persons
    "homicide": _checklist(_SERIOUS, "police_line handed_over", _ALL_OLAH),
    "shooting": _checklist(_SERIOUS, "police_line handed_over", _ALL_OLAH),
    "assault": _checklist("arrival_reported victims_aided witnesses_recorded"),
    "sexual_offence": _checklist("arrival_reported victims_aided evidence_preserved witnesses_recorded"),
    "child_abuse": _checklist("arrival_reported victims_aided witnesses_recorded"),
    "domestic_violence": _checklist("arrival_reported victims_aided witnesses_recorded"),
    "kidnapping": _checklist("arrival_reported evidence_preserved witnesses_recorded"),
    "missing_person": _checklist("arrival_reported witnesses_recorded"),
    "officer_emergency": _checklist("arrival_reported victims_aided"),
    # property
    "street_robbery": _checklist("arrival_reported victims_aided witnesses_recorded"),
    "vehicle_theft": _checklist("arrival_reported witnesses_recorded"),
    "theft": _checklist("arrival_reported witnesses_recorded"),
    "pickpocketing": _checklist("arrival_reported witnesses_recorded"),
    "burglary": _checklist("arrival_reported scene_secured evidence_preserved witnesses_recorded handed_over",
                           "scene_secured handed_over", "team_arrived photographed evidence_collected scene_released"),
    "fraud": _checklist("arrival_reported"),
    "vandalism": _checklist("arrival_reported witnesses_recorded"),
    # traffic: Lantas processes the scene of an accident (olah TKP laka)
    "traffic_accident": _checklist("arrival_reported victims_aided scene_secured", "scene_secured",
                                   "team_arrived photographed sketched scene_released"),
    "traffic_jam": _checklist("arrival_reported"),
    # public order
    "drugs": _checklist("arrival_reported perpetrator_secured evidence_preserved witnesses_recorded"),
    "brawl": _checklist("arrival_reported victims_aided perpetrator_secured witnesses_recorded"),
    "public_order": _checklist("arrival_reported"),
    "demonstration": _checklist("arrival_reported"),
    "suspicious_activity": _checklist("arrival_reported"),
    # disasters: the fire brigade and BPBD lead; police help victims and keep the area
    "fire": _checklist("arrival_reported victims_aided scene_secured witnesses_recorded"),
    "flood": _checklist("arrival_reported victims_aided"),
    "other_disaster": _checklist("arrival_reported victims_aided"),
    # desk matters
    "lost_goods": _checklist("arrival_reported"),
    "assistance_request": _checklist("arrival_reported"),
    "non_emergency": _checklist("arrival_reported"),
}
DEFAULT = _checklist("arrival_reported")  # any other code, unclassified included


# --- results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepOutcome:
    accepted: bool
    reason: str | None = None  # Indonesian, when refused
    repeated: bool = False  # already recorded: accepted, nothing changes, nothing new to publish
    out_of_order: tuple[str, ...] = ()  # usual earlier steps not yet recorded: accepted and flagged
    status: str | None = None  # the scene status after this step when it changed
    warning: str | None = None  # Indonesian text for the flag


@dataclass(frozen=True)
class Refusal:
    reason: str  # Indonesian


# --- helpers ------------------------------------------------------------------------------------
def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: pass an aware one")
    return at


def _when(value: str | datetime) -> datetime:
    """An aware datetime from a stored ISO string or a datetime."""
    return _aware(value if isinstance(value, datetime) else datetime.fromisoformat(value))


def _iso(at: datetime) -> str:
    return _aware(at).isoformat()


def _words(steps: Iterable[str]) -> str:
    return ", ".join(STEP_WORDS.get(s, s) for s in steps)


def _closed_refusal(scene: dict) -> Refusal | None:
    closed = scene.get("closed")
    if not closed:
        return None
    disposition = DISPOSITION_WORDS.get(closed.get("disposition"), closed.get("disposition"))
    return Refusal(f"Kejadian {scene['incident_id']} sudah ditutup ({disposition}) oleh {closed.get('by')} "
                   f"pada {closed.get('at')}; buka kembali kejadian bila perlu")


def _recorded(scene: dict, phase: str) -> dict:
    return scene.setdefault("steps", {}).setdefault(phase, {})


def _rank(status: str | None) -> int:
    return SCENE_STATUSES.index(status) + 1 if status in SCENE_STATUSES else 0


def _seal_key(seal_number: str) -> str:
    return "".join(seal_number.split()).casefold()


# --- the scene ----------------------------------------------------------------------------------
def checklist_for(category: str | None) -> Checklist:
    return CHECKLISTS.get(category or "", DEFAULT)


def new_scene(incident_id: str, category: str) -> dict:
    return {"incident_id": incident_id, "category": category, "status": None,
            "steps": {"tptkp": {}, "olah_tkp": {}}, "evidence": {}, "seals": [], "closed": None, "reopened": 0,
            "lp": None}


def set_category(scene: dict, category: str) -> None:
    """Triage may change the category; checklists are looked up when asked, so they follow it."""
    scene["category"] = category


def unit_arrived(scene: dict) -> str | None:
    """The first unit on scene; later arrivals change nothing (the status never moves back)."""
    if scene.get("status") is None:
        scene["status"] = "on_scene"
        return "on_scene"
    return None


def _status_after(phase: str, step: str) -> str:
    if phase == "tptkp":
        return "scene_secured" if step in ("scene_secured", "police_line") else "tptkp"
    return "scene_released" if step == "scene_released" else "olah_tkp"


def _out_of_order(scene: dict, phase: str, step: str) -> tuple[str, ...]:
    """The steps that usually come before `step` and are not recorded yet.

    Only steps this category's checklist asks for count: a homicide without a perpetrator on scene
    or a pickpocketing without a police line is not out of order. Olah TKP also waits for the
    checklist's `before_olah` steps (the scene kept as found and handed over).
    """
    checklist = checklist_for(scene.get("category"))
    order = PHASES[phase]
    required = checklist.tptkp if phase == "tptkp" else checklist.olah_tkp
    done = _recorded(scene, phase)
    earlier = [s for s in required if order.index(s) < order.index(step) and s not in done]
    if phase == "olah_tkp":
        tptkp_done = _recorded(scene, "tptkp")
        earlier = [s for s in checklist.before_olah if s not in tptkp_done] + earlier
    return tuple(earlier)


def record_step(scene: dict, phase: str, step: str, *, at: datetime, by: str, note: str = "") -> StepOutcome:
    """Record a TPTKP or olah TKP step: refused only when unknown or when the incident is closed.

    A step already recorded is a repeat, accepted before the closure check: a command delivered
    twice must change nothing and publish nothing, not turn into a refusal after closing.
    """
    if phase not in PHASES:
        return StepOutcome(False, f"Tahap tidak dikenal: {phase}; yang dikenal: {', '.join(PHASES)}")
    if step not in PHASES[phase]:
        return StepOutcome(False, f"Langkah {PHASE_WORDS[phase]} tidak dikenal: {step}; "
                                  f"yang dikenal: {', '.join(PHASES[phase])}")
    if step in _recorded(scene, phase):
        return StepOutcome(True, repeated=True)
    refusal = _closed_refusal(scene)
    if refusal:
        return StepOutcome(False, refusal.reason)
    flagged = _out_of_order(scene, phase, step)
    _recorded(scene, phase)[step] = {"at": _iso(at), "by": by, "note": note, "out_of_order": list(flagged)}
    status = None
    target = _status_after(phase, step)
    if _rank(target) > _rank(scene.get("status")):
        scene["status"] = status = target
    warning = f"langkah di luar urutan biasa: belum ada {_words(flagged)}" if flagged else None
    return StepOutcome(True, out_of_order=flagged, status=status, warning=warning)


# --- evidence and its chain of custody ------------------------------------------------------------
def register_evidence(scene: dict, evidence_id: str, *, seal_number: str, description: str, kind: str,
                      collected_by: str, at: datetime) -> Refusal | None:
    """An item sealed at the scene. A seal number belongs to one item only: a reused seal would
    make two items indistinguishable from the scene to the lab."""
    seal = (seal_number or "").strip()
    known = scene["evidence"].get(evidence_id)
    if known is not None:
        if seal and _seal_key(known["seal_number"]) == _seal_key(seal):
            return None  # a repeat: nothing changes
        return Refusal(f"Barang bukti {evidence_id} sudah terdaftar dengan nomor segel {known['seal_number']}")
    refusal = _closed_refusal(scene)
    if refusal:
        return refusal
    if not seal:
        return Refusal("Nomor segel wajib diisi")
    if _seal_key(seal) in {_seal_key(s) for s in scene["seals"]}:
        other = next((eid for eid, item in scene["evidence"].items()
                      if _seal_key(item["seal_number"]) == _seal_key(seal)), "lain")
        return Refusal(f"Nomor segel {seal} sudah dipakai untuk barang bukti {other}")
    scene["evidence"][evidence_id] = {"seal_number": seal, "holder": collected_by, "transfers": 0, "corrected": [],
                                      "description": description, "kind": kind, "collected_by": collected_by,
                                      "collected_at": _iso(at)}
    scene["seals"].append(seal)
    return None


def transfer_custody(scene: dict, evidence_id: str, *, to: str, reason: str, by: str,
                     at: datetime) -> tuple[str | None, Refusal | None]:
    """One hand-over in the chain of custody; returns who held the item before.

    Allowed after closure: the evidence goes on to Tahti and Labfor when the scene is done.
    """
    _aware(at)
    item = scene["evidence"].get(evidence_id)
    if item is None:
        return None, Refusal(f"Barang bukti {evidence_id} tidak terdaftar pada kejadian ini")
    to, reason = (to or "").strip(), (reason or "").strip()
    if not to:
        return None, Refusal("Penerima barang bukti wajib diisi")
    if not reason:
        return None, Refusal("Alasan serah terima wajib diisi")
    if to == item["holder"]:
        return None, Refusal(f"Barang bukti {evidence_id} sudah dipegang oleh {to}")
    holder = item["holder"]
    item["holder"] = to
    item["transfers"] += 1
    return holder, None


# --- closure ------------------------------------------------------------------------------------
def missing_for_closure(scene: dict, disposition: str) -> list[str]:
    """The steps still missing before closing with `disposition`, as an officer reads them."""
    if disposition not in CLOSURE_NEEDS:
        raise ValueError(f"unknown disposition {disposition!r}")
    needs = CLOSURE_NEEDS[disposition]
    if needs == "nothing":
        return []
    if needs == "arrival":
        wanted = {"tptkp": ("arrival_reported",), "olah_tkp": ()}
    else:
        checklist = checklist_for(scene.get("category"))
        wanted = {"tptkp": checklist.tptkp, "olah_tkp": checklist.olah_tkp}
    return [f"{PHASE_WORDS[phase]}: {STEP_WORDS[step]}" for phase, steps in wanted.items() for step in steps
            if step not in _recorded(scene, phase)]


def close(scene: dict, *, disposition: str, at: datetime, by: str) -> Refusal | None:
    refusal = _closed_refusal(scene)
    if refusal:
        return refusal
    if disposition not in CLOSURE_NEEDS:
        return Refusal(f"Disposisi tidak dikenal: {disposition}; yang dikenal: {', '.join(DISPOSITIONS)}")
    missing = missing_for_closure(scene, disposition)
    if missing:
        return Refusal(f"Belum lengkap: {'; '.join(missing)}")
    scene["closed"] = {"disposition": disposition, "at": _iso(at), "by": by}
    return None


def reopen(scene: dict, *, at: datetime, by: str, reason: str) -> Refusal | None:
    """A closed incident opens again, with a reason; what was recorded stays recorded."""
    _aware(at)
    if not scene.get("closed"):
        return Refusal(f"Kejadian {scene['incident_id']} belum ditutup")
    if not (reason or "").strip():
        return Refusal("Alasan membuka kembali wajib diisi")
    scene["closed"] = None
    scene["reopened"] += 1
    return None


# --- the legal clock ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LegalRules:
    """Deadlines after a case goes to Reskrim; settings with defaults (DOMAIN.md, time targets)."""

    sp2hp_first_days: float = 3  # SP2HP A1, counted from the report
    sp2hp_every_days: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(
        {"mudah": 10, "sedang": 15, "sulit": 20, "sangat_sulit": 30}))  # periodic SP2HP, by the case's difficulty
    spdp_days: float = 7  # SPDP, counted from the investigation order
    periodic_letters: int = 3  # how many periodic SP2HP letters to schedule ahead


@dataclass(frozen=True)
class Deadline:
    key: str  # stable within the case: sp2hp-a1, spdp, sp2hp-2, sp2hp-3, ...
    kind: str  # sp2hp | spdp
    code: str  # A1, A2 (inquiry), A3 (investigation), SPDP
    due_at: datetime
    words: str  # Indonesian


def legal_deadlines(*, reported_at: datetime, investigation_ordered_at: datetime, difficulty: str,
                    rules: LegalRules = LegalRules()) -> list[Deadline]:
    """SP2HP A1, the SPDP and the next periodic SP2HP letters, in due order.

    A periodic letter due before the investigation order reports on the inquiry (A2); from the
    order on it reports on the investigation (A3).
    """
    if difficulty not in rules.sp2hp_every_days:
        raise ValueError(f"unknown difficulty {difficulty!r}; known: {', '.join(rules.sp2hp_every_days)}")
    reported_at, ordered_at = _aware(reported_at), _aware(investigation_ordered_at)
    a1 = reported_at + timedelta(days=rules.sp2hp_first_days)
    deadlines = [
        Deadline("sp2hp-a1", "sp2hp", "A1", a1, "SP2HP A1 kepada pelapor"),
        Deadline("spdp", "spdp", "SPDP", ordered_at + timedelta(days=rules.spdp_days),
                 "SPDP ke penuntut umum dan pelapor"),
    ]
    every = timedelta(days=rules.sp2hp_every_days[difficulty])
    for n in range(1, rules.periodic_letters + 1):
        due = a1 + n * every
        code, stage = ("A3", "penyidikan") if due >= ordered_at else ("A2", "penyelidikan")
        deadlines.append(Deadline(f"sp2hp-{n + 1}", "sp2hp", code, due,
                                  f"SP2HP {code} berkala ke-{n} kepada pelapor ({stage})"))
    return sorted(deadlines, key=lambda d: d.due_at)


def overdue(deadlines: Iterable[Mapping], now: datetime) -> list[str]:
    """Keys of the deadlines due and neither met nor escalated yet, in due order: escalate each once."""
    now = _aware(now)
    due = [(_when(d["due_at"]), d["key"]) for d in deadlines
           if not d.get("met_at") and not d.get("escalated") and _when(d["due_at"]) <= now]
    return [key for _, key in sorted(due, key=lambda pair: pair[0])]


# --- turjawali duties and the guard's check-in ------------------------------------------------------
def check_in_due(*, started_at: datetime, last_check_in_at: datetime | None, every_min: float) -> datetime:
    """When the unit on duty must next report in: every `every_min` from its last check-in or the start."""
    return _aware(last_check_in_at or started_at) + timedelta(minutes=every_min)


def missed_check_ins(duties: Iterable[Mapping], now: datetime) -> list[tuple[str, datetime]]:
    """(duty_id, due_at) for each running duty whose check-in is overdue, most overdue first.

    One alert per missed due time: the caller records `alerted_for` = the due time, and a new
    check-in moves the due time on. Completed or ended duties never alert.
    """
    now = _aware(now)
    missed = []
    for duty in duties:
        every = duty.get("check_in_every_min")
        if not every or duty.get("completed"):
            continue
        if duty.get("ends_at") and _when(duty["ends_at"]) <= now:
            continue
        last = duty.get("last_check_in_at")
        due = check_in_due(started_at=_when(duty["started_at"]), last_check_in_at=_when(last) if last else None,
                           every_min=every)
        alerted = duty.get("alerted_for")
        if due < now and not (alerted and _when(alerted) == due):
            missed.append((duty["duty_id"], due))
    return sorted(missed, key=lambda pair: pair[1])


def scene_note(event_type: str) -> str | None:
    """What an incident event means for the scene, or None when it means nothing here."""
    return SCENE_WORK.get(event_type)
