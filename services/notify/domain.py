"""Who hears what about each event. Pure: stdlib and schemas only; no Kafka, no faust, no HTTP, no SQL.

The notify worker keeps a *directory* of reporters, incidents and units from the event stream and
asks `plan` for every event it reads. `plan` answers with notifications: who, which template,
over which channels, with the context the template reads. It sends nothing and renders nothing
(services.notify.render does the words); the outbox delivers.

Principles:

- A notification's id is derived from the event, the recipient and the template, so an event
  processed twice (at-least-once delivery) plans the very same notifications and the outbox
  sends each once.
- The public hears about *its own* report only: the tracking code, the incident number, the
  milestone. Never a unit's callsign, an officer's name, or another reporter's details.
- A sensitive incident (sexual offence, child abuse, domestic violence) is still reported to its
  reporters, flagged `sensitive`: a phone is often shared or watched, so the renderer keeps SMS
  and WhatsApp to the tracking code and a neutral sentence.
- What the directory does not know never stops a milestone: the event says enough (the incident
  id stands in for its number). Nothing here raises for missing data.
- Words people read are Bahasa Indonesia, with English beside them for the English templates.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Literal, Protocol

from schemas.envelope import derived_id
from services.contacts import is_email, normalise_phone
from schemas.events import (
    AssignmentUnacknowledged, AssistanceDecided, AssistanceEscalated, DutyCheckInMissed, EventData,
    IncidentClosed, IncidentOpened, LegalDeadlineOverdue, LetterSent, ReportReceived, SttlpIssued,
    TargetBreached, UnitArrived, UnitAssigned,
)

# --- templates ----------------------------------------------------------------------------------
RECEIPT = "receipt"
ONCE_PER_INCIDENT = frozenset({"unit_on_the_way", "unit_on_scene"})
UNIT_ON_THE_WAY = "unit_on_the_way"
UNIT_ON_SCENE = "unit_on_scene"
INCIDENT_CLOSED = "incident_closed"
STTLP = "sttlp"
SP2HP = "sp2hp"
ASSISTANCE_DECISION = "assistance_decision"
UNIT_ASSIGNMENT = "unit_assignment"
SUPERVISOR_ALERT = "supervisor_alert"
WEBHOOK = "webhook"
TEMPLATES: tuple[str, ...] = (
    RECEIPT, UNIT_ON_THE_WAY, UNIT_ON_SCENE, INCIDENT_CLOSED, STTLP, SP2HP, ASSISTANCE_DECISION,
    UNIT_ASSIGNMENT, SUPERVISOR_ALERT, WEBHOOK,
)
REPORTER_TEMPLATES = (RECEIPT, UNIT_ON_THE_WAY, UNIT_ON_SCENE, INCIDENT_CLOSED, STTLP, SP2HP, ASSISTANCE_DECISION)

# --- channels, in order of preference per kind of recipient --------------------------------------
CHANNELS = ("email", "whatsapp", "sms", "webhook")
# The public reads email at leisure and keeps it; a phone message is the fallback.
REPORTER_CHANNELS = ("email", "whatsapp", "sms")
# A unit in the field reads its phone first.
UNIT_CHANNELS = ("whatsapp", "sms", "email")
# Supervisors get the record by email and the nudge by SMS (no WhatsApp: it is not an official channel).
SUPERVISOR_CHANNELS = ("email", "sms")
SUBSCRIBER_CHANNELS = ("webhook",)

# --- words ----------------------------------------------------------------------------------------
# Public wording of the categories (services.intake.categories names them for officers). The
# worker may pass the catalogue's own names as NotifyRules.category_words; English is ours.
CATEGORY_WORDS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "homicide": ("penemuan mayat / pembunuhan", "homicide / body found"),
    "assault": ("penganiayaan", "assault"),
    "sexual_offence": ("kekerasan seksual", "sexual offence"),
    "child_abuse": ("kekerasan terhadap anak", "child abuse"),
    "domestic_violence": ("kekerasan dalam rumah tangga", "domestic violence"),
    "kidnapping": ("penculikan", "kidnapping"),
    "missing_person": ("orang hilang", "missing person"),
    "shooting": ("penembakan", "shooting"),
    "street_robbery": ("pencurian dengan kekerasan", "robbery"),
    "vehicle_theft": ("pencurian kendaraan bermotor", "vehicle theft"),
    "theft": ("pencurian", "theft"),
    "burglary": ("pencurian dengan pemberatan", "burglary"),
    "pickpocketing": ("pencopetan", "pickpocketing"),
    "fraud": ("penipuan / penggelapan", "fraud"),
    "vandalism": ("perusakan", "vandalism"),
    "traffic_accident": ("kecelakaan lalu lintas", "traffic accident"),
    "traffic_jam": ("gangguan lalu lintas", "traffic disruption"),
    "drugs": ("narkoba", "drugs"),
    "brawl": ("tawuran", "brawl"),
    "public_order": ("gangguan ketertiban umum", "public disorder"),
    "demonstration": ("unjuk rasa", "demonstration"),
    "suspicious_activity": ("hal mencurigakan", "suspicious activity"),
    "fire": ("kebakaran", "fire"),
    "flood": ("banjir", "flood"),
    "other_disaster": ("bencana", "disaster"),
    "lost_goods": ("kehilangan barang / dokumen", "lost goods or documents"),
    "assistance_request": ("permintaan pendampingan", "request for assistance"),
    "non_emergency": ("pengaduan / informasi", "complaint / information"),
    "officer_emergency": ("anggota dalam bahaya", "officer in danger"),
})
# Sensitive categories of the catalogue, for the receipt: a report has no incident yet to ask.
SENSITIVE_CATEGORIES = frozenset({"sexual_offence", "child_abuse", "domestic_violence"})

# Dispositions as the reporter reads them: "Hasil: ..." (services.tkp.domain words them for officers).
DISPOSITION_WORDS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "lp_made": ("dibuatkan Laporan Polisi untuk ditindaklanjuti oleh penyidik",
                "a police report (LP) was made and passed to investigators"),
    "resolved_on_spot": ("masalah telah diselesaikan di tempat", "the matter was resolved on the spot"),
    "no_report_needed": ("telah ditangani tanpa perlu dibuat Laporan Polisi",
                         "handled; no police report was needed"),
    "referred": ("dirujuk ke instansi yang berwenang", "referred to the competent agency"),
    "restorative_justice": ("diselesaikan melalui keadilan restoratif", "settled through restorative justice"),
    "false_report": ("tidak ditemukan kejadian sebagaimana dilaporkan", "no incident was found as reported"),
    "cancelled": ("laporan dibatalkan", "the report was cancelled"),
    "duplicate": ("digabungkan dengan laporan lain atas kejadian yang sama",
                  "merged with another report of the same event"),
})

# What an SP2HP letter means to the reporter (DOMAIN.md: A1 review, A2 inquiry, A3/A4
# investigation, A5 stopped). Any other A code is still a progress letter.
SP2HP_MEANING: Mapping[str, tuple[str, str]] = MappingProxyType({
    "A1": ("laporan Anda telah diterima dan sedang diteliti oleh penyidik",
           "your report has been received and is being reviewed by investigators"),
    "A2": ("perkara Anda sedang dalam tahap penyelidikan",
           "your case is at the inquiry stage (penyelidikan)"),
    "A3": ("perkara Anda telah masuk tahap penyidikan",
           "your case has entered the investigation stage (penyidikan)"),
    "A4": ("penyidikan perkara Anda masih berlangsung",
           "the investigation (penyidikan) of your case is continuing"),
    "A5": ("penyelidikan/penyidikan perkara Anda dihentikan; alasannya dijelaskan dalam surat",
           "the inquiry/investigation of your case has been stopped; the letter explains why"),
})
SP2HP_OTHER = ("ada perkembangan penanganan perkara Anda", "there is progress in the handling of your case")

DECISION_WORDS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "accept": ("diterima", "accepted"),
    "decline": ("tidak dapat dipenuhi", "declined"),
    "refer": ("dirujuk", "referred"),
})

# Time targets of an incident (services.intake.domain) as a supervisor reads them.
TARGET_WORDS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "dispatch": ("pengerahan unit", "unit dispatch"),
    "on_scene": ("unit tiba di TKP", "unit on scene"),
    "assistance_decision": ("keputusan permintaan pendampingan", "decision on the assistance request"),
})

# Every supervisor alert is P1 for the supervisor: each one means somebody is waiting on them.
SUPERVISOR_EVENTS = (
    "incident.target-breached", "assistance.escalated", "assignment.unacknowledged",
    "duty.check-in-missed", "legal.deadline-overdue", "incident.opened",
)


# --- what notify knows ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipient:
    kind: Literal["reporter", "unit", "supervisor", "subscriber"]
    key: str  # report_id for a reporter, unit_id, the supervisor's contact, the subscriber's name
    email: str | None = None
    phone: str | None = None  # E.164, e.g. +6281234567890
    url: str | None = None  # a webhook subscriber
    secret: str | None = None  # a webhook subscriber's HMAC secret
    language: str = "id"  # "id" | "en"


@dataclass(frozen=True)
class Notification:
    notification_id: str  # derived_id("notification", event_id, recipient.kind, recipient.key, template)
    template: str
    recipient: Recipient
    channels: tuple[str, ...]  # in order of preference, from what the recipient has
    event_id: str
    event_type: str
    incident_id: str | None
    context: dict = field(hash=False)  # JSON-able values the template reads; datetimes as ISO strings
    sensitive: bool = False  # SMS/WhatsApp carry only the tracking code and a neutral text

    def to_json(self) -> dict:
        return {
            "notification_id": self.notification_id,
            "template": self.template,
            "recipient": asdict(self.recipient),
            "channels": list(self.channels),
            "event_id": self.event_id,
            "event_type": self.event_type,
            "incident_id": self.incident_id,
            "context": copy.deepcopy(self.context),
            "sensitive": self.sensitive,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Notification":
        # Readers ignore what they do not know: a newer writer may add recipient fields.
        known = {f.name for f in fields(Recipient)}
        recipient = Recipient(**{k: v for k, v in data["recipient"].items() if k in known})
        return cls(
            notification_id=data["notification_id"],
            template=data["template"],
            recipient=recipient,
            channels=tuple(data["channels"]),
            event_id=data["event_id"],
            event_type=data["event_type"],
            incident_id=data.get("incident_id"),
            context=copy.deepcopy(data.get("context") or {}),
            sensitive=bool(data.get("sensitive", False)),
        )


@dataclass(frozen=True)
class ReporterContact:
    report_id: str
    tracking_code: str
    name: str | None
    phone: str | None
    email: str | None
    language: str = "id"


@dataclass(frozen=True)
class IncidentFacts:
    incident_id: str
    number: str
    category: str
    summary: str
    sensitive: bool
    lat: float | None
    lon: float | None
    address: str | None
    lp_number: str | None = None


@dataclass(frozen=True)
class UnitContact:
    unit_id: str
    callsign: str
    phone: str | None
    email: str | None
    on_duty: bool  # off_duty / out_of_service units are not alerted
    signed_in: bool = True  # a crew signed out of the field app is not alerted there


class Directory(Protocol):
    """What notify knows of people and incidents (the worker keeps it from Kafka)."""

    def reporter(self, report_id: str) -> ReporterContact | None: ...

    def reporters_of(self, incident_id: str) -> list[ReporterContact]:
        """Every reporter of the incident, merged incidents' included."""
        ...

    def incident(self, incident_id: str) -> IncidentFacts | None: ...

    def unit(self, unit_id: str) -> UnitContact | None: ...


