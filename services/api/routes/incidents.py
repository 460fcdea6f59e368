"""Incidents as the read model knows them."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from services.projection import tables as t
from services.projection.projector import as_aware

from ..auth import Principal, Role
from ..deps import IncidentReader, SessionDep
from ..models import AssignmentOut, IncidentOut, RecommendationOut, TimelineItem

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

NOT_FOUND = "Kejadian tidak ditemukan"


def _visible_incident(session, incident_id: str, principal: Principal) -> t.Incident:
    incident = session.get(t.Incident, incident_id)
    if incident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    if principal.role is Role.field_unit:
        assigned = session.scalars(select(t.Assignment).filter_by(incident_id=incident_id,
                                                                  unit_id=principal.unit_id)).first()
        if assigned is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Unit Anda tidak ditugaskan pada kejadian ini")
    return incident


def _recommendation(session, incident_id: str) -> RecommendationOut | None:
    rec = session.get(t.Recommendation, incident_id)
    if rec is None:
        return None
    return RecommendationOut(candidates=rec.candidates, excluded=rec.excluded,
                             recommended_at=as_aware(rec.recommended_at))


@router.get("/{incident_id}", response_model=IncidentOut, responses={404: {"description": NOT_FOUND}})
def get_incident(incident_id: str, principal: IncidentReader, session: SessionDep) -> IncidentOut:
    incident = _visible_incident(session, incident_id, principal)
    reports = session.scalars(select(t.IncidentReport.report_id).filter_by(incident_id=incident_id)
                              .order_by(t.IncidentReport.linked_at)).all()
    assignments = session.scalars(select(t.Assignment).filter_by(incident_id=incident_id)
                                  .order_by(t.Assignment.assigned_at)).all()
    timeline = session.scalars(select(t.TimelineEntry).filter_by(incident_id=incident_id)
                               .order_by(t.TimelineEntry.at)).all()
    return IncidentOut(
        incident_id=incident.incident_id, number=incident.number, status=incident.status,
        category=incident.category, priority=incident.priority, summary=incident.summary,
        location=incident.location, jurisdiction=incident.jurisdiction, opened_at=as_aware(incident.opened_at),
        reports=list(reports),
        assignments=[AssignmentOut(assignment_id=a.assignment_id, unit_id=a.unit_id, status=a.status,
                                   assigned_by=a.assigned_by, assigned_at=as_aware(a.assigned_at))
                     for a in assignments],
        recommendation=_recommendation(session, incident_id),
        timeline=[TimelineItem(at=as_aware(e.at), type=e.type, actor=e.actor, summary=e.summary) for e in timeline],
        disposition=incident.disposition, lp_number=incident.lp_number,
    )


@router.get("/{incident_id}/recommendations", response_model=RecommendationOut,
            responses={404: {"description": NOT_FOUND + " atau belum ada rekomendasi"}})
def get_recommendations(incident_id: str, principal: IncidentReader, session: SessionDep) -> RecommendationOut:
    _visible_incident(session, incident_id, principal)
    rec = _recommendation(session, incident_id)
    if rec is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Belum ada rekomendasi untuk kejadian ini")
    return rec
