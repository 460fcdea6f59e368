"""The words of notifications (services.notify.render): every template in Bahasa Indonesia and
English, SMS length, the neutral text of sensitive cases, the preview and the webhook body."""
from __future__ import annotations

import dataclasses
import json
import re

import pytest

from services.notify import domain as notify
from services.notify import render as r
from services.notify.domain import NotifyRules, Recipient, Subscriber
from tests.unit.test_notify_domain import (
    INC, KA_SPKT, LP, SENSITIVE, T0, FakeDirectory, assigned, opened, received,
)
from schemas.events import (
    AssistanceDecided, AssistanceEscalated, IncidentClosed, LetterSent, SttlpIssued, UnitArrived,
)

TEXT_TEMPLATES = [t for t in r.TEMPLATES if t != "webhook"]
SHORT = ("sms", "whatsapp")
GLUED = re.compile(r"[a-z)\]][.;:][A-Z]")  # "SELATAN.Terima": a template line break eaten by a block tag


def sample(template: str, language: str = "id", sensitive: bool = False, **context) -> notify.Notification:
    note = r.sample_notification(template, language=language, sensitive=sensitive)
    return dataclasses.replace(note, context={**note.context, **context}) if context else note


# --- every template, every language, every form -------------------------------------------------
def test_every_template_has_a_sample_and_its_files_in_both_languages():
    assert set(r.SAMPLES) == set(r.TEMPLATES) == set(notify.TEMPLATES)
    for template in TEXT_TEMPLATES:
        for language in ("id", "en"):
            for form in ("short", "email"):
                assert (r.TEMPLATE_DIR / f"{template}.{language}.{form}.j2").is_file(), (template, language, form)


@pytest.mark.parametrize("language", ["id", "en"])
@pytest.mark.parametrize("template", TEXT_TEMPLATES)
def test_every_template_renders_with_its_sample_in_every_form(template, language):
    # StrictUndefined: a name the template reads and the sample lacks fails here
    note = sample(template, language)
    email = r.render(note, "email")
    assert email.channel == "email" and email.subject and "\n" not in email.subject
    assert "{" not in email.text and "Subject:" not in email.text and email.text.strip()
    for channel in SHORT:
        message = r.render(note, channel)
        assert message.channel == channel and message.subject == ""
        assert "\n" not in message.text and not GLUED.search(message.text), message.text
        # an SMS is cut at 320 (two segments); WhatsApp takes the whole short text
        assert len(message.text) <= (r.SMS_LIMIT if channel == "sms" else 600), (template, language, channel)


@pytest.mark.parametrize("template", TEXT_TEMPLATES)
def test_english_is_english_and_indonesian_is_indonesian(template):
    id_text = r.render(sample(template, "id"), "sms").text
    en_text = r.render(sample(template, "en"), "sms").text
    assert id_text != en_text
    assert not any(w in en_text for w in ("Yth.", "Terima kasih", "Kepada"))


def test_a_language_without_templates_falls_back_to_indonesian():
    assert r.render(sample("receipt", "jv"), "sms").text == r.render(sample("receipt", "id"), "sms").text


def test_reporters_are_addressed_politely_and_thanked():
    text = r.render(sample("receipt"), "sms").text
    assert text.startswith("Yth. Bapak/Ibu Siti Rahmawati,") and "Terima kasih" in text
    assert r.render(sample("receipt", name=None), "sms").text.startswith("Yth. Bapak/Ibu Pelapor,")
    email = r.render(sample("sp2hp"), "email")
    assert email.text.startswith("Yth. Bapak/Ibu Siti Rahmawati,") and "Hormat kami" in email.text


# --- SMS length ---------------------------------------------------------------------------------
LONG = {"name": "Raden Ajeng " + "Kusumawardhani " * 12, "address": "Jl. " + "Panjang Sekali " * 30,
        "summary": "Ringkasan " * 200, "reason": "Alasan yang sangat panjang " * 20,
        "reference": "B/" + "9" * 120, "line": "Kejadian " * 60, "line_en": "Incident " * 60,
        "warning": "ditarik dari tugas pengawalan " * 10, "category_words": "kategori " * 20,
        "disposition_words": "hasil " * 30, "meaning": "arti " * 40}


