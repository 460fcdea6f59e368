"""`spkt dlq`: decoding dead letters, choosing them, showing them, and what replay refuses."""
import base64
import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from schemas import topics
from schemas.envelope import EnvelopeError
from schemas.registry import make_event
from services import dead_letters as dl
from services.streaming import DEAD_LETTER_VALUE_LIMIT, dead_letter

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc)


def message(value, key=b"polres-jaksel", topic=topics.REPORTS, partition=1, offset=42):
    return SimpleNamespace(value=value, key=key, topic=topic, partition=partition, offset=offset,
                           timestamp=NOW.timestamp())


def letter_of(value, *, service="intake", exc=None, key=b"polres-jaksel", topic=topics.REPORTS, partition=1,
              offset=42, at=NOW, at_offset=0) -> dl.DeadLetter:
    """The dead letter the services would write for this message, read back from its bytes."""
    out = dead_letter(service, message(value, key, topic, partition, offset), exc or EnvelopeError("not JSON: x"))
    env = out.envelope.model_copy(update={"data": {**out.envelope.data, "failed_at": at.isoformat()}})
    found = dl.decode_record(0, at_offset, env.to_bytes())
    assert isinstance(found, dl.DeadLetter), found
    return found


@pytest.fixture
def good(report):
    return make_event(report, source="/test")


# --- decoding ------------------------------------------------------------------------------------
def test_a_dead_letter_gives_back_the_original_bytes_and_key(good):
    raw = good.to_bytes()
    letter = letter_of(raw, exc=RuntimeError("database away"))
    assert dl.original_value(letter) == raw
    assert dl.original_key(letter) == b"polres-jaksel"
    assert letter.original == dl.Ref(topics.REPORTS, 1, 42)
    assert letter.data.error_kind == "handler_error" and letter.size == len(raw)
    assert dl.check_original(letter) is None


def test_a_value_that_was_not_utf8_comes_back_from_base64():
    raw = b"\xff\xfe\x00binary"
    letter = letter_of(raw)
    assert letter.data.original_value_encoding == "base64"
    assert dl.original_value(letter) == raw
    assert dl.check_original(letter).startswith("still unreadable: not JSON")


def test_a_keyless_message_stays_keyless():
    letter = letter_of(b"{not json", key=None)
    assert dl.original_key(letter) is None and letter.data.original_key is None


def test_a_truncated_original_is_refused_with_the_reason():
    letter = letter_of(b"x" * (DEAD_LETTER_VALUE_LIMIT + 10))
    assert letter.data.original_value_truncated
    with pytest.raises(dl.NotReplayable, match="cut at 64 KiB"):
        dl.original_value(letter)
    assert dl.original_value(letter, allow_truncated=True) == b"x" * DEAD_LETTER_VALUE_LIMIT
    [item] = dl.plan_replay([letter], force=True)  # even forced: the bytes are not all there
    assert item.refused and "cut at 64 KiB" in item.refused and item.value is None


def test_an_empty_message_has_nothing_to_replay():
    letter = letter_of(None, exc=EnvelopeError("empty message (no value)"))
    assert letter.size == 0 or letter.size is None
    # dead_letter keeps "" for a message without a value: replaying sends an empty value, which a
    # reader sets aside again; so it is refused unless forced.
    [item] = dl.plan_replay([letter])
    assert item.refused and "still unreadable" in item.refused


def test_records_that_are_not_dead_letters_are_told_apart(good):
    assert isinstance(dl.decode_record(0, 1, b"{nope"), dl.Unreadable)
    other = dl.decode_record(0, 2, good.to_bytes())
    assert isinstance(other, dl.Unreadable) and "not a dead letter: report.received" in other.reason


def test_bad_base64_is_refused_not_sent():
    letter = letter_of(b"\xff")
    broken = dl.DeadLetter(letter.partition, letter.offset, letter.event_id,
                           letter.data.model_copy(update={"original_value": "***"}))
    with pytest.raises(dl.NotReplayable, match="not valid base64"):
        dl.original_value(broken)