@dataclass(frozen=True)
class Subscriber:
    """Another system's webhook and the event types it wants ("*" = all)."""

    name: str
    url: str
    secret: str
    types: tuple[str, ...]

    def wants(self, event_type: str) -> bool:
        return "*" in self.types or event_type in self.types


@dataclass(frozen=True)
class NotifyRules:
    supervisors: tuple[Recipient, ...] = ()
    subscribers: tuple[Subscriber, ...] = ()
    maps_url: str = "https://www.google.com/maps/dir/?api=1&destination={lat},{lon}"  # the unit's navigation link
    # Indonesian category names by code, e.g. the catalogue's; CATEGORY_WORDS otherwise.
    category_words: Mapping[str, str] = field(default_factory=dict, hash=False)
    # Categories whose receipt is kept neutral (a report has no incident to ask yet).
    sensitive_categories: frozenset[str] = SENSITIVE_CATEGORIES


# --- helpers ------------------------------------------------------------------------------------
def e164(phone: str | None) -> str | None:
    """+62... from how Indonesians write numbers (0812..., 62812..., +62 812-...); None when unusable.

    A gateway refuses a number without its country code, and reports from the street come in
    every form; a number we cannot read is no channel rather than a failed send.
    """
    try:
        return normalise_phone(phone) if phone else None
    except ValueError:
        return None


