"""Thin agents: decide who hears what (domain), keep it in the outbox, deliver it (a timer)."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from datetime import timedelta

from schemas import topics
from schemas.envelope import Envelope, derived_id, utcnow
from schemas.events import EventData, MessageDeadLettered, NotificationFailed, NotificationSent
from schemas.registry import make_event
from services import feeds
from services.redact import redact
from services.streaming import Origin, Outgoing, handle_each, publish

from . import domain
from .app import SERVICE, app, directory, directory_ready, events, outbox, settings
from .delivery import Deliverer, backoff_s, masked

SOURCE = f"/spkt/{SERVICE}"
log = logging.getLogger(__name__)
DIRECTORY_WAIT_S = 2.0
CLOCK_MARGIN = timedelta(seconds=5)
_caught_up_at = None  # when this worker's directory had read all there was at its start


def _fresh(envelope: Envelope) -> bool:
    """Written after the directory caught up (less a margin for clocks): its incident may still be on its way."""
    global _caught_up_at
    if _caught_up_at is None:
        _caught_up_at = utcnow()
    return envelope.time >= _caught_up_at - CLOCK_MARGIN


def rules_from(s) -> domain.NotifyRules:
    supervisors = []
    for contact in (c.strip() for c in s.supervisor_contacts.split(",") if c.strip()):
        email, phone = (contact, None) if "@" in contact else (None, contact)
        supervisors.append(domain.Recipient(kind="supervisor", key=contact, email=email, phone=phone))
    subscribers = tuple(domain.Subscriber(name=str(w.get("name") or w["url"]), url=w["url"], secret=str(w.get("secret", "")),
                                          types=tuple(w.get("types") or ("*",)))
                        for w in s.webhook_subscribers)
    return domain.NotifyRules(supervisors=tuple(supervisors), subscribers=subscribers)


RULES = rules_from(settings)
deliverer = Deliverer(settings, webhook_secrets={s.name: s.secret for s in RULES.subscribers})


@app.task
async def follow_directory() -> None:
    await feeds.follow(settings, name="notify directory", apply=directory.apply, caught_up=directory_ready,
                       from_beginning=(topics.REPORTS, topics.INCIDENTS, topics.UNIT_STATUS, topics.NOTIFICATIONS))


async def on_event(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    if isinstance(event, (NotificationSent, NotificationFailed)):
        if outbox.get(event.notification_id) is not None:  # delivered or given up: out of the outbox
            outbox.pop(event.notification_id, None)
        _forget(event.notification_id)
        return []
    await directory_ready.wait()
    incident_id = getattr(event, "incident_id", None)
    if incident_id and directory.incident(incident_id) is None and _fresh(envelope):
        # The directory reads the incidents on its own and may be a moment behind this event. An
        # event from before it caught up needs no wait: an incident it does not know by then was
        # never opened (a test's or a replayed event), and waiting would hold up the whole stream.
        deadline = time.monotonic() + DIRECTORY_WAIT_S
        while directory.incident(incident_id) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    now = utcnow()
    for n in domain.plan(envelope.type, event, envelope.id, directory, RULES):
        if n.notification_id in directory.done or outbox.get(n.notification_id) is not None:
            continue  # the same event again: the same ids, nothing new
        wire = n.to_json()
        wire["recipient"]["secret"] = None  # the outbox is a Kafka changelog: a webhook's secret stays in the settings
        outbox[n.notification_id] = {"n": wire, "partition": origin.partition, "at": now.isoformat()}
        log.info("notification planned: %s", n.template, extra={"incident_id": n.incident_id,
                                                                "notification_id": n.notification_id})
    return []


@app.agent(events, concurrency=1)
async def notify_events(stream):
    await handle_each(app, SERVICE, stream, on_event)


# --- delivery -------------------------------------------------------------------------------
_next_try: dict[str, float] = {}           # notification id -> monotonic time of its next attempt
_attempts: dict[str, int] = defaultdict(int)
_failed_channels: dict[str, set[str]] = defaultdict(set)
_said: set[str] = set()                    # sent or failed by this process, until the agent reads it back
_parsed: dict[str, domain.Notification] = {}  # outbox entries parsed (once each, see _start_due)
_NOTHING_FAILED: frozenset[str] = frozenset()
_recent: dict[str, deque] = defaultdict(deque)  # recipient -> send times in the last hour (rate limit)


def _owned() -> set[int]:
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topics.INCIDENTS}


def _backoff(attempt: int) -> float:
    return backoff_s(attempt, settings.notify_retry_base_s, settings.notify_retry_max_s)


def _rate_limited(key: str, now: float) -> float | None:
    """Seconds to wait when this recipient had its hour's share already; None to send now."""
    sent = _recent[key]
    while sent and now - sent[0] > 3600:
        sent.popleft()
    if len(sent) < settings.notify_per_recipient_per_hour:
        return None
    return 3600 - (now - sent[0])


_in_flight: set[str] = set()   # notification ids being delivered now
# One delivery at a time per endpoint (the mail server, the gateway, each webhook): messages go
# out in order, a worker killed has at most one message in flight per endpoint, and an endpoint
# that is slow or away holds up only its own messages.
_busy_endpoints: set[str] = set()


