"""A worker on the real broker sets aside what it cannot handle, with the reason, and goes on."""

import pytest

from deploy.stack import group_has_members
from schemas import topics
from schemas.envelope import derived_id
from schemas.registry import make_event
from tests.support import Process, events_on, produce, publish, wait_for

pytestmark = pytest.mark.integration


def test_intake_dead_letters_bad_messages_and_processes_the_next_good_one(settings_for, tmp_path, report):
    settings = settings_for()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    worker = Process(["run", "intake"], settings, tmp_path / "intake.log")
    try:
        wait_for(lambda: group_has_members(settings, "spkt-intake"), timeout=60, what="intake joined its group")
        good = make_event(report.model_copy(update={"report_id": derived_id("t", str(tmp_path))}), source="/test")
        unknown = good.model_copy(update={"id": "e-unknown", "type": "report.teleported"})
        invalid = good.model_copy(update={"id": "e-invalid", "data": {**good.data, "channel": "pigeon"}})
        bad = {
            "not JSON": produce(settings, topics.REPORTS, b"{this is not json", key=b"k-bad"),
            "unknown event type 'report.teleported'": publish(settings, topics.REPORTS, unknown),
            "invalid report.received data: channel": publish(settings, topics.REPORTS, invalid),
        }
        publish(settings, topics.REPORTS, good)

        def intake_dead_letters():
            found = {}
            for env in events_on(settings, topics.DEAD_LETTERS):
                d = env.data
                if d["service"] == "intake" and d["original_topic"] == topics.REPORTS:
                    found[(d["original_partition"], d["original_offset"])] = d
            return found if all((m.partition, m.offset) in found for m in bad.values()) else None

        letters = wait_for(intake_dead_letters, timeout=30, what="three dead letters from intake", interval=0.3)
        for reason, meta in bad.items():
            letter = letters[(meta.partition, meta.offset)]
            assert reason in letter["reason"]
            assert letter["error_kind"] == "invalid_message"
        raw = letters[(bad["not JSON"].partition, bad["not JSON"].offset)]
        assert raw["original_value"] == "{this is not json" and raw["original_key"] == "k-bad"

        opened = wait_for(
            lambda: [e for e in events_on(settings, topics.INCIDENTS) if e.causationid == good.id],
            timeout=30, what="incident.opened for the good report after the bad ones", interval=0.3)
        assert opened[0].type == "incident.opened" and opened[0].correlationid == good.id
        assert worker.popen.poll() is None, worker.tail()
    finally:
        worker.stop()