def usable_email(email: str | None) -> str | None:
    email = (email or "").strip()
    return email if is_email(email) else None


def channels_for(order: Iterable[str], recipient: Recipient) -> tuple[str, ...]:
    have = {"email": bool(recipient.email), "whatsapp": bool(recipient.phone), "sms": bool(recipient.phone),
            "webhook": bool(recipient.url)}
    return tuple(c for c in order if have.get(c))


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _category_words(code: str | None, rules: NotifyRules) -> tuple[str | None, str | None]:
    if not code:
        return None, None
    id_words, en_words = CATEGORY_WORDS.get(code, (None, None))
    fallback = code.replace("_", " ")
    return rules.category_words.get(code) or id_words or fallback, en_words or fallback


def _notification(template: str, recipient: Recipient, order: Iterable[str], event_id: str, event_type: str,
                  incident_id: str | None, context: dict, sensitive: bool = False) -> Notification | None:
    """None when the recipient has no usable channel: there is nobody to tell."""
    channels = channels_for(order, recipient)
    if not channels:
        return None
    # One id per event, recipient and template: a re-processed event never notifies twice. The
    # public's milestones are once per incident: four units sent is one "a unit is on its way".
    once = incident_id if template in ONCE_PER_INCIDENT and incident_id else event_id
    return Notification(
        notification_id=derived_id("notification", once, recipient.kind, recipient.key, template),
        template=template, recipient=recipient, channels=channels, event_id=event_id, event_type=event_type,
        incident_id=incident_id, context=context, sensitive=sensitive,
    )