@pytest.mark.parametrize("template", TEXT_TEMPLATES)
def test_an_sms_stays_within_320_characters_even_with_the_longest_free_text(template):
    context = {k: v for k, v in LONG.items() if k in r.SAMPLES[template]}
    for language in ("id", "en"):
        text = r.render(sample(template, language, **context), "sms").text
        assert len(text) <= r.SMS_LIMIT, (template, language, len(text))


def test_the_unit_short_text_carries_the_navigation_link_even_with_long_free_text():
    nav = r.SAMPLES["unit_assignment"]["nav_url"]
    for language in ("id", "en"):
        for channel in SHORT:
            assert nav in r.render(sample("unit_assignment", language), channel).text
        long = sample("unit_assignment", language, summary=LONG["summary"], address=LONG["address"],
                      warning=LONG["warning"])
        assert nav in r.render(long, "sms").text
    assert nav in r.render(sample("unit_assignment"), "email").text


# --- sensitive ------------------------------------------------------------------------------------
REPORTER_TEMPLATES = list(notify.REPORTER_TEMPLATES)
REVEALING = ("name", "category_words", "category_words_en", "summary", "address", "number", "lp_number",
             "reason", "reference", "meaning", "meaning_en", "disposition_words", "disposition_words_en",
             "incident_id")


@pytest.mark.parametrize("language", ["id", "en"])
@pytest.mark.parametrize("template", REPORTER_TEMPLATES)
def test_a_sensitive_phone_message_carries_only_the_tracking_code_and_a_neutral_text(template, language):
    note = sample(template, language, sensitive=True)
    revealing = [str(note.context[k]) for k in REVEALING if note.context.get(k)]
    assert revealing  # the sample has something to hide
    for channel in SHORT:
        text = r.render(note, channel).text
        assert "TRK-7Q2M9X" in text and len(text) <= r.SMS_LIMIT
        assert not [s for s in revealing if s in text], text
        assert "Rahmawati" not in text and "Melawai" not in text and "pencurian" not in text
    ordinary = r.render(sample(template, language), "sms").text
    assert ordinary != r.render(note, "sms").text


@pytest.mark.parametrize("template", REPORTER_TEMPLATES)
def test_a_sensitive_email_keeps_the_codes_but_not_the_category_or_place(template):
    hidden = {"category_words": "KATEGORI-RAHASIA", "address": "ALAMAT-RAHASIA"}
    email = r.render(sample(template, sensitive=True, **hidden), "email")
    assert "TRK-7Q2M9X" in email.text
    assert "RAHASIA" not in email.subject + email.text
    plain = r.render(sample(template, **hidden), "email")  # the ordinary email does say what and where
    assert "KATEGORI-RAHASIA" in plain.text and "ALAMAT-RAHASIA" in plain.text


def test_a_sensitive_planned_notification_renders_neutral_on_the_phone():
    note, = notify.plan("unit.arrived", UnitArrived(incident_id=SENSITIVE, unit_id="u-1", arrived_at=T0), "e-1",
                        FakeDirectory(), NotifyRules())
    assert note.sensitive
    text = r.render(note, "whatsapp").text
    assert text.startswith("Ada perkembangan atas laporan Anda (kode TRK-KDRT99)")
    assert "Dewi" not in text and "Gandaria" not in text and "kekerasan" not in text


# --- preview ----------------------------------------------------------------------------------------
def test_preview_renders_the_sample():
    text = r.preview("receipt")
    assert "TRK-7Q2M9X" in text and text == r.render(sample("receipt"), "sms").text
    email = r.preview("sp2hp", channel="email")
    assert email.startswith("Subject: SP2HP A2 - " + LP + "\n\nYth. Bapak/Ibu")
    assert "B/1234/XI/2026/Reskrim" in email
    assert "Dear Siti" in r.preview("receipt", language="en", channel="whatsapp")
    assert r.preview("receipt", sensitive=True).startswith("Laporan Anda telah kami terima dengan kode TRK-7Q2M9X")
    assert json.loads(r.preview("webhook"))["type"] == "unit.arrived"


