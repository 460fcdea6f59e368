"""Does an incident's record still hold? Its timeline and its TKP records are hash chains
(services/tkp/chain.py); these recompute every link from what the read model stores now.

    incident_chains(session, incident_id) -> {"valid", "timeline": {...}, "tkp": {...}}

Used by the API (the `chain` field of an incident, `chain_valid` of evidence) and by
`spkt verify incident <id>`.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from services.tkp import chain

from . import tables as t
from .projector import timeline_content


# Built once, read as plain rows: the incident page verifies both chains on every read, and
# building the statements and loading ORM objects cost more than the hashing (benchmarks/api.py).
_TIMELINE = (select(t.TimelineEntry.__table__).where(t.TimelineEntry.incident_id == bindparam("incident_id"))
             .order_by(t.TimelineEntry.seq, t.TimelineEntry.at))
_TKP_RECORDS = select(t.TkpRecord.__table__).where(t.TkpRecord.incident_id == bindparam("incident_id"))


def timeline_rows(session: Session, incident_id: str) -> Sequence:
    """The incident's timeline entries in chain order (the API shows them in this order too)."""
    return session.connection().execute(_TIMELINE, {"incident_id": incident_id}).all()


def timeline_chain(session: Session, incident_id: str, entries: Sequence | None = None) -> chain.ChainCheck:
    """`entries`: the timeline already read with timeline_rows, if the caller has it."""
    if entries is None:
        entries = timeline_rows(session, incident_id)
    return chain.verify([{"record_id": e.entry_id, "prev_hash": e.prev_hash or "", "hash": e.hash or "",
                          "content": timeline_content(e)} for e in entries])


def tkp_chain(session: Session, incident_id: str) -> chain.ChainCheck:
    """The tkp service's records in chain order (each names the one before it); a record whose
    predecessor is gone, or was changed, breaks the chain where it stands."""
    rows = session.connection().execute(_TKP_RECORDS, {"incident_id": incident_id}).all()
    after: dict[str, list] = {}
    for row in sorted(rows, key=lambda r: r.record_id):
        after.setdefault(row.prev_hash, []).append(row)
    ordered: list = []
    head = chain.GENESIS
    while after.get(head) and len(ordered) < len(rows):
        row = after[head].pop(0)
        ordered.append(row)
        head = row.hash
    placed = {id(r) for r in ordered}
    ordered += [r for r in rows if id(r) not in placed]  # unlinked: verify says where
    return chain.verify([{"record_id": r.record_id, "prev_hash": r.prev_hash, "hash": r.hash, "content": r.content}
                         for r in ordered])


def incident_chains(session: Session, incident_id: str, timeline_entries: Sequence | None = None) -> dict:
    timeline, tkp = timeline_chain(session, incident_id, timeline_entries), tkp_chain(session, incident_id)
    return {"valid": timeline.valid and tkp.valid, "timeline": timeline.as_dict(), "tkp": tkp.as_dict()}
