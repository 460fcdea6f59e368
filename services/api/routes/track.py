"""The public tracker: what a reporter may see of their report, by its tracking code, no token.

No names, phone numbers, NIK or addresses ever; for sensitive categories (children, sexual
offences, domestic violence) nothing beyond "received" until an officer marks it shareable.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from sqlalchemy import select

from services.projection import tables as t
from services.projection.projector import as_aware

from ..deps import SessionDep
from ..models import Milestone, TrackOut
from .reports import rate_limit

router = APIRouter(tags=["public"])

TEXTS = {
    "received": "Laporan diterima",
    "in_progress": "Laporan sedang ditangani petugas",
    "merged": "Laporan Anda digabung dengan laporan lain tentang kejadian yang sama dan ditangani bersama",
    "unit_on_the_way": "Petugas sedang menuju lokasi",
    "unit_on_scene": "Petugas sudah tiba di lokasi",
    "lp_made": "Laporan Polisi (LP) telah dibuat",
    "closed": "Penanganan kejadian selesai",
}
UNKNOWN = "Kode pelacakan tidak dikenal. Periksa kembali kode pada tanda terima Anda."


def _incident_of(session, report_id: str) -> tuple[t.Incident | None, bool, object]:
    """The incident that now handles this report (following merges), whether it was merged, and
    when the report joined it."""
    link = session.get(t.IncidentReport, report_id)
    if link is None:
        return None, False, None
    incident, merged = session.get(t.Incident, link.incident_id), link.merged
    for _ in range(10):  # merges chain at most a few times; bounded against a cycle
        if incident is None or not incident.merged_into:
            break
        incident, merged = session.get(t.Incident, incident.merged_into), True
    return incident, merged, link.linked_at


def milestones(session, report: t.Report) -> tuple[list[Milestone], str | None]:
    out = [Milestone(at=as_aware(report.received_at), code="received", text=TEXTS["received"])]
    incident, merged, joined_at = _incident_of(session, report.report_id)
    if incident is None or (incident.sensitive and not incident.shareable):
        return out, None
    # A report joining an incident opened earlier is in hand from when it joined, not before it was made.
    since = max(as_aware(report.received_at), as_aware(joined_at or incident.opened_at))
    out.append(Milestone(at=since, code="in_progress",
                         text=TEXTS["merged" if merged else "in_progress"]))
    first = session.scalars(select(t.Assignment).filter_by(incident_id=incident.incident_id)
                            .order_by(t.Assignment.assigned_at)).first()
    if first is not None:
        out.append(Milestone(at=as_aware(first.assigned_at), code="unit_on_the_way", text=TEXTS["unit_on_the_way"]))
    steps = session.get(t.IncidentIntervals, incident.incident_id)
    if steps is not None and steps.on_scene_at is not None:
        out.append(Milestone(at=as_aware(steps.on_scene_at), code="unit_on_scene", text=TEXTS["unit_on_scene"]))
    if incident.lp_number:
        made = session.scalars(select(t.TimelineEntry.at).filter_by(incident_id=incident.incident_id,
                                                                    type="lp.registered")).first()
        out.append(Milestone(at=as_aware(made or incident.closed_at or incident.updated_at), code="lp_made",
                             text=f"{TEXTS['lp_made']}: {incident.lp_number}"))
    if incident.status == "closed" and incident.closed_at is not None:
        out.append(Milestone(at=as_aware(incident.closed_at), code="closed", text=TEXTS["closed"]))
    out.sort(key=lambda m: m.at)
    return out, incident.lp_number


@router.get("/track/{tracking_code}", response_model=TrackOut, responses={404: {"description": UNKNOWN},
                                                                          429: {"description": "Terlalu sering"}})
def track(tracking_code: Annotated[str, Path(max_length=32)], request: Request, session: SessionDep) -> TrackOut:
    """Where a report stands, for the person who made it (no token: the code is the key)."""
    rate_limit(request, f"public:{request.client.host if request.client else '-'}", "public_limiter")
    report = session.scalars(select(t.Report).filter_by(tracking_code=tracking_code.strip().upper())).first()
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, UNKNOWN)
    steps, lp_number = milestones(session, report)
    last = steps[-1]
    return TrackOut(tracking_code=report.tracking_code, status=last.code, status_text=last.text,
                    updated_at=last.at, lp_number=lp_number, milestones=steps)
