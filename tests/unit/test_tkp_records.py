"""What the tkp worker writes for a scene: records sealed into the incident's chain, closure with an
LP from intake, the legal clock. Pure: the worker's handlers without Kafka."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from schemas.events import (
    CloseIncident, CommandRejected, CustodyTransferred, EvidenceRegistered, IncidentClosed, IncidentOpened,
    LegalClockStarted, LetterSent, Location, LpRegistered, RecordLetter, RecordSceneStep, RegisterEvidence,
    RegisterLp,
    ReopenIncident, SceneStatusChanged, SceneStepRecorded, SttlpIssued, TransferCustody, UnitArrived,
)
from services.tkp import chain, records

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc)
INC = "inc-1"


def opened(category: str = "homicide") -> IncidentOpened:
    return IncidentOpened(incident_id=INC, number="KJD/JAKSEL/2026/000001", report_ids=["rep-1"], category=category,
                          priority="P1", summary="Ditemukan mayat", location=Location(lat=-6.26, lon=106.81),
                          opened_at=T0, polres="polres-jaksel")


def step(phase: str, name: str, n: int, at: datetime | None = None) -> RecordSceneStep:
    return RecordSceneStep(command_id=f"cmd-{phase}-{name}-{n}", incident_id=INC, phase=phase, step=name,
                           recorded_by="unit-7", recorded_at=at or T0 + timedelta(minutes=n))


def chained(events) -> list[dict]:
    return [{"record_id": e.event_type, "prev_hash": e.prev_hash, "hash": e.record_hash,
             "content": records.chain_content(e)} for e in events if getattr(e, "record_hash", None)]


def scene_with_homicide() -> tuple[dict, list]:
    scene = records.new_scene(INC)
    written = records.on_incident_event(scene, opened(), T0)
    written += records.on_incident_event(scene, UnitArrived(incident_id=INC, unit_id="unit-7", arrived_at=T0), T0)
    return scene, written


def test_arrival_and_steps_move_the_scene_and_are_chained():
    scene, written = scene_with_homicide()
    assert [type(e) for e in written] == [SceneStatusChanged] and written[0].status == "on_scene"
    for n, name in enumerate(("arrival_reported", "victims_aided", "police_line"), start=1):
        written += records.on_command(scene, step("tptkp", name, n), T0)
    statuses = [e.status for e in written if isinstance(e, SceneStatusChanged)]
    assert statuses == ["on_scene", "tptkp", "scene_secured"]
    check = chain.verify(chained(written))
    assert check.valid and check.checked == len(written) == 6
    assert written[1].prev_hash == written[0].record_hash  # each names the one before it


def test_olah_tkp_before_the_hand_over_is_recorded_and_flagged():
    scene, _ = scene_with_homicide()
    out = records.on_command(scene, step("olah_tkp", "team_arrived", 1), T0)
    recorded = out[0]
    assert isinstance(recorded, SceneStepRecorded) and recorded.record_hash
    assert "police_line" in recorded.out_of_order and "handed_over" in recorded.out_of_order
    assert recorded.warning and "garis polisi" in recorded.warning


def test_a_repeated_step_is_answered_but_not_written_again():
    scene, _ = scene_with_homicide()
    first = records.on_command(scene, step("tptkp", "arrival_reported", 1), T0)
    head = scene["chain_head"]
    again = records.on_command(scene, step("tptkp", "arrival_reported", 2), T0)
    assert len(again) == 1 and again[0].record_hash is None and scene["chain_head"] == head
    assert first[0].record_hash


def test_unknown_step_and_reused_seal_are_refused():
    scene, _ = scene_with_homicide()
    bad = records.on_command(scene, step("tptkp", "dancing", 1), T0)
    assert isinstance(bad[0], CommandRejected) and bad[0].command_id == "cmd-tptkp-dancing-1"
    first = records.on_command(scene, evidence("bb-1", "SGL-1"), T0)
    assert isinstance(first[0], EvidenceRegistered)
    reused = records.on_command(scene, evidence("bb-2", "SGL-1"), T0)
    assert isinstance(reused[0], CommandRejected) and "SGL-1" in reused[0].reason
    repeat = records.on_command(scene, evidence("bb-1", "SGL-1"), T0)
    assert isinstance(repeat[0], EvidenceRegistered) and repeat[0].record_hash is None


def evidence(evidence_id: str, seal: str) -> RegisterEvidence:
    return RegisterEvidence(command_id=f"cmd-{evidence_id}", incident_id=INC, evidence_id=evidence_id,
                            description="Pisau dapur", kind="senjata tajam", seal_number=seal,
                            collected_by="unit-7", collected_at=T0)


def transfer(evidence_id: str, to: str, n: int) -> TransferCustody:
    return TransferCustody(command_id=f"cmd-t-{evidence_id}-{n}", incident_id=INC, evidence_id=evidence_id, to=to,
                           reason="serah terima", by="penyidik", at=T0 + timedelta(hours=n))


def test_custody_chain_holds_the_holders_in_order():
    scene, _ = scene_with_homicide()
    records.on_command(scene, evidence("bb-1", "SGL-1"), T0)
    moves = [records.on_command(scene, transfer("bb-1", to, n), T0)[0]
             for n, to in enumerate(("Penyidik Reskrim", "Tahti", "Labfor"), start=1)]
    assert all(isinstance(m, CustodyTransferred) for m in moves)
    assert [(m.from_holder, m.to, m.sequence) for m in moves] == [
        ("unit-7", "Penyidik Reskrim", 1), ("Penyidik Reskrim", "Tahti", 2), ("Tahti", "Labfor", 3)]
    same = records.on_command(scene, transfer("bb-1", "Labfor", 4), T0)
    assert isinstance(same[0], CommandRejected)


def close(disposition: str, model: str | None = None, n: int = 1) -> CloseIncident:
    return CloseIncident(command_id=f"cmd-close-{n}", incident_id=INC, area="polres-jaksel", disposition=disposition,
                         lp_model=model, closed_by="dispatcher-1", requested_at=T0)


def test_closure_with_steps_missing_is_refused_with_the_list():
    scene, _ = scene_with_homicide()
    out = records.on_command(scene, close("lp_made", "B"), T0)
    assert isinstance(out[0], CommandRejected)
    assert "garis polisi" in out[0].reason and "olah TKP" in out[0].reason


def complete_homicide(scene: dict) -> list:
    written = []
    n = 0
    for phase, steps in (("tptkp", ("arrival_reported", "victims_aided", "scene_secured", "police_line",
                                    "evidence_preserved", "witnesses_recorded", "handed_over")),
                         ("olah_tkp", ("team_arrived", "observation", "photographed", "sketched",
                                       "evidence_collected", "scene_released"))):
        for name in steps:
            n += 1
            written += records.on_command(scene, step(phase, name, n), T0)
    return written


def test_closure_with_an_lp_waits_for_intakes_number_then_starts_the_legal_clock():
    scene, written = scene_with_homicide()
    written += complete_homicide(scene)
    asked = records.on_command(scene, close("lp_made", "B"), T0)
    assert [type(e) for e in asked] == [RegisterLp] and asked[0].report_id == "rep-1"
    assert isinstance(records.on_command(scene, close("lp_made", "B", n=2), T0)[0], CommandRejected)  # pending
    later = T0 + timedelta(hours=2)
    lp = LpRegistered(lp_number="LP/B/12/XI/2026/SPKT/POLRES METRO JAKARTA SELATAN", model="B", office="X",
                      sequence=12, year=2026, report_id="rep-1", registered_at=later, incident_id=INC,
                      command_id="cmd-close-1")
    assert lp.subject() == INC  # keyed by the incident, so this worker reads it
    out = records.on_incident_event(scene, lp, later)
    closed, sttlp, clock = out
    assert isinstance(closed, IncidentClosed) and closed.lp_number == lp.lp_number and closed.command_id == "cmd-close-1"
    assert closed.apco_code == "RPT" and isinstance(sttlp, SttlpIssued) and sttlp.report_ids == ["rep-1"]
    assert isinstance(clock, LegalClockStarted)
    due = {d.key: d.due_at for d in clock.deadlines}
    assert due["sp2hp-a1"] == T0 + timedelta(days=3) and due["spdp"] == later + timedelta(days=7)
    assert chain.verify(chained(written + out)).valid
    assert records.on_incident_event(scene, lp, later) == []  # the same LP again changes nothing


def closed_with_an_lp() -> dict:
    """A homicide scene, complete, closed with LP B (the number back from intake)."""
    scene, _ = scene_with_homicide()
    complete_homicide(scene)
    records.on_command(scene, close("lp_made", "B"), T0)
    records.on_incident_event(scene, LpRegistered(
        lp_number="LP/B/1/XI/2026/SPKT/X", model="B", office="X", sequence=1, year=2026, report_id="rep-1",
        registered_at=T0, incident_id=INC, command_id="cmd-close-1"), T0)
    return scene


def test_overdue_letters_are_said_once_each():
    scene = closed_with_an_lp()
    assert records.overdue_letters(scene, T0 + timedelta(days=2)) == []
    late = records.overdue_letters(scene, T0 + timedelta(days=3, minutes=1))
    assert [x.key for x in late] == ["sp2hp-a1"]
    records.on_incident_event(scene, late[0], T0)  # the alert comes back: escalated
    assert records.overdue_letters(scene, T0 + timedelta(days=3, minutes=2)) == []


def test_close_without_lp_and_reopen_are_chained():
    scene = records.new_scene(INC)
    records.on_incident_event(scene, opened("pickpocketing"), T0)
    first = records.on_command(scene, close("false_report"), T0)
    assert isinstance(first[0], IncidentClosed) and first[0].record_hash
    again = records.on_command(scene, close("false_report", n=2), T0)
    assert isinstance(again[0], CommandRejected)
    reopened = records.on_command(scene, ReopenIncident(command_id="cmd-r", incident_id=INC, reason="pelapor datang",
                                                        reopened_by="spv", requested_at=T0), T0)
    assert reopened[0].prev_hash == first[0].record_hash


def test_a_letter_sent_meets_its_deadline_and_is_chained():
    scene = closed_with_an_lp()
    letter = RecordLetter(command_id="cmd-letter", incident_id=INC, key="sp2hp-a1", reference="B/1/XI/2026",
                          sent_by="penyidik", sent_at=T0 + timedelta(days=2))
    sent = records.on_command(scene, letter, T0)
    assert isinstance(sent[0], LetterSent) and sent[0].code == "A1" and sent[0].record_hash
    assert "sp2hp-a1" not in [x.key for x in records.overdue_letters(scene, T0 + timedelta(days=30))]
    twice = records.on_command(scene, letter.model_copy(update={"command_id": "cmd-letter-2"}), T0)
    assert isinstance(twice[0], CommandRejected) and "sudah" in twice[0].reason
    unknown = records.on_command(scene, letter.model_copy(update={"command_id": "c3", "key": "sp2hp-9"}), T0)
    assert isinstance(unknown[0], CommandRejected) and "sp2hp-a1" in unknown[0].reason
