"""The topic catalogue as a table: for `spkt topics list` and docs/topics.md (kept equal by a test)."""
from __future__ import annotations

from deploy.topics import plan
from spkt.settings import Settings


def _retention(ms: int) -> str:
    if ms < 0:
        return "forever"
    hours = ms / 3_600_000
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} d"


def catalogue_rows(settings: Settings) -> list[dict[str, str]]:
    return [
        {
            "name": p.spec.name,
            "key": p.spec.key,
            "partitions": str(p.partitions),
            "retention": _retention(p.retention_ms),
            "producers": ", ".join(p.spec.producers),
            "consumers": ", ".join(p.spec.consumers),
            "event types": ", ".join(p.spec.event_types) or "(later issues)",
        }
        for p in plan(settings)
    ]


def markdown_table(rows: list[dict[str, str]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row[h] for h in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"