def _incident_context(incident_id: str, facts: IncidentFacts | None, rules: NotifyRules) -> dict:
    """What every message about an incident may say of it; the incident id stands in for its number."""
    category = facts.category if facts else None
    words, words_en = _category_words(category, rules)
    return {
        "incident_id": incident_id,
        "number": facts.number if facts and facts.number else incident_id,
        "category": category,
        "category_words": words,
        "category_words_en": words_en,
        "address": facts.address if facts else None,
        "lp_number": facts.lp_number if facts else None,
    }


def _nav_url(lat: float | None, lon: float | None, rules: NotifyRules) -> str | None:
    if lat is None or lon is None:
        return None
    return rules.maps_url.format(lat=f"{lat:.6f}", lon=f"{lon:.6f}")


# --- reporters ------------------------------------------------------------------------------------
def _reporter_recipient(contact: ReporterContact) -> Recipient:
    return Recipient("reporter", contact.report_id, email=usable_email(contact.email), phone=e164(contact.phone),
                     language=contact.language or "id")


def _reporters(directory: Directory, incident_id: str, only: Iterable[str] = ()) -> list[ReporterContact]:
    """The incident's reporters (or those of `only`), once each, in a stable order: a re-run
    plans the same list."""
    found: dict[str, ReporterContact] = {}
    if only:
        for report_id in only:
            if contact := directory.reporter(report_id):
                found.setdefault(report_id, contact)
    else:
        for contact in directory.reporters_of(incident_id) or ():
            found.setdefault(contact.report_id, contact)
    return [found[k] for k in sorted(found)]