# --- choosing ------------------------------------------------------------------------------------
def test_parse_since_takes_durations_and_iso_times():
    assert dl.parse_since("1h", NOW) == NOW - timedelta(hours=1)
    assert dl.parse_since("30m", NOW) == NOW - timedelta(minutes=30)
    assert dl.parse_since("2d", NOW) == NOW - timedelta(days=2)
    assert dl.parse_since("2026-11-28T06:00", NOW) == datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="duration"):
        dl.parse_since("yesterday", NOW)


def test_parse_ref():
    assert dl.parse_ref("spkt.reports:2:17") == dl.Ref("spkt.reports", 2, 17)
    assert str(dl.Ref("spkt.reports", 2, 17)) == "spkt.reports:2:17"
    for bad in ("spkt.reports:2", "spkt.reports:a:1", ":1:2", "spkt.reports:-1:2"):
        with pytest.raises(ValueError):
            dl.parse_ref(bad)


def test_filter_by_topic_service_time_and_original():
    a = letter_of(b"{a", service="intake", offset=1, at=NOW - timedelta(hours=3))
    b = letter_of(b"{b", service="projection", offset=1, at=NOW - timedelta(minutes=5))
    c = letter_of(b"{c", service="dispatch", topic=topics.INCIDENTS, offset=9, at=NOW)
    letters = [a, b, c]
    assert dl.select(letters, dl.Filter(topic=topics.REPORTS)) == [a, b]
    assert dl.select(letters, dl.Filter(service="dispatch")) == [c]
    assert dl.select(letters, dl.Filter(since=NOW - timedelta(hours=1))) == [b, c]
    assert dl.select(letters, dl.Filter(refs=frozenset({dl.Ref(topics.REPORTS, 1, 1)}))) == [a, b]
    assert dl.select(letters, dl.Filter(), limit=2) == [b, c]
    assert dl.select(letters, dl.Filter(), limit=10) == letters
    assert dl.select(letters, dl.Filter(), limit=0) == []


def test_replay_plans_one_send_per_original_message(good):
    raw = good.to_bytes()
    by_two = [letter_of(raw, service="intake", exc=RuntimeError("boom")),
              letter_of(raw, service="projection", exc=RuntimeError("db locked"))]
    poison = letter_of(b"{not json", offset=43)
    plan = dl.plan_replay(by_two + [poison])
    assert [item.original for item in plan] == [dl.Ref(topics.REPORTS, 1, 42), dl.Ref(topics.REPORTS, 1, 43)]
    first, second = plan
    assert first.refused is None and first.value == raw and first.key == b"polres-jaksel"
    assert first.services == ["intake", "projection"] and first.reasons == ["intake: boom", "projection: db locked"]
    assert second.refused.startswith("still unreadable: not JSON")
    [forced] = [i for i in dl.plan_replay([poison], force=True)]
    assert forced.refused is None and forced.value == b"{not json"


# --- showing -------------------------------------------------------------------------------------
def test_json_line_and_row(good):
    letter = letter_of(b"{not json " + b"y" * 300, key=None)
    doc = json.loads(dl.json_line(letter))
    assert doc["service"] == "intake" and doc["original_topic"] == topics.REPORTS
    assert doc["original_partition"] == 1 and doc["original_offset"] == 42 and doc["original_key"] is None
    assert doc["original"] == "spkt.reports:1:42" and doc["error_kind"] == "invalid_message"
    assert doc["reason"] == "not JSON: x" and doc["size"] == 310 and doc["truncated"] is False
    assert doc["dead_letter"] == "spkt.dead-letters:0:0" and doc["failed_at"] == NOW.isoformat()
    when, service, original, key, kind, reason, size = dl.row(letter)
    assert (when, service, original, key, kind, size) == ("2026-11-28 07:00:00", "intake", "spkt.reports:1:42", "-",
                                                          "invalid_message", "310")
    long = letter_of(b"{", exc=EnvelopeError("r" * 500))
    assert len(dl.row(long, reason_width=40)[5]) == 40 and dl.row(long, reason_width=40)[5].endswith("…")
    cut = letter_of(b"x" * (DEAD_LETTER_VALUE_LIMIT + 1))
    assert dl.row(cut)[6] == f"{DEAD_LETTER_VALUE_LIMIT:,}+ (cut)"


