"""Intake rules. Pure: no Kafka, no faust, no HTTP, no SQL.

The walking skeleton opens one incident per report; triage, duplicates and jurisdiction come
with the intake issue.
"""
from __future__ import annotations

from schemas.envelope import derived_id
from schemas.events import IncidentOpened, ReportReceived

UNCLASSIFIED = "unclassified"
DEFAULT_PRIORITY = "P3"
SUMMARY_LENGTH = 160


def incident_number(incident_id: str, opened_at) -> str:
    """A number a person can read out on the radio: KJD-<date>-<6 characters of the id>."""
    return f"KJD-{opened_at:%Y%m%d}-{incident_id.replace('-', '')[:6].upper()}"


def summarise(description: str) -> str:
    text = " ".join(description.split())
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1].rstrip() + "…"


def open_incident(report: ReportReceived) -> IncidentOpened:
    # Derived from the report, so handling the same report twice opens the same incident.
    incident_id = derived_id("incident", report.report_id)
    opened_at = report.received_at
    return IncidentOpened(
        incident_id=incident_id,
        number=incident_number(incident_id, opened_at),
        report_ids=[report.report_id],
        category=report.category or UNCLASSIFIED,
        priority=DEFAULT_PRIORITY,
        summary=summarise(report.description),
        location=report.location,
        jurisdiction=None,
        opened_at=opened_at,
    )
