"""Notification rules. Pure: no Kafka, no faust, no HTTP, no SQL.

The skeleton decides the reporter's receipt; channels, templates and the outbox come with the
notify issue.
"""
from __future__ import annotations

from dataclasses import dataclass

from schemas.envelope import derived_id
from schemas.events import ReportReceived


@dataclass(frozen=True)
class Notification:
    notification_id: str
    recipient: str
    template: str
    text: str


def receipt(event_id: str, report: ReportReceived) -> Notification | None:
    """The reporter's receipt with the tracking code; None when there is nobody to tell."""
    if not report.reporter.phone:
        return None
    template = "tanda_terima_laporan"
    return Notification(
        # One id per event, recipient and template: a re-processed event never notifies twice.
        notification_id=derived_id("notification", event_id, report.reporter.phone, template),
        recipient=report.reporter.phone,
        template=template,
        text=(f"Laporan Anda telah kami terima. Kode pelacakan: {report.tracking_code}. "
              "Pantau perkembangannya dengan kode ini."),
    )
