"""Who hears what (services.notify.domain): reporters, units, supervisors and subscribers, from a
small in-memory directory. Pure functions: no broker, no mocks."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from services.notify.directory import MemoryDirectory

from schemas.envelope import derived_id
from schemas.events import (
    AssignmentUnacknowledged, AssistanceDecided, AssistanceEscalated, DutyCheckInMissed, IncidentClosed,
    IncidentOpened, LegalDeadlineOverdue, LetterSent, Location, ReportReceived, Reporter, SttlpIssued,
    TargetBreached, UnitArrived, UnitAssigned,
)
from services.notify import domain as notify
from services.notify.domain import (
    IncidentFacts, Notification, NotifyRules, Recipient, ReporterContact, Subscriber, UnitContact,
)

WIB = timezone(timedelta(hours=7))
T0 = datetime(2026, 11, 12, 21, 5, tzinfo=WIB)
LP = "LP/B/123/XI/2026/SPKT/POLRES METRO JAKARTA SELATAN"
INC = "inc-1"  # street robbery, two reporters of its own and one of an incident merged into it
SENSITIVE = "inc-kdrt"  # domestic violence
UNKNOWN = "inc-unknown"  # not (yet) in the directory


class FakeDirectory:
    """What the worker keeps from Kafka, as plain dicts."""

    def __init__(self) -> None:
        self.reporters = {
            "r-1": ReporterContact("r-1", "TRK-AAA111", "Siti Rahmawati", "081234567890", "siti@example.co.id"),
            "r-2": ReporterContact("r-2", "TRK-BBB222", "Budi Santoso", "+6281300000002", None, language="en"),
            "r-3": ReporterContact("r-3", "TRK-CCC333", None, None, "warga3@example.com"),  # of the merged incident
            "r-4": ReporterContact("r-4", "TRK-DDD444", "Tanpa Kontak", None, None),  # nobody to tell
            "r-9": ReporterContact("r-9", "TRK-KDRT99", "Dewi Lestari", "+6281299999999", "dewi@example.com"),
            "r-u": ReporterContact("r-u", "TRK-UNK000", "Agus", "+6281377777777", None),
        }
        self.of_incident = {INC: ["r-1", "r-2", "r-3", "r-4"], SENSITIVE: ["r-9"], UNKNOWN: ["r-u"]}
        self.incidents = {
            INC: IncidentFacts(INC, "JS/2026/004512", "street_robbery", "Korban dijambret dua orang bermotor",
                               False, -6.2441, 106.8001, "Jl. Melawai Raya No. 12, Kebayoran Baru"),
            SENSITIVE: IncidentFacts(SENSITIVE, "JS/2026/004600", "domestic_violence", "Istri dipukul suami",
                                     True, -6.25, 106.81, "Jl. Gandaria I No. 3"),
        }
        self.units = {
            "u-1": UnitContact("u-1", "SABHARA 07", "0811-1111-1111", "sabhara07@polri.example", True),
            "u-off": UnitContact("u-off", "SABHARA 09", "+6281100000009", None, False),
            "u-mute": UnitContact("u-mute", "SABHARA 10", None, None, True),
            "u-away": UnitContact("u-away", "SABHARA 11", "+6281100000011", None, True, signed_in=False),
        }

    def reporter(self, report_id):
        return self.reporters.get(report_id)

    def reporters_of(self, incident_id):
        return [self.reporters[r] for r in self.of_incident.get(incident_id, [])]

    def incident(self, incident_id):
        return self.incidents.get(incident_id)

    def unit(self, unit_id):
        return self.units.get(unit_id)


KA_SPKT = Recipient("supervisor", "ka.spkt@polres.example", email="ka.spkt@polres.example", phone="+6281211110000")
KAPOLSEK = Recipient("supervisor", "+6281222220000", phone="081222220000")
RULES = NotifyRules(supervisors=(KA_SPKT, KAPOLSEK))


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


def received(**changes) -> ReportReceived:
    fields = dict(report_id="r-1", tracking_code="TRK-AAA111", channel="phone_110",
                  reporter=Reporter(name="Siti Rahmawati", phone="081234567890"),
                  description="Tas saya dijambret dua orang bermotor", category="street_robbery",
                  location=Location(lat=-6.2441, lon=106.8001, address="Jl. Melawai Raya No. 12"), received_at=T0)
    fields.update(changes)
    return ReportReceived(**fields)


def assigned(incident_id: str = INC, unit_id: str = "u-1") -> UnitAssigned:
    return UnitAssigned(assignment_id="a-1", incident_id=incident_id, unit_id=unit_id, assigned_by="piket",
                        assigned_at=T0, callsign=None)


def opened(panic_unit_id: str | None = None) -> IncidentOpened:
    return IncidentOpened(incident_id="inc-panic", number="JS/2026/004700", report_ids=["r-p"],
                          category="officer_emergency", priority="P1", summary="Anggota menekan tombol panik",
                          location=Location(lat=-6.2, lon=106.8, address="Jl. Sudirman Kav. 52"), opened_at=T0,
                          panic_unit_id=panic_unit_id)


def by_template(notes: list[Notification], template: str) -> list[Notification]:
    return [n for n in notes if n.template == template]


def keys(notes: list[Notification]) -> list[tuple[str, str, str]]:
    return [(n.recipient.kind, n.recipient.key, n.template) for n in notes]


# --- report.received: the receipt ------------------------------------------------------------------
def test_a_report_gives_its_reporter_a_receipt_with_the_tracking_code(directory):
    notes = notify.plan("report.received", received(), "e-1", directory, RULES)
    assert keys(notes) == [("reporter", "r-1", "receipt")]
    note = notes[0]
    # the directory adds the email it knows; the phone is the report's own, in E.164
    assert note.recipient.phone == "+6281234567890" and note.recipient.email == "siti@example.co.id"
    assert note.channels == ("email", "whatsapp", "sms")
    assert note.context["tracking_code"] == "TRK-AAA111" and note.context["name"] == "Siti Rahmawati"
    assert note.incident_id is None and note.event_type == "report.received" and not note.sensitive


def test_a_receipt_reaches_a_reporter_the_directory_does_not_know_by_phone_only(directory):
    notes = notify.plan("report.received", received(report_id="r-new"), "e-1", directory, RULES)
    assert [n.channels for n in notes] == [("whatsapp", "sms")]


def test_no_phone_and_no_email_means_no_receipt(directory):
    nobody = received(report_id="r-new", reporter=Reporter(name="Anonim"))
    assert notify.plan("report.received", nobody, "e-1", directory, RULES) == []
    unreadable = received(report_id="r-new", reporter=Reporter(phone="123"))
    assert notify.plan("report.received", unreadable, "e-1", directory, RULES) == []


def test_a_panic_report_sends_no_receipt_to_the_officer_in_danger(directory):
    assert notify.plan("report.received", received(panic_unit_id="u-1"), "e-1", directory, RULES) == []


def test_a_receipt_for_a_sensitive_category_is_flagged(directory):
    note, = notify.plan("report.received", received(category="sexual_offence"), "e-1", directory, RULES)
    assert note.sensitive


# --- milestones for the reporters ------------------------------------------------------------------
def test_an_assignment_tells_every_reporter_merged_included_and_alerts_the_unit(directory):
    notes = notify.plan("unit.assigned", assigned(), "e-2", directory, RULES)
    assert keys(notes) == [("reporter", "r-1", "unit_on_the_way"), ("reporter", "r-2", "unit_on_the_way"),
                           ("reporter", "r-3", "unit_on_the_way"), ("unit", "u-1", "unit_assignment")]
    r1, r2, r3, unit = notes
    assert r1.channels == ("email", "whatsapp", "sms")
    assert r2.channels == ("whatsapp", "sms") and r2.recipient.language == "en"
    assert r3.channels == ("email",)
    # the public never hears which unit
    for note in (r1, r2, r3):
        assert "SABHARA" not in json.dumps(note.context) and "u-1" not in json.dumps(note.context)
        assert note.context["number"] == "JS/2026/004512" and note.context["category_words"]
    # a reporter's message carries their own details and nobody else's
    assert r1.context["tracking_code"] == "TRK-AAA111" and "Budi" not in json.dumps(r1.context)
    assert r2.context["name"] == "Budi Santoso" and "TRK-AAA111" not in json.dumps(r2.context)


def test_the_unit_reads_its_phone_first_and_gets_what_it_needs_with_a_navigation_link(directory):
    unit, = by_template(notify.plan("unit.assigned", assigned(), "e-2", directory, RULES), "unit_assignment")
    assert unit.channels == ("whatsapp", "sms", "email") and unit.recipient.phone == "+6281111111111"
    ctx = unit.context
    assert ctx["number"] == "JS/2026/004512" and ctx["category"] == "street_robbery"
    assert ctx["summary"] == "Korban dijambret dua orang bermotor" and ctx["address"].startswith("Jl. Melawai")
    assert ctx["callsign"] == "SABHARA 07"
    assert ctx["nav_url"] == "https://www.google.com/maps/dir/?api=1&destination=-6.244100,106.800100"
    osm = NotifyRules(maps_url="https://www.openstreetmap.org/directions?to={lat},{lon}")
    unit, = by_template(notify.plan("unit.assigned", assigned(), "e-2", directory, osm), "unit_assignment")
    assert unit.context["nav_url"] == "https://www.openstreetmap.org/directions?to=-6.244100,106.800100"


@pytest.mark.parametrize("unit_id", ["u-off", "u-mute", "u-away", "u-unknown"])
def test_an_off_duty_unreachable_signed_out_or_unknown_unit_is_not_alerted_but_the_reporters_still_hear(directory, unit_id):
    notes = notify.plan("unit.assigned", assigned(unit_id=unit_id), "e-2", directory, RULES)
    assert by_template(notes, "unit_assignment") == []
    assert len(by_template(notes, "unit_on_the_way")) == 3


def test_a_reporter_with_no_phone_and_no_email_gets_nothing(directory):
    notes = notify.plan("unit.arrived", UnitArrived(incident_id=INC, unit_id="u-1", arrived_at=T0), "e-3",
                        directory, RULES)
    assert "r-4" not in [n.recipient.key for n in notes]
    assert keys(notes) == [("reporter", r, "unit_on_scene") for r in ("r-1", "r-2", "r-3")]
    assert notes[0].context["arrived_at"] == T0.isoformat()


def test_a_closed_incident_tells_the_reporters_the_disposition_in_indonesian(directory):
    closed = IncidentClosed(incident_id=INC, disposition="lp_made", closed_at=T0, lp_number=LP)
    notes = notify.plan("incident.closed", closed, "e-4", directory, RULES)
    assert {n.template for n in notes} == {"incident_closed"} and len(notes) == 3
    ctx = notes[0].context
    assert ctx["disposition"] == "lp_made" and ctx["disposition_words"] == notify.DISPOSITION_WORDS["lp_made"][0]
    assert "Laporan Polisi" in ctx["disposition_words"] and ctx["lp_number"] == LP
    for disposition in notify.DISPOSITION_WORDS:  # every disposition has public words in both languages
        assert all(notify.DISPOSITION_WORDS[disposition])


def test_the_sttlp_goes_to_the_reporters_it_names_or_else_to_all(directory):
    named = SttlpIssued(incident_id=INC, lp_number=LP, report_ids=["r-2"], issued_at=T0)
    notes = notify.plan("sttlp.issued", named, "e-5", directory, RULES)
    assert keys(notes) == [("reporter", "r-2", "sttlp")] and notes[0].context["lp_number"] == LP
    unnamed = SttlpIssued(incident_id=INC, lp_number=LP, issued_at=T0)
    assert len(notify.plan("sttlp.issued", unnamed, "e-5", directory, RULES)) == 3


@pytest.mark.parametrize("code,words", [("A1", "diteliti"), ("A2", "penyelidikan"), ("A3", "penyidikan"),
                                        ("A4", "penyidikan"), ("A5", "dihentikan")])
def test_an_sp2hp_letter_tells_the_reporters_its_code_reference_and_meaning(directory, code, words):
    letter = LetterSent(incident_id=INC, key=f"sp2hp-{code.lower()}", code=code, reference="B/1234/XI/2026/Reskrim",
                        sent_by="penyidik", sent_at=T0)
    notes = notify.plan("legal.letter-sent", letter, "e-6", directory, RULES)
    assert {n.template for n in notes} == {"sp2hp"} and len(notes) == 3
    ctx = notes[0].context
    assert ctx["code"] == code and ctx["reference"] == "B/1234/XI/2026/Reskrim" and words in ctx["meaning"]
    assert ctx["meaning_en"]


def test_a_letter_to_the_prosecutor_is_not_for_the_reporters(directory):
    spdp = LetterSent(incident_id=INC, key="spdp", code="SPDP", reference="B/77/XI/2026", sent_by="penyidik",
                      sent_at=T0)
    assert notify.plan("legal.letter-sent", spdp, "e-6", directory, RULES) == []


@pytest.mark.parametrize("decision,reason", [("accept", None), ("decline", "Dokumen kendaraan tidak lengkap"),
                                             ("refer", "Ke Polsek Kebayoran Baru")])
def test_an_assistance_decision_reaches_the_requester(directory, decision, reason):
    decided = AssistanceDecided(incident_id=INC, decision=decision, reason=reason, decided_by="Ipda Rudi",
                                decided_at=T0)
    notes = notify.plan("assistance.decided", decided, "e-7", directory, RULES)
    assert {n.template for n in notes} == {"assistance_decision"} and len(notes) == 3
    ctx = notes[0].context
    assert ctx["decision"] == decision and ctx["reason"] == reason
    assert ctx["decision_words"] == notify.DECISION_WORDS[decision][0]
    assert "Ipda Rudi" not in json.dumps(ctx)  # the officer's name stays inside


# --- sensitive and unknown incidents -------------------------------------------------------------
def test_a_sensitive_incident_still_reaches_its_reporters_flagged_sensitive(directory):
    notes = notify.plan("unit.assigned", assigned(SENSITIVE), "e-8", directory, RULES)
    reporter, = by_template(notes, "unit_on_the_way")
    assert reporter.sensitive and reporter.recipient.key == "r-9"
    unit, = by_template(notes, "unit_assignment")
    assert not unit.sensitive  # the unit needs the facts
    normal = by_template(notify.plan("unit.assigned", assigned(), "e-8", directory, RULES), "unit_on_the_way")
    assert not any(n.sensitive for n in normal)


def test_an_incident_unknown_to_the_directory_still_gives_the_milestone_with_its_id(directory):
    closed = IncidentClosed(incident_id=UNKNOWN, disposition="resolved_on_spot", closed_at=T0)
    note, = notify.plan("incident.closed", closed, "e-9", directory, RULES)
    assert note.recipient.key == "r-u" and note.context["number"] == UNKNOWN
    assert note.context["category"] is None and note.context["address"] is None
    assert note.sensitive  # we cannot tell: say less
    # nobody known at all: nothing, and no error
    assert notify.plan("unit.arrived", UnitArrived(incident_id="nowhere", unit_id="u-1", arrived_at=T0), "e-9",
                       directory, RULES) == []


# --- supervisors ----------------------------------------------------------------------------------
ALERTS = [
    ("incident.target-breached", TargetBreached(incident_id=INC, target="on_scene", due_at=T0, breached_at=T0),
     "unit tiba di TKP"),
    ("assistance.escalated", AssistanceEscalated(incident_id=INC, why="declined", detail="dokumen tidak lengkap",
                                                 escalated_at=T0), "DITOLAK"),
    ("assistance.escalated", AssistanceEscalated(incident_id=INC, why="no_decision_in_time", detail="15 menit",
                                                 escalated_at=T0), "belum diputuskan"),
    ("assignment.unacknowledged", AssignmentUnacknowledged(assignment_id="a-1", incident_id=INC, unit_id="u-1",
                                                           assigned_at=T0, waited_s=120, alerted_at=T0),
     "SABHARA 07 belum mengonfirmasi penugasan kejadian JS/2026/004512 setelah 2 menit"),
    ("duty.check-in-missed", DutyCheckInMissed(duty_id="jaga-7", incident_id=INC, unit_ids=["u-1", "u-x"],
                                               due_at=T0, noticed_at=T0), "SABHARA 07, u-x"),
    ("legal.deadline-overdue", LegalDeadlineOverdue(incident_id=INC, key="sp2hp-a1", code="A1",
                                                    words="SP2HP A1 kepada pelapor", due_at=T0, noticed_at=T0),
     "SP2HP A1 kepada pelapor"),
]


@pytest.mark.parametrize("event_type,event,words", ALERTS)
def test_every_alert_reaches_each_supervisor_as_p1_with_a_short_indonesian_line(directory, event_type, event,
                                                                                   words):
    notes = notify.plan(event_type, event, "e-10", directory, RULES)
    assert keys(notes) == [("supervisor", KA_SPKT.key, "supervisor_alert"), ("supervisor", KAPOLSEK.key,
                                                                              "supervisor_alert")]
    ka_spkt, kapolsek = notes
    assert ka_spkt.channels == ("email", "sms") and kapolsek.channels == ("sms",)
    assert kapolsek.recipient.phone == "+6281222220000"
    ctx = ka_spkt.context
    assert ctx["priority"] == "P1" and ctx["event_type"] == event_type and words in ctx["line"]
    assert ctx["line_en"] and ctx["at"] == T0.isoformat()
    if event_type != "duty.check-in-missed":
        assert "JS/2026/004512" in ctx["line"]


def test_a_missed_check_in_without_an_incident_still_alerts(directory):
    missed = DutyCheckInMissed(duty_id="jaga-8", unit_ids=["u-1"], due_at=T0, noticed_at=T0)
    notes = notify.plan("duty.check-in-missed", missed, "e-11", directory, RULES)
    assert len(notes) == 2 and notes[0].incident_id is None and "jaga-8" in notes[0].context["line"]


def test_no_supervisors_configured_means_no_alerts(directory):
    event_type, event, _ = ALERTS[0]
    assert notify.plan(event_type, event, "e-10", directory, NotifyRules()) == []


def test_a_panic_alarm_alerts_the_supervisors_but_a_normal_opening_does_not(directory):
    notes = notify.plan("incident.opened", opened(panic_unit_id="u-1"), "e-12", directory, RULES)
    assert keys(notes) == [("supervisor", KA_SPKT.key, "supervisor_alert"),
                           ("supervisor", KAPOLSEK.key, "supervisor_alert")]
    ctx = notes[0].context
    assert "TOMBOL PANIK" in ctx["line"] and "SABHARA 07" in ctx["line"] and "JS/2026/004700" in ctx["line"]
    assert ctx["nav_url"] and ctx["address"] == "Jl. Sudirman Kav. 52"  # from the event: the directory lags
    assert notify.plan("incident.opened", opened(), "e-12", directory, RULES) == []


# --- subscribers ----------------------------------------------------------------------------------
def test_subscribers_get_a_webhook_for_the_types_they_want_or_all():
    directory = FakeDirectory()
    rules = NotifyRules(subscribers=(
        Subscriber("bpbd", "https://bpbd.example/hook", "s3cret", ("incident.closed",)),
        Subscriber("command-center", "https://cc.example/hook", "k3y", ("*",)),
        Subscriber("lantas", "https://lantas.example/hook", "x", ("unit.assigned",)),
    ))
    closed = IncidentClosed(incident_id=INC, disposition="resolved_on_spot", closed_at=T0)
    hooks = by_template(notify.plan("incident.closed", closed, "e-13", directory, rules), "webhook")
    assert [n.recipient.key for n in hooks] == ["bpbd", "command-center"]
    bpbd = hooks[0]
    assert bpbd.channels == ("webhook",) and bpbd.recipient.kind == "subscriber"
    assert bpbd.recipient.url == "https://bpbd.example/hook" and bpbd.recipient.secret == "s3cret"
    assert bpbd.context == {"type": "incident.closed", "event_id": "e-13", "incident_id": INC,
                            "data": closed.model_dump(mode="json")}
    json.dumps(bpbd.context)  # JSON-able as it is
    report_hooks = by_template(notify.plan("report.received", received(), "e-14", directory, rules), "webhook")
    assert [n.recipient.key for n in report_hooks] == ["command-center"] and report_hooks[0].incident_id is None


# --- ids and the wire form ------------------------------------------------------------------------
def test_ids_are_stable_and_differ_by_event_recipient_and_template(directory):
    first = notify.plan("unit.assigned", assigned(), "e-2", directory, RULES)
    again = notify.plan("unit.assigned", assigned(), "e-2", directory, RULES)
    assert first == again and [n.notification_id for n in first] == [n.notification_id for n in again]
    ids = [n.notification_id for n in first]
    assert len(set(ids)) == len(ids)
    # The public hears "a unit is on its way" once per incident, however many units are sent;
    # the unit itself is told of each assignment.
    assert first[0].notification_id == derived_id("notification", INC, "reporter", "r-1", "unit_on_the_way")
    other = notify.plan("unit.assigned", assigned(), "e-2b", directory, RULES)
    same = {n.template for n in other if n.notification_id in set(ids)}
    assert same == {"unit_on_the_way"}
    arrived = notify.plan("unit.arrived", UnitArrived(incident_id=INC, unit_id="u-1", arrived_at=T0), "e-2",
                          directory, RULES)
    assert arrived[0].recipient == first[0].recipient and arrived[0].notification_id != first[0].notification_id


def test_every_notification_is_json_and_comes_back_the_same(directory):
    rules = NotifyRules(supervisors=(KA_SPKT,), subscribers=(Subscriber("cc", "https://cc.example", "k", ("*",)),))
    notes = (notify.plan("unit.assigned", assigned(), "e-2", directory, rules)
             + notify.plan("incident.opened", opened("u-1"), "e-12", directory, rules))
    assert {n.template for n in notes} == {"unit_on_the_way", "unit_assignment", "supervisor_alert", "webhook"}
    for note in notes:
        wire = json.loads(json.dumps(note.to_json()))
        assert Notification.from_json(wire) == note
    wire = notes[0].to_json()
    wire["recipient"]["added_later"] = "ignored"
    assert Notification.from_json(wire) == notes[0]


def test_the_hourly_limit_spares_people_but_never_holds_back_a_subscriber_or_a_panic_alarm(directory):
    from schemas.events import TargetBreached

    rules = NotifyRules(supervisors=(KA_SPKT,), subscribers=(Subscriber("cc", "https://cc.example", "k", ("*",)),))
    held = {(n.recipient.kind, n.template): notify.held_by_rate_limit(n) for n in (
        notify.plan("report.received", received(), "e-1", directory, rules)
        + notify.plan("unit.assigned", assigned(), "e-2", directory, rules)
        + notify.plan("incident.opened", opened("u-1"), "e-12", directory, rules)
        + notify.plan("incident.target-breached", TargetBreached(incident_id=INC, target="dispatch", due_at=T0,
                                                                 breached_at=T0), "e-13", directory, rules))}
    assert held == {("reporter", "receipt"): True, ("reporter", "unit_on_the_way"): True,
                    ("unit", "unit_assignment"): True, ("subscriber", "webhook"): False,
                    ("supervisor", "supervisor_alert"): True}
    panic = [n for n in notify.plan("incident.opened", opened("u-1"), "e-12", directory, rules)
             if n.recipient.kind == "supervisor"]
    assert panic and not any(notify.held_by_rate_limit(n) for n in panic)


@pytest.mark.parametrize("raw,phone", [
    ("081234567890", "+6281234567890"), ("+62 812-3456-7890", "+6281234567890"), ("6281234567890", "+6281234567890"),
    ("(0812) 3456 7890", "+6281234567890"), ("0062812345678", "+62812345678"), ("110", None), ("", None),
    ("08-abc", None), (None, None),
])
def test_phone_numbers_are_read_as_indonesians_write_them(raw, phone):
    assert notify.e164(raw) == phone


def test_the_receipt_needs_no_directory(report):
    def receipt(event_id, r):
        notes = notify.plan("report.received", r, event_id, MemoryDirectory(), NotifyRules())
        return notes[0] if notes else None
    note = receipt("e-1", report)
    assert note == receipt("e-1", report) and note.template == "receipt"
    assert note.recipient.phone == "+6281234567890" and note.context["tracking_code"] == report.tracking_code
    assert receipt("e-1", report.model_copy(update={"reporter": Reporter()})) is None


def test_unrelated_events_plan_nothing(directory):
    event_type, event, _ = ALERTS[0]
    # an event of another type handed in under a reporter milestone's name is ignored, not misread
    assert notify.plan("unit.arrived", event, "e-1", directory, NotifyRules()) == []
