"""The tkp worker on the real broker: killed in the middle of a scene, it comes back with every step
and an unbroken chain; a command delivered again does not record a step twice."""
import uuid

import pytest

from deploy.stack import group_members
from schemas import topics
from schemas.envelope import utcnow
from schemas.events import IncidentOpened, Location, RecordSceneStep, RegisterEvidence, TransferCustody
from schemas.registry import REGISTRY, make_event
from services.tkp import chain, records
from tests.support import Process, events_on, publish, wait_for

pytestmark = pytest.mark.integration

GROUP = "spkt-tkp"
TPTKP = ("arrival_reported", "victims_aided", "scene_secured", "police_line", "evidence_preserved",
         "witnesses_recorded", "handed_over")


def records_of(settings, incident_id: str) -> list:
    """The incident's chained records as they are on Kafka, each once (a re-delivered command may
    publish its events again, with the same ids)."""
    seen, out = set(), []
    for topic in (topics.TKP, topics.CLOSURES):
        for e in events_on(settings, topic):
            if e.data.get("incident_id") == incident_id and e.data.get("record_hash") and e.id not in seen:
                seen.add(e.id)
                out.append(e)
    return out


def in_chain_order(events) -> list[dict]:
    by_prev = {e.data["prev_hash"]: e for e in events}
    ordered, head = [], chain.GENESIS
    while head in by_prev and len(ordered) < len(events):
        ordered.append(by_prev[head])
        head = by_prev[head].data["record_hash"]
    # What a record's hash covers is its data as the event model gives it (records.chain_content).
    return [{"record_id": e.id, "prev_hash": e.data["prev_hash"], "hash": e.data["record_hash"],
             "content": records.chain_content(REGISTRY[e.type].model_validate(e.data))} for e in ordered]


def step_command(incident_id: str, name: str) -> RecordSceneStep:
    return RecordSceneStep(command_id=str(uuid.uuid4()), incident_id=incident_id, phase="tptkp", step=name,
                           recorded_by="unit-uji", recorded_at=utcnow())


def send(settings, command) -> None:
    publish(settings, topics.COMMANDS, make_event(command, source="/test", event_id=command.command_id))


def answered(settings, command_id: str) -> bool:
    return any(e.data.get("command_id") == command_id for topic in (topics.TKP, topics.INCIDENTS)
               for e in events_on(settings, topic))


def test_a_killed_tkp_worker_keeps_every_step_and_the_chain(settings_for, tmp_path):
    settings = settings_for()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    incident_id = f"inc-tkp-{uuid.uuid4().hex[:8]}"
    worker = Process(["run", "tkp"], settings, tmp_path / "tkp.log")
    restarts: list[Process] = []
    try:
        wait_for(lambda: group_members(settings, GROUP) == 1, timeout=90, interval=0.5,
                 what=f"the tkp worker alone in its group (log: {worker.log})")
        publish(settings, topics.INCIDENTS, make_event(IncidentOpened(
            incident_id=incident_id, number="KJD/UJI/000001", report_ids=["rep-uji"], category="homicide",
            priority="P1", summary="Penemuan mayat", location=Location(lat=-6.2, lon=106.8), opened_at=utcnow()),
            source="/test"))
        first_half = [step_command(incident_id, name) for name in TPTKP[:4]]
        for command in first_half:
            send(settings, command)
        evidence = RegisterEvidence(command_id=str(uuid.uuid4()), incident_id=incident_id, evidence_id="bb-uji-1",
                                    description="Pisau", kind="senjata tajam", seal_number=f"SGL-{incident_id}",
                                    collected_by="unit-uji", collected_at=utcnow())
        send(settings, evidence)
        wait_for(lambda: all(answered(settings, c.command_id) for c in [*first_half, evidence]), timeout=90,
                 interval=0.5, what="the first half of the scene recorded")

        worker.popen.kill()  # SIGKILL in the middle of the scene: no goodbye, no last commit
        worker.stop()
        restarts.append(Process(["run", "tkp"], settings, tmp_path / "tkp-restarted.log"))
        send(settings, first_half[1])  # a command delivered again after the restart
        second_half = [step_command(incident_id, name) for name in TPTKP[4:]]
        handover = TransferCustody(command_id=str(uuid.uuid4()), incident_id=incident_id, evidence_id="bb-uji-1",
                                   to="Tahti", reason="penyimpanan", by="penyidik", at=utcnow())
        for command in [*second_half, handover]:
            send(settings, command)

        def supervise_and_check():
            if restarts[-1].popen.poll() is not None:  # as supervisord does: started again
                restarts[-1].stop()
                restarts.append(Process(["run", "tkp"], settings, tmp_path / f"tkp-{len(restarts)}.log"))
            return all(answered(settings, c.command_id) for c in [*second_half, handover])
        wait_for(supervise_and_check, timeout=120, interval=0.5, what="the second half after the restart")

        recorded = records_of(settings, incident_id)
        steps = [e.data["step"] for e in recorded if e.type == "scene.step-recorded"]
        assert sorted(steps) == sorted(TPTKP), steps  # every step, none twice
        ordered = in_chain_order(recorded)
        assert len(ordered) == len(recorded)  # one unbroken line from the first record to the last
        check = chain.verify(ordered)
        assert check.valid and check.checked == len(recorded), check
        custody = [e for e in recorded if e.type == "evidence.custody-transferred"]
        assert [(c.data["from_holder"], c.data["to"]) for c in custody] == [("unit-uji", "Tahti")]
    finally:
        for process in [worker, *restarts]:
            process.stop()
