"""The skeleton's domain rules of notify and tkp, without any broker (dispatch: test_dispatch_*)."""
from services.notify import domain as notify
from services.notify.directory import MemoryDirectory
from services.tkp import domain as tkp


def receipt(event_id, report):
    notes = notify.plan("report.received", report, event_id, MemoryDirectory(), notify.NotifyRules())
    return notes[0] if notes else None


def test_notify_plans_one_receipt_per_event_and_none_without_a_phone(report):
    first = receipt("e-1", report)
    assert first == receipt("e-1", report)
    assert first.notification_id != receipt("e-2", report).notification_id
    assert first.context["tracking_code"] == report.tracking_code and first.recipient.phone == "+6281234567890"
    nobody = report.model_copy(update={"reporter": report.reporter.model_copy(update={"phone": None})})
    assert receipt("e-1", nobody) is None


def test_tkp_knows_which_events_concern_the_scene():
    assert tkp.scene_note("incident.opened") and tkp.scene_note("incident.closed")
    assert tkp.scene_note("report.received") is None
    assert "police_line" in tkp.TPTKP_STEPS and "scene_released" in tkp.OLAH_TKP_STEPS
