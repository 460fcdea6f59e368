"""Poison messages on every topic a service consumes: each lands on spkt.dead-letters with its
reason, from every service that reads the topic, and the services keep going.

The whole stack runs on the test broker. For each consumed topic of the catalogue (spkt.dead-letters
aside) and each kind of poison, one message is produced; then, for each (topic, kind, service that
reads the topic), a `message.dead-lettered` must name the service, the original topic, partition and
offset and a readable reason. A message without a key but otherwise valid is handled (no service
needs the key: it only places the message on a partition), so for it each service must have
committed past it with no dead letter. Afterwards a good report still goes through every service,
each consumer group reaches the end of its topics, no process restarted and the whole-topic
readers (dispatch's unit board, notify's directory, the API's live stream) never failed.
Then `spkt dlq list` shows the dead letters and `spkt dlq replay` re-drives a valid event.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from deploy.stack import Stack, settings_environment
from deploy.topics import admin_client
from schemas import events as ev
from schemas import topics
from schemas.envelope import MAX_EVENT_BYTES, utcnow
from schemas.registry import make_event, parse
from services.api.auth import Role
from services.projection.rebuild import READ_MODEL_TOPICS
from tests.support import api_client, events_on, running_system, wait_for

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]

# What each service's consumer group reads: the raw_topic(...) of its agents (services/*/app.py).
# (schemas/topics.py's `consumers` differs in two places: intake's clock also reads spkt.closures,
# and dispatch reads spkt.turjawali only through its unit board, outside its group.)
SUBSCRIBED: dict[str, tuple[str, ...]] = {
    "intake": (topics.REPORTS, topics.COMMANDS, topics.INCIDENTS, topics.ASSIGNMENTS, topics.CLOSURES),
    "dispatch": (topics.UNIT_COMMANDS, topics.UNIT_STATUS, topics.INCIDENTS, topics.ASSIGNMENTS, topics.CLOSURES),
    "tkp": (topics.COMMANDS, topics.INCIDENTS, topics.ASSIGNMENTS, topics.CLOSURES, topics.TKP, topics.TURJAWALI),
    "notify": (topics.REPORTS, topics.INCIDENTS, topics.ASSIGNMENTS, topics.CLOSURES, topics.TKP, topics.TURJAWALI,
               topics.NOTIFICATIONS),
    "projection": READ_MODEL_TOPICS,
}
CONSUMED = tuple(spec.name for spec in topics.CATALOGUE
                 if spec.name != topics.DEAD_LETTERS and any(spec.name in t for t in SUBSCRIBED.values()))
# Whole-topic readers outside the groups (services/feeds.py, services/api/live.py): they skip
# what they cannot read; here they must only not fail.
FEED_FAILURES = ("feed failed, restarting", "live stream reader failed")

KINDS = ("malformed JSON", "not an envelope", "unknown type", "wrong schema version", "oversized", "empty value",
         "no key")
KEYLESS = "no key"


def consumers_of(topic: str) -> tuple[str, ...]:
    return tuple(s for s, subscribed in SUBSCRIBED.items() if topic in subscribed)


def expected_reason(topic: str, kind: str) -> str:
    return {
        "malformed JSON": "not JSON",
        "not an envelope": "not a CloudEvents envelope",
        "unknown type": "unknown event type 'poison.unknown-type'",
        "wrong schema version": f"unsupported schema 'urn:spkt:{_type_of(topic)}:v99'",
        "oversized": f"exceeds the limit of {MAX_EVENT_BYTES}",
        "empty value": "empty message (no value)",
    }[kind]


def _type_of(topic: str) -> str:
    return topics.BY_NAME[topic].event_types[0]


def _raw_envelope(**fields) -> bytes:
    doc = {"specversion": "1.0", "id": f"poison-{uuid.uuid4()}", "source": "/test/poison", "type": "report.received",
           "time": utcnow().isoformat(), "datacontenttype": "application/json", "data": {}}
    doc.update(fields)
    return json.dumps(doc).encode()


# Far from the other tests' scenes (Jakarta), so nothing here meets their incidents or units.
BOGOR, BEKASI, TANGERANG = (-6.5950, 106.8166), (-6.2383, 106.9756), (-6.1783, 106.6319)


def a_report(where: tuple[float, float], what: str) -> ev.ReportReceived:
    return ev.ReportReceived(
        report_id=f"poison-{what}-{RUN}", tracking_code=f"SPKT-{RUN[:4].upper()}-{what[:4].upper():X<4}",
        channel="phone_110", reporter=ev.Reporter(name="Uji"), description=f"Uji pesan beracun ({what}): kaca mobil pecah",
        location=ev.Location(lat=where[0], lon=where[1], address="Jl. Uji"), received_at=utcnow(),
        area="poison-area")


def keyless_event(topic: str) -> ev.EventData:
    """A valid event for `topic` that changes nothing anyone else looks at (its ids are this run's)."""
    now = utcnow()
    incident, unit, duty = f"poison-inc-{RUN}", f"poison-unit-{RUN}", f"poison-duty-{RUN}"
    return {
        topics.REPORTS: lambda: a_report(BOGOR, "keyless"),
        topics.INCIDENTS: lambda: ev.IncidentMarkedShareable(incident_id=incident, marked_by="test", marked_at=now),
        topics.ASSIGNMENTS: lambda: ev.RecommendationRequested(request_id=f"poison-req-{RUN}", incident_id=incident,
                                                               requested_by="test", requested_at=now),
        topics.UNIT_STATUS: lambda: ev.UnitStatusChanged(unit_id=unit, status="off_duty", changed_at=now),
        topics.UNIT_POSITIONS: lambda: ev.UnitPositionReported(unit_id=unit, lat=BOGOR[0], lon=BOGOR[1], at=now),
        topics.TKP: lambda: ev.LegalDeadlineOverdue(incident_id=incident, key="sp2hp-a1", code="A1", words="uji",
                                                    due_at=now - timedelta(days=1), noticed_at=now),
        topics.TURJAWALI: lambda: ev.DutyCheckedIn(duty_id=duty, unit_id=unit, at=now),
        topics.CLOSURES: lambda: ev.SttlpIssued(incident_id=incident, lp_number=f"LP/POISON/{RUN}", issued_at=now),
        topics.NOTIFICATIONS: lambda: ev.NotificationSent(
            notification_id=f"poison-n-{RUN}", template="receipt", recipient_kind="reporter", recipient="…0000",
            channel="sms", attempts=1, cause_event_id=f"poison-{RUN}", sent_at=now),
        topics.COMMANDS: lambda: ev.RecordLetter(command_id=f"poison-cmd-{RUN}", incident_id=incident, key="sp2hp-a1",
                                                 reference="B/1/POISON", sent_by="test", sent_at=now),
        topics.UNIT_COMMANDS: lambda: ev.ChangeUnitStatus(command_id=f"poison-ucmd-{RUN}", unit_id=unit,
                                                          status="available", requested_by="test", requested_at=now),
    }[topic]()


def poison(topic: str, kind: str) -> tuple[bytes | None, bytes | None, str | None]:
    """(key, value, event id if valid) of one poison message of `kind` for `topic`."""
    key = f"poison-{RUN}".encode()
    if kind == "malformed JSON":
        return key, b"{not json", None
    if kind == "not an envelope":
        return key, json.dumps({"hello": "poison", "topic": topic}).encode(), None
    if kind == "unknown type":
        return key, _raw_envelope(type="poison.unknown-type"), None
    if kind == "wrong schema version":
        return key, _raw_envelope(type=_type_of(topic), dataschema=f"urn:spkt:{_type_of(topic)}:v99"), None
    if kind == "oversized":
        return key, _raw_envelope(type=_type_of(topic), data={"padding": "x" * (MAX_EVENT_BYTES + 1024)}), None
    if kind == "empty value":
        return key, None, None
    envelope = make_event(keyless_event(topic), source="/test/poison")
    assert topics.topic_for(envelope.type) == topic
    return None, envelope.to_bytes(), envelope.id


# --- reading the broker ----------------------------------------------------------------------------
class DeadLetters:
    """Follows spkt.dead-letters from the beginning (no group): (service, topic, partition, offset) -> data."""

    def __init__(self, settings) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap.split(","), enable_auto_commit=False,
                                      group_id=None)
        parts = [TopicPartition(topics.DEAD_LETTERS, p)
                 for p in self.consumer.partitions_for_topic(topics.DEAD_LETTERS) or ()]
        self.consumer.assign(parts)
        self.consumer.seek_to_beginning(*parts)
        self.parts = parts
        self.found: dict[tuple[str, str, int, int], dict] = {}

    def read(self) -> dict:
        ends = self.consumer.end_offsets(self.parts)
        while any(self.consumer.position(tp) < ends[tp] for tp in self.parts):
            for records in self.consumer.poll(timeout_ms=1000).values():
                for record in records:
                    try:
                        envelope, data = parse(record.value)
                    except ValueError:
                        continue
                    if isinstance(data, ev.MessageDeadLettered):
                        d = envelope.data
                        self.found[(d["service"], d["original_topic"], d["original_partition"],
                                    d["original_offset"])] = d
        return self.found

    def close(self) -> None:
        self.consumer.close()