@app.timer(interval=0.2)
async def deliver_due() -> None:
    await _start_due()


async def _start_due(freed: str | None = None) -> None:
    """Start the next due delivery of each endpoint, endpoints side by side; with `freed` (an
    endpoint whose delivery just ended), that endpoint's next one only.

    It looks over the whole outbox after every delivery and every 0.2 s, and a surge fills the
    outbox with thousands: so each entry is parsed once (23 µs; parsing every entry on every look
    made notify's work grow with the square of what waited), and a look for a freed endpoint
    stops at its next one."""
    if not directory_ready.is_set():
        return  # until the directory has read what was already sent, nothing is sent again
    owned = _owned()
    now = time.monotonic()
    if len(_parsed) > 2 * len(outbox) + 100:  # entries of partitions handed to another worker
        for nid in [nid for nid in _parsed if outbox.get(nid) is None]:
            del _parsed[nid]
    for nid, entry in list(outbox.items()):
        if (not entry or entry.get("partition") not in owned or nid in _said or nid in directory.done
                or nid in _in_flight or _next_try.get(nid, 0.0) > now):
            continue
        n = _parsed.get(nid)
        if n is None:
            n = _parsed[nid] = domain.Notification.from_json(entry["n"])
        endpoint = deliverer.endpoint(n, _failed_channels.get(nid, _NOTHING_FAILED))
        if endpoint in _busy_endpoints or (freed is not None and endpoint != freed):
            continue
        recipient = f"{n.recipient.kind}:{n.recipient.key}"
        if domain.held_by_rate_limit(n) and (wait := _rate_limited(recipient, now)) is not None:
            _next_try[nid] = now + wait
            continue
        _in_flight.add(nid)
        _busy_endpoints.add(endpoint)
        asyncio.ensure_future(_deliver_one(nid, entry, n, recipient, endpoint))
        if freed is not None:
            return


async def _deliver_one(nid: str, entry: dict, n: domain.Notification, recipient: str, endpoint: str) -> None:
    try:
        _attempts[nid] += 1
        outcome = await deliverer.deliver(n, _failed_channels[nid])
        if outcome.delivered:
            _recent[recipient].append(time.monotonic())
            await _say(entry, NotificationSent(
                notification_id=nid, incident_id=n.incident_id, template=n.template, recipient_kind=n.recipient.kind,
                recipient=masked(n, outcome.channel), channel=outcome.channel, attempts=_attempts[nid],
                cause_event_id=n.event_id, sent_at=utcnow()))
        elif outcome.permanent or _attempts[nid] >= settings.notify_max_attempts:
            await _say(entry, NotificationFailed(
                notification_id=nid, incident_id=n.incident_id, template=n.template, recipient_kind=n.recipient.kind,
                recipient=masked(n, outcome.channel), channels_tried=sorted(_failed_channels[nid] | set(outcome.tried)),
                attempts=_attempts[nid], reason=outcome.reason or "-", permanent=outcome.permanent,
                cause_event_id=n.event_id, failed_at=utcnow()))
        else:
            _next_try[nid] = time.monotonic() + _backoff(_attempts[nid])
            log.warning("notification delayed: %s", redact(outcome.reason),
                        extra={"notification_id": nid, "incident_id": n.incident_id, "attempt": _attempts[nid]})
    except Exception as exc:  # never lose it: tried again later
        _next_try[nid] = time.monotonic() + _backoff(_attempts[nid])
        log.exception("notification delivery error: %s", redact(exc), extra={"notification_id": nid})
    finally:
        _in_flight.discard(nid)
        _busy_endpoints.discard(endpoint)
        asyncio.ensure_future(_start_due(endpoint))  # the endpoint's next one at once, not at the next tick


async def _say(entry: dict, event: EventData) -> None:
    """On the partition the outbox entry lives in, so the agent that owns it reads it back."""
    nid = event.notification_id
    envelope = make_event(event, source=SOURCE, event_id=derived_id(event.event_type, nid))
    await publish(app, Outgoing(topics.NOTIFICATIONS, envelope, partition=entry["partition"]))
    if isinstance(event, NotificationFailed):  # set aside with the reason, for an operator to re-drive
        log.error("notification failed: %s", redact(event.reason), extra={"notification_id": nid,
                                                                  "incident_id": event.incident_id})
        letter = MessageDeadLettered(
            service=SERVICE, reason=event.reason, error_kind="notification_failed", original_topic=topics.NOTIFICATIONS,
            original_partition=entry["partition"], original_offset=-1, original_key=nid,
            original_value=json.dumps(entry["n"], ensure_ascii=False), failed_at=event.failed_at)
        await publish(app, Outgoing(topics.DEAD_LETTERS, make_event(letter, source=SOURCE,
                                                                    event_id=derived_id("dead-letter", nid))))
    _said.add(nid)
    for table in (_next_try, _attempts, _failed_channels, _parsed):
        table.pop(nid, None)


def _forget(nid: str) -> None:
    """The notification's sent or failed event was read back: out of the outbox, out of memory."""
    _said.discard(nid)
    _parsed.pop(nid, None)