def _to_reporters(template: str, event_type: str, event_id: str, incident_id: str, directory: Directory,
                  rules: NotifyRules, extra: dict, *, only: Iterable[str] = ()) -> list[Notification]:
    """A milestone for every reporter of the incident (or only those of `only` when given).

    An incident the directory does not know is treated as sensitive: we cannot tell, and a
    neutral message costs the reporter little while a revealing one can cost a victim much.
    """
    facts = directory.incident(incident_id)
    sensitive = facts.sensitive if facts else True
    base = _incident_context(incident_id, facts, rules)
    out = []
    for contact in _reporters(directory, incident_id, tuple(only)):
        context = {**base, "report_id": contact.report_id, "tracking_code": contact.tracking_code,
                   "name": contact.name, **extra}
        note = _notification(template, _reporter_recipient(contact), REPORTER_CHANNELS, event_id, event_type,
                             incident_id, context, sensitive)
        if note:
            out.append(note)
    return out


def _receipt(event: ReportReceived, event_id: str, directory: Directory, rules: NotifyRules) -> list[Notification]:
    """The receipt with the tracking code, to whoever the report gives us a way to reach.

    A panic-button report gets none: the reporter is an officer in danger, and a phone that
    buzzes can give them away.
    """
    if event.panic_unit_id:
        return []
    known = directory.reporter(event.report_id)
    recipient = Recipient(
        "reporter", event.report_id,
        email=usable_email(event.reporter.email) or (usable_email(known.email) if known else None),
        phone=e164(event.reporter.phone) or (e164(known.phone) if known else None),
        language=event.reporter.language or (known.language if known else None) or "id",
    )
    words, words_en = _category_words(event.category, rules)
    context = {
        "report_id": event.report_id,
        "tracking_code": event.tracking_code,
        "name": event.reporter.name or (known.name if known else None),
        "received_at": _iso(event.received_at),
        "category": event.category,
        "category_words": words,
        "category_words_en": words_en,
        "address": event.location.address,
    }
    note = _notification(RECEIPT, recipient, REPORTER_CHANNELS, event_id, event.event_type, None, context,
                         sensitive=(event.category or "") in rules.sensitive_categories)
    return [note] if note else []


# --- units ----------------------------------------------------------------------------------------
def _assignment(event: UnitAssigned, event_id: str, directory: Directory, rules: NotifyRules) -> list[Notification]:
    """The assigned unit hears where to go, if it is on duty and reachable; a unit off duty, out
    of service or signed out of the field app must not be called out by a message it may never
    read (the dispatcher reaches it by radio)."""
    unit = directory.unit(event.unit_id)
    if unit is None or not unit.on_duty or not unit.signed_in:
        return []
    facts = directory.incident(event.incident_id)
    recipient = Recipient("unit", unit.unit_id, email=usable_email(unit.email), phone=e164(unit.phone))
    context = {
        **_incident_context(event.incident_id, facts, rules),
        "unit_id": unit.unit_id,
        "callsign": event.callsign or unit.callsign,
        "summary": facts.summary if facts else None,
        "lat": facts.lat if facts else None,
        "lon": facts.lon if facts else None,
        "nav_url": _nav_url(facts.lat, facts.lon, rules) if facts else None,
        "assignment_id": event.assignment_id,
        "assigned_at": _iso(event.assigned_at),
        "warning": event.warning,
    }
    note = _notification(UNIT_ASSIGNMENT, recipient, UNIT_CHANNELS, event_id, event.event_type, event.incident_id,
                         context)
    return [note] if note else []


def _callsign(directory: Directory, unit_id: str) -> str:
    unit = directory.unit(unit_id)
    return unit.callsign if unit else unit_id


