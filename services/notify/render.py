"""The words of a notification, from Jinja2 templates. Pure: stdlib and jinja2; no I/O but reading
the template files.

Templates live in services/notify/templates/, one file per template, language and form:
`<template>.<language>.<form>.j2`, where the form is `short` (SMS and WhatsApp) or `email`. An
email template's first line is `Subject: ...`, then a blank line, then the body. Bahasa
Indonesia is the language of record; a language without its own file falls back to it.

Two guards do not depend on the template writer:

- A sensitive notification over SMS or WhatsApp renders `neutral.<language>.short.j2` with the
  tracking code alone: a shared or watched phone learns nothing of the case, whatever the
  milestone's own template says.
- An SMS stays within 320 characters (two concatenated GSM-7 segments); free text is clipped in
  the templates and the whole is cut here as the last resort. Short texts use only GSM-7
  characters ("..." not an ellipsis) so a segment keeps its 160 characters.

The webhook is JSON, not words: its body is the notification's context with sorted keys.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from .domain import (
    ASSISTANCE_DECISION, CHANNELS, INCIDENT_CLOSED, RECEIPT, SP2HP, STTLP, SUPERVISOR_ALERT, TEMPLATES,
    UNIT_ASSIGNMENT, UNIT_ON_SCENE, UNIT_ON_THE_WAY, WEBHOOK, Notification, Recipient,
)

__all__ = ["Message", "render", "preview", "SAMPLES", "TEMPLATES", "SMS_LIMIT", "TEMPLATE_DIR"]

TEMPLATE_DIR = Path(__file__).with_name("templates")
SMS_LIMIT = 320
DEFAULT_LANGUAGE = "id"
NEUTRAL = "neutral"  # the sensitive short text; not a template of its own in the plan

# Times are shown in WIB, the time of the Jakarta desks this serves first; the ISO string in the
# context keeps the exact instant.
WIB = timezone(timedelta(hours=7), "WIB")
_BULAN = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
          "November", "Desember")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


@dataclass(frozen=True)
class Message:
    channel: str  # "email" | "sms" | "whatsapp" | "webhook"
    subject: str  # "" for sms/whatsapp/webhook
    text: str  # the body (for webhook: the JSON body as a str, sorted keys)


# --- filters ------------------------------------------------------------------------------------
def _local(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(WIB)


def waktu(value: str | datetime | None) -> str:
    """`12 November 2026 pukul 21.05 WIB`"""
    at = _local(value)
    return f"{at.day} {_BULAN[at.month - 1]} {at.year} pukul {at:%H.%M} WIB" if at else "-"


def when(value: str | datetime | None) -> str:
    """`12 November 2026, 21:05 WIB`"""
    at = _local(value)
    return f"{at.day} {_MONTHS[at.month - 1]} {at.year}, {at:%H:%M} WIB" if at else "-"


def jam(value: str | datetime | None) -> str:
    """`12/11 21.05 WIB`: a time short enough for an SMS."""
    at = _local(value)
    return f"{at:%d/%m %H.%M} WIB" if at else "-"


def clip(value: object, limit: int = 80) -> str:
    """At most `limit` characters on one line, cut at a word with "..." (GSM-7, unlike an ellipsis)."""
    text = " ".join(str(value if value is not None else "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 3]
    if " " in cut[limit // 2:]:
        cut = cut[:cut.rindex(" ")]
    return cut.rstrip(" ,.;:") + "..."


def sentence(value: object) -> str:
    """Ended by one full stop (or its own "...", "!" or "?"): free text typed with or without one."""
    text = str(value if value is not None else "").rstrip().rstrip(",;:").rstrip()
    return text if not text or text.endswith((".", "!", "?")) else text + "."


_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR), autoescape=False, undefined=StrictUndefined,
    keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True,
)
_env.filters.update(waktu=waktu, when=when, jam=jam, clip=clip, sentence=sentence)


# --- rendering ----------------------------------------------------------------------------------
def _template(name: str, language: str, form: str):
    try:
        return _env.get_template(f"{name}.{language}.{form}.j2")
    except TemplateNotFound:
        if language == DEFAULT_LANGUAGE:
            raise
        return _env.get_template(f"{name}.{DEFAULT_LANGUAGE}.{form}.j2")


def _split_email(template: str, text: str) -> tuple[str, str]:
    first, _, rest = text.partition("\n")
    if not first.startswith("Subject:"):
        raise ValueError(f"email template {template} must start with 'Subject: ...'")
    return first[len("Subject:"):].strip(), rest.strip("\n") + "\n"


def render(notification: Notification, channel: str) -> Message:
    """The message for one channel of the notification. ValueError for a channel it does not have."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    if channel not in notification.channels:
        raise ValueError(f"notification {notification.notification_id} has no {channel} channel "
                         f"(it has {', '.join(notification.channels) or 'none'})")
    if channel == "webhook" or notification.template == WEBHOOK:
        if channel != "webhook":
            raise ValueError(f"template {WEBHOOK} renders only for the webhook channel")
        body = json.dumps(notification.context, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return Message("webhook", "", body)
    language = notification.recipient.language or DEFAULT_LANGUAGE
    form = "email" if channel == "email" else "short"
    name, context = notification.template, dict(notification.context)
    if notification.sensitive and form == "short":
        # Only the tracking code crosses into the neutral text: nothing else can leak from it.
        name, context = NEUTRAL, {"tracking_code": context.get("tracking_code"),
                                  "kind": "receipt" if notification.template == RECEIPT else "update"}
    context.update(sensitive=notification.sensitive, channel=channel, language=language)
    text = _template(name, language, form).render(context)
    if form == "email":
        subject, body = _split_email(name, text)
        return Message(channel, subject, body)
    text = " ".join(text.split())  # one paragraph: template line breaks are for the writer
    if channel == "sms" and len(text) > SMS_LIMIT:
        text = clip(text, SMS_LIMIT)
    return Message(channel, "", text)


# --- samples and preview --------------------------------------------------------------------------
_AT = "2026-11-12T14:05:00+00:00"  # 21.05 WIB
_LP = "LP/B/123/XI/2026/SPKT/POLRES METRO JAKARTA SELATAN"
_INCIDENT = {
    "incident_id": "5f0c1a2e-7b3d-4e8f-9a10-2b3c4d5e6f70",
    "number": "JS/2026/004512",
    "category": "street_robbery",
    "category_words": "pencurian dengan kekerasan",
    "category_words_en": "robbery",
    "address": "Jl. Melawai Raya No. 12, Kebayoran Baru, Jakarta Selatan",
    "lp_number": None,
}
_REPORTER = {"report_id": "3b9a4f0e-1111-4a2b-9c3d-000000000001", "tracking_code": "TRK-7Q2M9X",
             "name": "Siti Rahmawati"}

SAMPLES: dict[str, dict] = {
    RECEIPT: {
        **_REPORTER, "received_at": _AT, "category": "street_robbery", "category_words": "pencurian dengan kekerasan",
        "category_words_en": "robbery", "address": "Jl. Melawai Raya No. 12, Kebayoran Baru, Jakarta Selatan",
    },
    UNIT_ON_THE_WAY: {**_INCIDENT, **_REPORTER, "assigned_at": _AT},
    UNIT_ON_SCENE: {**_INCIDENT, **_REPORTER, "arrived_at": "2026-11-12T14:13:00+00:00"},
    INCIDENT_CLOSED: {
        **_INCIDENT, **_REPORTER, "lp_number": _LP, "disposition": "lp_made",
        "disposition_words": "dibuatkan Laporan Polisi untuk ditindaklanjuti oleh penyidik",
        "disposition_words_en": "a police report (LP) was made and passed to investigators",
        "closed_at": "2026-11-12T17:40:00+00:00",
    },
    STTLP: {**_INCIDENT, **_REPORTER, "lp_number": _LP, "issued_at": "2026-11-12T17:45:00+00:00"},
    SP2HP: {
        **_INCIDENT, **_REPORTER, "lp_number": _LP, "code": "A2",
        "reference": "B/1234/XI/2026/Reskrim",
        "meaning": "perkara Anda sedang dalam tahap penyelidikan",
        "meaning_en": "your case is at the inquiry stage (penyelidikan)",
        "sent_at": "2026-11-20T03:00:00+00:00",
    },
    ASSISTANCE_DECISION: {
        **_INCIDENT, **_REPORTER, "category": "assistance_request", "category_words": "permintaan pendampingan",
        "category_words_en": "request for assistance", "decision": "decline",
        "decision_words": "tidak dapat dipenuhi", "decision_words_en": "declined",
        "reason": "Dokumen kepemilikan kendaraan belum dapat ditunjukkan; silakan datang ke SPKT dengan BPKB dan STNK.",
        "decided_at": _AT,
    },
    UNIT_ASSIGNMENT: {
        **_INCIDENT, "unit_id": "unit-js-07", "callsign": "SABHARA 07",
        "summary": "Korban dijambret dua orang bermotor, tas berisi ponsel dan dompet dibawa lari ke arah Blok M.",
        "lat": -6.244100, "lon": 106.800100,
        "nav_url": "https://www.google.com/maps/dir/?api=1&destination=-6.244100,106.800100",
        "assignment_id": "asg-0001", "assigned_at": _AT, "warning": None,
    },
    SUPERVISOR_ALERT: {
        **_INCIDENT, "category": "assistance_request", "category_words": "permintaan pendampingan",
        "category_words_en": "request for assistance", "event_type": "assistance.escalated", "priority": "P1",
        "line": "Permintaan pendampingan kejadian JS/2026/004512 DITOLAK petugas: dokumen kendaraan tidak lengkap",
        "line_en": "Assistance request of incident JS/2026/004512 was DECLINED: dokumen kendaraan tidak lengkap",
        "at": _AT,
        "nav_url": "https://www.google.com/maps/dir/?api=1&destination=-6.244100,106.800100",
    },
    WEBHOOK: {
        "type": "unit.arrived", "event_id": "0b7e1c52-8a61-4f0e-b1d2-3c4d5e6f7a80",
        "incident_id": "5f0c1a2e-7b3d-4e8f-9a10-2b3c4d5e6f70",
        "data": {"incident_id": "5f0c1a2e-7b3d-4e8f-9a10-2b3c4d5e6f70", "unit_id": "unit-js-07",
                 "assignment_id": "asg-0001", "arrived_at": "2026-11-12T14:13:00Z"},
    },
}
if set(SAMPLES) != set(TEMPLATES):  # every template needs its sample, for preview and the tests
    raise RuntimeError(f"templates without a sample: {sorted(set(TEMPLATES) - set(SAMPLES))}")

_AUDIENCE = {UNIT_ASSIGNMENT: "unit", SUPERVISOR_ALERT: "supervisor", WEBHOOK: "subscriber"}


def sample_notification(template: str, *, language: str = "id", sensitive: bool = False) -> Notification:
    """A notification of `template` with its sample context, reachable over every channel it may use."""
    if template not in SAMPLES:
        raise ValueError(f"unknown template {template!r}; known: {', '.join(TEMPLATES)}")
    kind = _AUDIENCE.get(template, "reporter")
    if kind == "subscriber":
        recipient = Recipient("subscriber", "contoh", url="https://example.org/spkt-hook", secret="rahasia")
        channels: tuple[str, ...] = ("webhook",)
    else:
        recipient = Recipient(kind, "contoh", email="siti.rahmawati@example.co.id", phone="+6281234567890",
                              language=language)
        channels = ("email", "whatsapp", "sms")
    return Notification(
        notification_id="contoh", template=template, recipient=recipient, channels=channels, event_id="contoh",
        event_type="contoh", incident_id=SAMPLES[template].get("incident_id"), context=SAMPLES[template],
        sensitive=sensitive,
    )


def preview(template: str, *, language: str = "id", channel: str = "sms", sensitive: bool = False) -> str:
    """The template rendered with its sample context, for `spkt notify preview`.

    Email as `Subject: ...`, a blank line and the body; other channels as the text. The webhook
    has one form, its JSON body, whatever channel is asked.
    """
    note = sample_notification(template, language=language, sensitive=sensitive)
    if template == WEBHOOK:
        channel = "webhook"
    message = render(note, channel)
    return f"Subject: {message.subject}\n\n{message.text}" if channel == "email" else message.text
