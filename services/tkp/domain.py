"""TKP rules. Pure: no Kafka, no faust, no HTTP, no SQL.

The skeleton holds the vocabulary and knows which incident events start or end scene work;
the TKP issue adds the checklists, the custody chain and closure.
"""
from __future__ import annotations

TPTKP_STEPS = (
    "arrival_reported", "victims_aided", "scene_secured", "police_line", "perpetrator_secured",
    "evidence_preserved", "witnesses_recorded", "handed_over",
)
OLAH_TKP_STEPS = ("team_arrived", "observation", "photographed", "sketched", "evidence_collected", "scene_released")
TURJAWALI_KINDS = ("pengaturan", "penjagaan", "pengawalan", "patroli")

SCENE_WORK = {"incident.opened": "scene work may start", "unit.assigned": "unit assigned", "incident.closed": "scene work ended"}


def scene_note(event_type: str) -> str | None:
    """What an incident event means for the scene, or None when it means nothing here."""
    return SCENE_WORK.get(event_type)
