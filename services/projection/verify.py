"""Does an incident's record still hold? Its timeline and its TKP records are hash chains
(services/tkp/chain.py); these recompute every link from what the read model stores now.

    incident_chains(session, incident_id) -> {"valid", "timeline": {...}, "tkp": {...}}

Used by the API (the `chain` field of an incident, `chain_valid` of evidence) and by
`spkt verify incident <id>`.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.tkp import chain

from . import tables as t
from .projector import timeline_content


def timeline_chain(session: Session, incident_id: str) -> chain.ChainCheck:
    entries = session.scalars(select(t.TimelineEntry).filter_by(incident_id=incident_id)
                              .order_by(t.TimelineEntry.seq)).all()
    return chain.verify([{"record_id": e.entry_id, "prev_hash": e.prev_hash or "", "hash": e.hash or "",
                          "content": timeline_content(e)} for e in entries])


def tkp_chain(session: Session, incident_id: str) -> chain.ChainCheck:
    """The tkp service's records in chain order (each names the one before it); a record whose
    predecessor is gone, or was changed, breaks the chain where it stands."""
    rows = session.scalars(select(t.TkpRecord).filter_by(incident_id=incident_id)).all()
    after: dict[str, list[t.TkpRecord]] = {}
    for row in sorted(rows, key=lambda r: r.record_id):
        after.setdefault(row.prev_hash, []).append(row)
    ordered: list[t.TkpRecord] = []
    head = chain.GENESIS
    while after.get(head) and len(ordered) < len(rows):
        row = after[head].pop(0)
        ordered.append(row)
        head = row.hash
    placed = {id(r) for r in ordered}
    ordered += [r for r in rows if id(r) not in placed]  # unlinked: verify says where
    return chain.verify([{"record_id": r.record_id, "prev_hash": r.prev_hash, "hash": r.hash, "content": r.content}
                         for r in ordered])


def incident_chains(session: Session, incident_id: str) -> dict:
    timeline, tkp = timeline_chain(session, incident_id), tkp_chain(session, incident_id)
    return {"valid": timeline.valid and tkp.valid, "timeline": timeline.as_dict(), "tkp": tkp.as_dict()}
