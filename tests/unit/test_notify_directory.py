"""notify's directory (every reporter of an incident, merged and split ones included; units' contacts) and the delivery helpers (backoff, masking)."""
from __future__ import annotations

from datetime import datetime, timezone

from schemas.events import (
    IncidentMerged, IncidentOpened, IncidentSplit, Location, NotificationSent, Reporter, ReportAttached,
    ReportReceived, UnitRegistered, UnitStatusChanged, UnitSignedIn, UnitSignedOut,
)
from services.notify import domain
from services.notify.directory import MemoryDirectory

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc)


def received(report_id: str, **reporter) -> ReportReceived:
    return ReportReceived(report_id=report_id, tracking_code=f"TRK-{report_id}", channel="phone_110",
                          reporter=Reporter(**reporter), description="Jambret", location=Location(lat=-6.2, lon=106.8),
                          received_at=T0)


def opened(incident_id: str, *report_ids: str) -> IncidentOpened:
    return IncidentOpened(incident_id=incident_id, number=f"KJD/{incident_id}", report_ids=list(report_ids),
                          category="street_robbery", priority="P2", summary="Jambret",
                          location=Location(lat=-6.2, lon=106.8, address="Jl. Uji"), opened_at=T0)


def test_reporters_follow_attachments_merges_and_splits():
    d = MemoryDirectory()
    for rid, phone in (("r1", "+6281200000001"), ("r2", "+6281200000002"), ("r3", "+6281200000003")):
        d.apply(received(rid, phone=phone, email=f"{rid}@warga.example"))
    d.apply(opened("a", "r1"))
    d.apply(opened("b", "r2"))
    d.apply(ReportAttached(incident_id="a", report_id="r3", match={"incident_id": "a", "total": 0.9, "distance_m": 10,
                                                                  "category_score": 1, "text_score": 0.5,
                                                                  "minutes": 1, "reasons": []}, attached_at=T0))
    assert [r.report_id for r in d.reporters_of("a")] == ["r1", "r3"]
    d.apply(IncidentMerged(incident_id="b", into="a", report_ids=["r2"], merged_by="disp", merged_at=T0))
    assert {r.report_id for r in d.reporters_of("a")} == {"r1", "r2", "r3"} and d.reporters_of("b") == []
    d.apply(IncidentSplit(incident_id="a", report_id="r3", new_incident_id="c", split_by="disp", split_at=T0))
    assert {r.report_id for r in d.reporters_of("a")} == {"r1", "r2"}
    assert [r.email for r in d.reporters_of("c")] == ["r3@warga.example"]
    assert d.incident("a").address == "Jl. Uji" and d.incident("zzz") is None


def test_units_contact_and_duty_and_what_was_sent():
    d = MemoryDirectory()
    d.apply(UnitRegistered(unit_id="u1", callsign="SABHARA-1", kind="car", station="s", registered_at=T0,
                           phone="+6281300000001"))
    assert d.unit("u1") == domain.UnitContact("u1", "SABHARA-1", "+6281300000001", None, True)
    d.apply(UnitStatusChanged(unit_id="u1", status="off_duty", changed_at=T0))
    assert d.unit("u1").on_duty is False
    d.apply(UnitSignedOut(unit_id="u1", at=T0, by="u1"))
    assert d.unit("u1").signed_in is False and d.unit("u1").on_duty is False
    d.apply(UnitRegistered(unit_id="u1", callsign="SABHARA-1", kind="car", station="s", registered_at=T0))
    assert d.unit("u1").signed_in is False  # registering again keeps what the crew did
    d.apply(UnitSignedIn(unit_id="u1", at=T0, by="u1"))
    assert d.unit("u1").signed_in is True
    d.apply(NotificationSent(notification_id="n1", template="receipt", recipient_kind="reporter", recipient="…0001",
                             channel="sms", attempts=1, cause_event_id="e", sent_at=T0))
    assert "n1" in d.done


def test_a_receipt_goes_to_the_reports_own_address_before_the_directory_knows_it():
    report = received("r9", name="Andi", email="andi@warga.example")
    notes = domain.plan("report.received", report, "e-9", MemoryDirectory(), domain.NotifyRules())
    assert [(n.template, n.channels, n.recipient.email) for n in notes] == [("receipt", ("email",), "andi@warga.example")]


def test_retries_back_off_exponentially_up_to_the_cap():
    from services.notify.delivery import backoff_s

    assert [backoff_s(n, 2.0, 300.0) for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_s(0, 2.0, 300.0) == 2.0


def test_contacts_are_masked_on_the_record():
    from services.notify.delivery import masked

    note = domain.plan("report.received", received("r5", phone="+6281299990005", email="x@warga.example"), "e-5",
                       MemoryDirectory(), domain.NotifyRules())[0]
    assert masked(note, "sms") == "…0005" and masked(note, "email") == "…@warga.example"


def test_what_was_sent_is_remembered_for_a_week_not_forever():
    from datetime import timedelta

    from services.notify.directory import DONE_KEPT

    d = MemoryDirectory()
    old = T0 - DONE_KEPT - timedelta(days=1)
    for n in range(9_999):
        d.apply(NotificationSent(notification_id=f"old-{n}", template="receipt", recipient_kind="reporter",
                                 recipient="…1", channel="sms", attempts=1, cause_event_id="e", sent_at=old))
    assert len(d.done) == 9_999
    d.apply(NotificationSent(notification_id="new", template="receipt", recipient_kind="reporter", recipient="…1",
                             channel="sms", attempts=1, cause_event_id="e", sent_at=T0))
    assert list(d.done) == ["new"]