def committed(settings, service: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The group's committed offsets; a partition it never committed counts from its first offset
    (a bounded topic may have nothing left to handle)."""
    admin = admin_client(settings)
    try:
        found = {}
        for group in topics.groups_of(service):  # the projection reads GPS positions with a group apart
            found.update({tp: o for tp, o in admin.list_group_offsets({group: tps}).get(group, {}).items()
                          if o.offset >= 0})
    finally:
        admin.close()
    out = {tp: found[tp].offset for tp in tps if tp in found and found[tp].offset >= 0}
    if len(out) < len(tps):
        consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap.split(","), group_id=None)
        try:
            out.update({tp: o for tp, o in consumer.beginning_offsets([tp for tp in tps if tp not in out]).items()})
        finally:
            consumer.close()
    return out


def end_offsets(settings, names) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap.split(","), group_id=None)
    try:
        tps = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()]
        return consumer.end_offsets(tps)
    finally:
        consumer.close()


def caught_up(settings, ends: dict[TopicPartition, int]) -> dict[str, list]:
    """Per service, the partitions of its topics its group has not yet committed up to `ends`."""
    behind = {}
    for service, subscribed in SUBSCRIBED.items():
        tps = [tp for tp in ends if tp.topic in subscribed]
        now = committed(settings, service, tps)
        late = [f"{tp.topic}:{tp.partition} {now[tp]}<{ends[tp]}" for tp in tps if now[tp] < ends[tp]]
        if late:
            behind[service] = late
    return behind


# --- the run ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def system(kafka_settings, tmp_path_factory):
    with running_system(kafka_settings, tmp_path_factory.mktemp("poison")) as settings:
        stack = Stack(settings)
        yield settings, stack, {p.name: p.pid for p in stack.processes()}


@pytest.fixture(scope="module")
def poisoned(system):
    """Every kind of poison on every consumed topic: (topic, kind) -> (partition, offset, event id)."""
    settings, _, _ = system
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all",
                             max_request_size=2 * 1024 * 1024)
    sent = {}
    try:
        for topic in CONSUMED:
            for kind in KINDS:
                key, value, event_id = poison(topic, kind)
                meta = producer.send(topic, key=key, value=value).get(timeout=30)  # the broker takes all (< 1 MB)
                sent[(topic, kind)] = (meta.partition, meta.offset, event_id)
    finally:
        producer.close()
    return sent


def test_every_poison_kind_is_dead_lettered_by_every_consumer_and_the_services_keep_going(system, poisoned):
    settings, stack, pids_before = system
    expected = {(service, topic, *poisoned[(topic, kind)][:2]): (topic, kind)
                for topic in CONSUMED for kind in KINDS if kind != KEYLESS for service in consumers_of(topic)}
    letters = DeadLetters(settings)
    try:
        def all_there():
            now = letters.read()
            return now if all(key in now for key in expected) else None

        try:
            found = wait_for(all_there, timeout=90, interval=1.0, what=f"{len(expected)} dead letters")
        except AssertionError:
            missing = sorted(set(expected) - set(letters.found))
            raise AssertionError(f"{len(missing)} of {len(expected)} dead letters missing, e.g. {missing[:10]}") from None

        # Each (topic, kind, consuming service): a dead letter with the reason, nothing else.
        table: dict[tuple[str, str], list[str]] = {}
        for (service, topic, partition, offset), (_, kind) in expected.items():
            d = found[(service, topic, partition, offset)]
            assert expected_reason(topic, kind) in d["reason"], (service, topic, kind, d["reason"])
            assert d["error_kind"] == "invalid_message", (service, topic, kind, d)
            assert d["original_key"] == f"poison-{RUN}"
            if kind == "oversized":
                assert d["original_value_truncated"] is True
            table.setdefault((topic, kind), []).append(service)

        # Without a key but valid: handled by each consumer (committed past it), never set aside.
        keyless = {(topic, *poisoned[(topic, KEYLESS)][:2]) for topic in CONSUMED}
        for topic, partition, offset in sorted(keyless):
            tp = TopicPartition(topic, partition)
            for service in consumers_of(topic):
                wait_for(lambda: committed(settings, service, [tp])[tp] > offset, timeout=60, interval=0.5,
                         what=f"{service} handled the keyless event at {topic}:{partition}:{offset}")
            table[(topic, KEYLESS)] = [f"handled: {', '.join(consumers_of(topic))}"]
        letters.read()
        wrongly = [key for key in letters.found if key[1:] in keyless]
        assert wrongly == [], f"keyless valid events set aside: {[letters.found[k]['reason'] for k in wrongly]}"
        with api_client(settings, Role.dispatcher) as api:
            keyless_report = a_report(BOGOR, "keyless").report_id
            wait_for(lambda: api.get(f"/api/v1/reports/{keyless_report}").status_code == 200, timeout=30,
                     what="the keyless report in the read model")
    finally:
        letters.close()

    # A good report afterwards goes through intake, dispatch and the projection ...
    good = make_event(a_report(BEKASI, "after"), source="/test/poison")
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all")
    try:
        producer.send(topics.REPORTS, key=b"poison-area", value=good.to_bytes()).get(timeout=30)
    finally:
        producer.close()
    opened = wait_for(lambda: [e for e in events_on(settings, topics.INCIDENTS)
                               if e.causationid == good.id and e.type == "incident.opened"],
                      timeout=60, interval=0.5, what="intake opened an incident for the good report")[0]
    wait_for(lambda: [e for e in events_on(settings, topics.ASSIGNMENTS)
                      if e.causationid == opened.id and e.type == "dispatch.recommended"],
             timeout=60, interval=0.5, what="dispatch recommended for the good report's incident")
    with api_client(settings, Role.dispatcher) as api:
        report = wait_for(lambda: (r := api.get(f"/api/v1/reports/{good.data['report_id']}")).status_code == 200
                          and r.json()["status"] == "triaged" and r.json(), timeout=60, interval=0.5,
                          what="the good report triaged in the read model")
        assert report["incident_id"] == opened.data["incident_id"]

    # ... and every group (tkp and notify too) reaches the end of every topic it reads.
    ends = end_offsets(settings, CONSUMED)
    wait_for(lambda: not caught_up(settings, ends), timeout=60, interval=1.0,
             what="every consumer group at the end of its topics")

    # No process died or was restarted; the whole-topic readers never failed.
    after = {p.name: (p.pid, p.state) for p in stack.processes()}
    assert {name: pid for name, (pid, _) in after.items()} == pids_before
    assert all(state == "RUNNING" for _, state in after.values()), after
    for name in ("dispatch", "notify", "api"):
        text = (settings.state_dir / "logs" / f"{name}.log").read_text(errors="replace")
        assert not any(f in text for f in FEED_FAILURES), f"{name}: a whole-topic reader failed"

    width = max(len(t) for t in CONSUMED)
    lines = [f"{'topic':<{width}}  {'kind':<20}  services that dead-lettered"]
    for topic in CONSUMED:
        for kind in KINDS:
            lines.append(f"{topic:<{width}}  {kind:<20}  {', '.join(table[(topic, kind)])}")
    total = sum(len(v) for k, v in table.items() if k[1] != KEYLESS)
    lines.append(f"{total} dead letters for {len(CONSUMED) * (len(KINDS) - 1)} poison messages on {len(CONSUMED)} "
                 f"topics; {len(CONSUMED)} keyless valid events handled")
    print("\n" + "\n".join(lines))


def _spkt(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings_environment(settings)}
    return subprocess.run([sys.executable, "-m", "spkt.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_dlq_list_shows_them_and_replay_redrives_a_fixed_one(system, poisoned):
    settings, _, _ = system
    expected = {(service, poisoned[(topics.REPORTS, kind)][1]): kind
                for kind in KINDS if kind != KEYLESS for service in consumers_of(topics.REPORTS)}

    def listed():
        result = _spkt(settings, "dlq", "list", "--json", "--topic", topics.REPORTS)
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        mine = {(d["service"], d["original_offset"]): d for d in lines
                if d["original_key"] == f"poison-{RUN}" and d["original_topic"] == topics.REPORTS}
        return mine if set(expected) <= set(mine) else None

    mine = wait_for(listed, timeout=90, interval=2.0, what="spkt dlq list shows the poison on spkt.reports")
    for (service, offset), kind in expected.items():
        d = mine[(service, offset)]
        assert expected_reason(topics.REPORTS, kind) in d["reason"] and d["error_kind"] == "invalid_message"
        assert d["original_partition"] == poisoned[(topics.REPORTS, kind)][0]
    assert mine[("projection", poisoned[(topics.REPORTS, "oversized")][1])]["truncated"] is True

    # A valid report a handler once failed on (set aside by hand here: nothing fails on purpose),
    # never seen by any service; after the "fix" it is re-driven and reaches the read model.
    report = a_report(TANGERANG, "replayed")
    original = make_event(report, source="/test/poison")
    ref_offset = 10**12 + int(RUN, 16) % 10**6
    letter = make_event(ev.MessageDeadLettered(
        service="projection", reason="database is locked (test)", error_kind="handler_error",
        original_topic=topics.REPORTS, original_partition=0, original_offset=ref_offset, original_key="poison-area",
        original_value=original.to_bytes().decode(), failed_at=datetime.now(timezone.utc)), source="/test/poison")
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all")
    try:
        producer.send(topics.DEAD_LETTERS, key=letter.subject.encode(), value=letter.to_bytes()).get(timeout=30)
        truncated = poisoned[(topics.REPORTS, "oversized")]
    finally:
        producer.close()
    ref = f"{topics.REPORTS}:0:{ref_offset}"

    dry = _spkt(settings, "dlq", "replay", "--offset-of", ref, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "1 of 1 messages would be re-driven" in dry.stdout and "database is locked" in dry.stdout

    refused = _spkt(settings, "dlq", "replay", "--offset-of", f"{topics.REPORTS}:{truncated[0]}:{truncated[1]}",
                    "--yes", "--force")
    assert refused.returncode == 1 and "cut at 64 KiB" in refused.stdout, refused.stdout + refused.stderr

    done = _spkt(settings, "dlq", "replay", "--offset-of", ref, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"re-driven {ref} -> {topics.REPORTS}:0:" in done.stdout and "1 messages re-driven" in done.stdout

    with api_client(settings, Role.dispatcher) as api:
        shown = wait_for(lambda: (r := api.get(f"/api/v1/reports/{report.report_id}")).status_code == 200
                         and r.json()["status"] == "triaged" and r.json(), timeout=60, interval=0.5,
                         what="the re-driven report in the read model, triaged by intake")
    assert shown["description"] == report.description

    # Re-driving it again changes nothing: the projection and intake know its event id.
    again = _spkt(settings, "dlq", "replay", "--offset-of", ref, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    opened = wait_for(lambda: [e for e in events_on(settings, topics.INCIDENTS) if e.causationid == original.id],
                      timeout=30, interval=0.5, what="the incident opened for the re-driven report")
    ends = end_offsets(settings, (topics.REPORTS,))
    wait_for(lambda: not caught_up(settings, ends), timeout=60, interval=1.0, what="the second re-drive handled")
    assert len({e.id for e in events_on(settings, topics.INCIDENTS) if e.causationid == original.id}) == len(
        {e.id for e in opened}) == 1