# --- the commands, with Kafka replaced ------------------------------------------------------------
@pytest.fixture
def cli(monkeypatch, good):
    from spkt import cli_dlq

    letters = [letter_of(good.to_bytes(), exc=RuntimeError("boom"), offset=7),
               letter_of(b"{not json", offset=8, service="notify"),
               letter_of(b"x" * (DEAD_LETTER_VALUE_LIMIT + 1), offset=9)]
    sent = []
    monkeypatch.setattr(dl, "read_dead_letters", lambda bootstrap: (letters, []))

    def republish(bootstrap, items):
        for item in items:
            sent.append(item)
            yield item, dl.Ref(item.original.topic, item.original.partition, 100 + len(sent))

    monkeypatch.setattr(dl, "republish", republish)
    from spkt.cli import app

    return SimpleNamespace(app=app, sent=sent, runner=CliRunner(), module=cli_dlq)


def test_list_json_prints_one_object_per_line(cli):
    result = cli.runner.invoke(cli.app, ["dlq", "list", "--json", "--topic", topics.REPORTS])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [d["original_offset"] for d in lines] == [7, 8, 9]
    result = cli.runner.invoke(cli.app, ["dlq", "list", "--json", "--service", "notify"])
    assert [json.loads(line)["original_offset"] for line in result.output.splitlines()] == [8]


def test_list_table(cli):
    result = cli.runner.invoke(cli.app, ["dlq", "list", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "3 dead letters" not in result.output and "2 dead letters of 2 messages" in result.output


def test_replay_dry_run_sends_nothing_and_says_why_some_are_refused(cli):
    result = cli.runner.invoke(cli.app, ["dlq", "replay", "--topic", topics.REPORTS, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert cli.sent == []
    assert "1 of 3 messages would be re-driven" in result.output
    assert "cut at 64 KiB" in result.output and "still unreadable" in result.output


def test_replay_asks_first_and_sends_the_chosen_original(cli, good):
    result = cli.runner.invoke(cli.app, ["dlq", "replay", "--offset-of", f"{topics.REPORTS}:1:7"], input="n\n")
    assert result.exit_code == 1 and cli.sent == []
    result = cli.runner.invoke(cli.app, ["dlq", "replay", "--offset-of", f"{topics.REPORTS}:1:7", "--yes"])
    assert result.exit_code == 0, result.output
    assert [(i.original, i.value, i.key) for i in cli.sent] == [(dl.Ref(topics.REPORTS, 1, 7), good.to_bytes(),
                                                                 b"polres-jaksel")]
    assert "re-driven spkt.reports:1:7 -> spkt.reports:1:101" in result.output


def test_replay_refuses_a_truncated_one_clearly(cli):
    result = cli.runner.invoke(cli.app, ["dlq", "replay", "--offset-of", f"{topics.REPORTS}:1:9", "--yes"])
    assert result.exit_code == 1 and cli.sent == []
    assert "cut at 64 KiB" in result.output and "nothing to re-drive" in result.output


def test_replay_wants_a_choice_and_valid_refs(cli):
    assert cli.runner.invoke(cli.app, ["dlq", "replay", "--yes"]).exit_code == 2
    result = cli.runner.invoke(cli.app, ["dlq", "replay", "--offset-of", "spkt.reports:x:1"])
    assert result.exit_code == 2 and "must be numbers" in result.output
    assert cli.sent == []


def test_the_dead_letter_value_survives_base64_roundtrip():
    raw = bytes(range(256))
    letter = letter_of(raw)
    assert base64.b64decode(letter.data.original_value) == raw == dl.original_value(letter)