# --- supervisors ----------------------------------------------------------------------------------
def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _supervisor_lines(event: EventData, directory: Directory, number: str | None) -> tuple[str, str] | None:
    """What happened, in one line each in Indonesian and English; None when it is not for them."""
    of = f" kejadian {number}" if number else ""
    of_en = f" of incident {number}" if number else ""
    if isinstance(event, TargetBreached):
        words, words_en = TARGET_WORDS.get(event.target, (event.target, event.target))
        return (f"Target waktu '{words}'{of} terlewati.", f"Time target '{words_en}'{of_en} was missed.")
    if isinstance(event, AssistanceEscalated):
        if event.why == "declined":
            return (f"Permintaan pendampingan{of} DITOLAK petugas: {_clip(event.detail)}",
                    f"Assistance request{of_en} was DECLINED: {_clip(event.detail)}")
        return (f"Permintaan pendampingan{of} belum diputuskan dalam batas waktu: {_clip(event.detail)}",
                f"Assistance request{of_en} was not decided in time: {_clip(event.detail)}")
    if isinstance(event, AssignmentUnacknowledged):
        callsign = _callsign(directory, event.unit_id)
        minutes = max(1, round(event.waited_s / 60))
        return (f"Unit {callsign} belum mengonfirmasi penugasan{of} setelah {minutes} menit.",
                f"Unit {callsign} has not acknowledged its assignment{of_en} after {minutes} min.")
    if isinstance(event, DutyCheckInMissed):
        units = ", ".join(_callsign(directory, u) for u in event.unit_ids) or "-"
        return (f"Unit {units} tidak melapor (check-in) pada tugas {event.duty_id}{of}.",
                f"Unit {units} missed the check-in of duty {event.duty_id}{of_en}.")
    if isinstance(event, LegalDeadlineOverdue):
        return (f"Surat {event.code} ({_clip(event.words, 80)}){of} melewati tenggat.",
                f"Letter {event.code} ({_clip(event.words, 80)}){of_en} is overdue.")
    if isinstance(event, IncidentOpened) and event.panic_unit_id:
        callsign = _callsign(directory, event.panic_unit_id)
        return (f"TOMBOL PANIK: unit {callsign} meminta bantuan segera,{of}.",
                f"PANIC BUTTON: unit {callsign} needs help now,{of_en}.")
    return None


def _event_time(event: EventData) -> datetime | None:
    for name in ("breached_at", "escalated_at", "alerted_at", "noticed_at", "opened_at"):
        if isinstance(at := getattr(event, name, None), datetime):
            return at
    return None


def _to_supervisors(event_type: str, event: EventData, event_id: str, directory: Directory,
                    rules: NotifyRules) -> list[Notification]:
    if event_type not in SUPERVISOR_EVENTS or not rules.supervisors:
        return []
    incident_id = getattr(event, "incident_id", None)
    facts = directory.incident(incident_id) if incident_id else None
    if isinstance(event, IncidentOpened):  # the directory may not have it yet: the event says it all
        facts = IncidentFacts(event.incident_id, event.number, event.category, event.summary, event.sensitive,
                              event.location.lat, event.location.lon, event.location.address)
    context = _incident_context(incident_id, facts, rules) if incident_id else {
        "incident_id": None, "number": None, "category": None, "category_words": None, "category_words_en": None,
        "address": None, "lp_number": None}
    lines = _supervisor_lines(event, directory, context["number"])
    if lines is None:
        return []
    context.update({
        "event_type": event_type,
        "priority": "P1",
        "line": lines[0],
        "line_en": lines[1],
        "at": _iso(_event_time(event)),
        "nav_url": _nav_url(facts.lat, facts.lon, rules) if facts else None,
    })
    out = []
    for supervisor in rules.supervisors:
        recipient = Recipient("supervisor", supervisor.key, email=usable_email(supervisor.email),
                              phone=e164(supervisor.phone), language=supervisor.language or "id")
        note = _notification(SUPERVISOR_ALERT, recipient, SUPERVISOR_CHANNELS, event_id, event_type, incident_id,
                             dict(context))
        if note:
            out.append(note)
    return out