def test_preview_of_an_unknown_template_names_the_known_ones():
    with pytest.raises(ValueError) as error:
        r.preview("tanda_terima")
    assert "tanda_terima" in str(error.value) and all(t in str(error.value) for t in r.TEMPLATES)
    with pytest.raises(ValueError):
        r.preview("receipt", channel="fax")


# --- the webhook ------------------------------------------------------------------------------------
def test_the_webhook_body_is_the_event_as_sorted_json():
    rules = NotifyRules(subscribers=(Subscriber("cc", "https://cc.example/hook", "k", ("*",)),))
    closed = IncidentClosed(incident_id=INC, disposition="lp_made", closed_at=T0, lp_number=LP)
    hook, = notify.plan("incident.closed", closed, "e-77", FakeDirectory(), rules)[-1:]
    assert hook.template == "webhook"
    message = r.render(hook, "webhook")
    assert message.channel == "webhook" and message.subject == ""
    body = json.loads(message.text)
    assert body["event_id"] == "e-77" and body["type"] == "incident.closed" and body["incident_id"] == INC
    assert body["data"]["lp_number"] == LP
    assert message.text == json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    with pytest.raises(ValueError):
        r.render(hook, "sms")


def test_a_channel_the_recipient_lacks_is_refused():
    note = dataclasses.replace(sample("receipt"), channels=("email",))
    with pytest.raises(ValueError):
        r.render(note, "sms")
    assert r.render(note, "email").subject


# --- what the domain plans renders ------------------------------------------------------------------
def _planned() -> list[notify.Notification]:
    directory = FakeDirectory()
    directory.incidents[INC] = dataclasses.replace(directory.incidents[INC], lp_number=LP)
    rules = NotifyRules(supervisors=(KA_SPKT, Recipient("supervisor", "en", email="cc@example.org", language="en")))
    events = [
        ("report.received", received()),
        ("unit.assigned", assigned()),
        ("unit.arrived", UnitArrived(incident_id=INC, unit_id="u-1", arrived_at=T0)),
        ("incident.closed", IncidentClosed(incident_id=INC, disposition="lp_made", closed_at=T0, lp_number=LP)),
        ("sttlp.issued", SttlpIssued(incident_id=INC, lp_number=LP, issued_at=T0)),
        ("legal.letter-sent", LetterSent(incident_id=INC, key="sp2hp-a1", code="A1", reference="B/1/XI/2026",
                                         sent_by="penyidik", sent_at=T0)),
        ("assistance.decided", AssistanceDecided(incident_id=INC, decision="decline", reason="Dokumen kurang.",
                                                 decided_by="Ipda Rudi", decided_at=T0)),
        ("assistance.escalated", AssistanceEscalated(incident_id=INC, why="declined", detail="Dokumen kurang",
                                                     escalated_at=T0)),
        ("incident.opened", opened("u-1")),
    ]
    return [n for i, (event_type, event) in enumerate(events)
            for n in notify.plan(event_type, event, f"e-{i}", directory, rules)]


def test_every_planned_notification_renders_on_every_channel_and_matches_its_sample():
    planned = _planned()
    assert {n.template for n in planned} == set(TEXT_TEMPLATES)
    for note in planned:
        assert set(note.context) == set(r.SAMPLES[note.template]), note.template
        for channel in note.channels:
            message = r.render(note, channel)
            assert message.text.strip()
            if channel == "sms":
                assert len(message.text) <= r.SMS_LIMIT


def test_times_are_shown_in_wib():
    assert r.waktu("2026-11-12T14:05:00+00:00") == "12 November 2026 pukul 21.05 WIB"
    assert r.when("2026-11-12T14:05:00+00:00") == "12 November 2026, 21:05 WIB"
    assert r.jam(T0.isoformat()) == "12/11 21.05 WIB"
    assert r.waktu(None) == "-"
