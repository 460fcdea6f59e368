"""How the notify worker looks over its outbox (services/notify/agents.py `_start_due`).

It looks after every delivery and every 0.2 s, and in a surge thousands of notifications wait
there: each entry must be parsed once, not on every look. The faust table and the delivery are
replaced by a dict and a recorder (a unit test: the worker's real delivery is covered by
tests/e2e/test_notify_flow.py and tests/faults)."""
from __future__ import annotations

import asyncio

import pytest

from services.notify import agents, domain

HOOK = "http://polda.example/hook"


def _entry(i: int) -> tuple[str, dict]:
    recipient = domain.Recipient(kind="subscriber", key="polda", url=HOOK)
    n = domain._notification("webhook", recipient, ("webhook",), f"event-{i}", "incident.opened", f"inc-{i}",
                             {"incident_id": f"inc-{i}"})
    return n.notification_id, {"n": n.to_json(), "partition": 0, "at": "2026-11-28T10:00:00+00:00"}


@pytest.fixture
def worker(monkeypatch):
    """The module's delivery state, fresh; 300 notifications to one webhook waiting in the outbox."""
    outbox = dict(_entry(i) for i in range(300))
    started: list[str] = []
    parsed: list[str] = []
    real_from_json = domain.Notification.from_json

    def counting_from_json(data):
        parsed.append(data["notification_id"])
        return real_from_json(data)

    async def recorded(nid, entry, n, recipient, endpoint):
        started.append(nid)

    monkeypatch.setattr(agents, "outbox", outbox)
    monkeypatch.setattr(agents, "_owned", lambda: {0})
    monkeypatch.setattr(agents, "_deliver_one", recorded)
    monkeypatch.setattr(domain.Notification, "from_json", staticmethod(counting_from_json))
    for name, fresh in (("_parsed", {}), ("_in_flight", set()), ("_busy_endpoints", set()), ("_said", set()),
                        ("_next_try", {}), ("directory_ready", asyncio.Event())):
        monkeypatch.setattr(agents, name, fresh)
    agents.directory_ready.set()
    return outbox, started, parsed


def _look(freed: str | None = None) -> None:
    async def look():
        await agents._start_due(freed)
        await asyncio.sleep(0)  # let the deliveries it started run
    asyncio.run(look())


def test_each_waiting_notification_is_parsed_once_however_often_the_outbox_is_looked_over(worker):
    outbox, started, parsed = worker
    for _ in range(5):
        _look()
    first = next(iter(outbox))
    # One webhook, one delivery at a time: the first one started, the others wait their turn.
    assert started == [first]
    assert len(parsed) == len(outbox) == len(set(parsed))  # 1,500 parses before: every entry, every look


def test_a_freed_endpoint_starts_its_next_notification_in_order(worker):
    outbox, started, parsed = worker
    ids = list(outbox)
    _look()
    for done in range(3):  # each delivery ends: the endpoint is freed, its next one starts
        agents._in_flight.discard(ids[done])
        agents._busy_endpoints.discard(HOOK)
        outbox.pop(ids[done])
        agents._forget(ids[done])
        _look(freed=HOOK)
    assert started == ids[:4]
    assert len(parsed) == len(ids)
    assert not set(ids[:3]) & set(agents._parsed)  # what was read back is forgotten


def test_a_look_for_a_freed_endpoint_leaves_the_others_to_the_timer(worker):
    outbox, started, parsed = worker
    mail = domain._notification("receipt", domain.Recipient(kind="subscriber", key="other", url="http://other.example/h"),
                                ("webhook",), "event-x", "incident.opened", "inc-x", {"incident_id": "inc-x"})
    outbox[mail.notification_id] = {"n": mail.to_json(), "partition": 0, "at": "2026-11-28T10:00:00+00:00"}
    _look(freed=HOOK)
    assert started == [next(iter(outbox))]  # the other webhook's waits for the next tick
    _look()
    assert started[-1] == mail.notification_id


def test_a_subscriber_past_a_persons_hourly_limit_still_gets_every_event(worker, monkeypatch):
    """A Polda command center subscribed to incident.opened must see every incident of a surge."""
    outbox, started, parsed = worker
    now = agents.time.monotonic()
    monkeypatch.setattr(agents, "_recent", agents.defaultdict(agents.deque))
    agents._recent["subscriber:polda"].extend([now] * agents.settings.notify_per_recipient_per_hour)
    _look()
    assert started == [next(iter(outbox))] and not agents._next_try