# --- subscribers ----------------------------------------------------------------------------------
def _to_subscribers(event_type: str, event: EventData, event_id: str, rules: NotifyRules) -> list[Notification]:
    incident_id = getattr(event, "incident_id", None)
    out = []
    for sub in rules.subscribers:
        if not sub.wants(event_type):
            continue
        recipient = Recipient("subscriber", sub.name, url=sub.url, secret=sub.secret)
        context = {"type": event_type, "event_id": event_id, "incident_id": incident_id,
                   "data": event.model_dump(mode="json")}
        note = _notification(WEBHOOK, recipient, SUBSCRIBER_CHANNELS, event_id, event_type, incident_id, context)
        if note:
            out.append(note)
    return out


# --- the plan -----------------------------------------------------------------------------------
def _for_reporters(event_type: str, event: EventData, event_id: str, directory: Directory,
                   rules: NotifyRules) -> list[Notification]:
    if isinstance(event, ReportReceived):
        return _receipt(event, event_id, directory, rules)
    if isinstance(event, UnitAssigned):
        return (_to_reporters(UNIT_ON_THE_WAY, event_type, event_id, event.incident_id, directory, rules,
                              {"assigned_at": _iso(event.assigned_at)})
                + _assignment(event, event_id, directory, rules))
    if isinstance(event, UnitArrived):
        return _to_reporters(UNIT_ON_SCENE, event_type, event_id, event.incident_id, directory, rules,
                             {"arrived_at": _iso(event.arrived_at)})
    if isinstance(event, IncidentClosed):
        words, words_en = DISPOSITION_WORDS.get(event.disposition, (event.disposition, event.disposition))
        facts = directory.incident(event.incident_id)
        return _to_reporters(INCIDENT_CLOSED, event_type, event_id, event.incident_id, directory, rules, {
            "disposition": event.disposition, "disposition_words": words, "disposition_words_en": words_en,
            "closed_at": _iso(event.closed_at),
            "lp_number": event.lp_number or (facts.lp_number if facts else None)})
    if isinstance(event, SttlpIssued):
        # The STTLP is the receipt of one LP: it goes to that LP's reporters when the event names them.
        return _to_reporters(STTLP, event_type, event_id, event.incident_id, directory, rules,
                             {"lp_number": event.lp_number, "issued_at": _iso(event.issued_at)},
                             only=event.report_ids)
    if isinstance(event, LetterSent) and event.code.upper().startswith("A"):
        code = event.code.upper()
        meaning, meaning_en = SP2HP_MEANING.get(code, SP2HP_OTHER)
        return _to_reporters(SP2HP, event_type, event_id, event.incident_id, directory, rules, {
            "code": code, "reference": event.reference, "meaning": meaning, "meaning_en": meaning_en,
            "sent_at": _iso(event.sent_at)})
    if isinstance(event, AssistanceDecided):
        words, words_en = DECISION_WORDS[event.decision]
        return _to_reporters(ASSISTANCE_DECISION, event_type, event_id, event.incident_id, directory, rules, {
            "decision": event.decision, "decision_words": words, "decision_words_en": words_en,
            "reason": event.reason, "decided_at": _iso(event.decided_at)})
    return []


def held_by_rate_limit(n: Notification) -> bool:
    """Whether the per-recipient hourly limit applies: it spares a person a flood of messages.
    A subscriber is a system that asked for every event of its types (a Polda command center must
    see every incident of a surge, not 30 an hour), and a panic alarm cannot wait for the next hour
    (a supervisor hears of an incident's opening only from the panic button)."""
    if n.recipient.kind == "subscriber":
        return False
    return not (n.recipient.kind == "supervisor" and n.event_type == "incident.opened")


def plan(event_type: str, event: EventData, event_id: str, directory: Directory,
         rules: NotifyRules) -> list[Notification]:
    """Every notification this event calls for: reporters, the unit, supervisors, subscribers.

    The same event gives the same list (same ids, same order), so a re-run is harmless.
    """
    planned = (_for_reporters(event_type, event, event_id, directory, rules)
               + _to_supervisors(event_type, event, event_id, directory, rules)
               + _to_subscribers(event_type, event, event_id, rules))
    seen: set[str] = set()
    out = []
    for note in planned:  # one recipient, one template, one event: once
        if note.notification_id not in seen:
            seen.add(note.notification_id)
            out.append(note)
    return out
