"""OffsetKeeper with a stand-in consumer: commits only what was handled, in order; re-reads jumps."""
import asyncio
from types import SimpleNamespace

from faust.types import TP

from services.streaming import HANDLE, SEEN, SKIPPED, OffsetKeeper

P0 = TP("spkt.reports", 0)


class FakeConsumer:
    def __init__(self, committed=None, earliest=0):
        self._committed_offset = dict(committed or {})
        self.earliest = earliest
        self.seeks, self.commits = [], []

    async def earliest_offsets(self, *tps):
        return {tp: self.earliest for tp in tps}

    assigned: set = set()
    ends: dict = {}

    def assignment(self):
        return set(self.assigned)

    async def seek(self, tp, offset):
        self.seeks.append((tp, offset))

    async def crash(self, exc):
        self.crashed = exc

    async def _commit(self, offsets):
        self.commits.append(dict(offsets))
        return True


class FakeLookup:
    """What Kafka says: the group's committed offset (None: never), the partition's first offset."""

    def __init__(self, consumer, group_committed=None, log=None):
        self.consumer = consumer
        self.group_committed = dict(group_committed or {})
        self.log = log  # offset -> value on the partition, when Kafka can be read directly

    async def start_of(self, tp):
        found = self.group_committed.get(tp)
        return found if found is not None else self.consumer.earliest

    async def earliest_of(self, tp):
        return self.consumer.earliest

    async def latest_of(self, tps):
        return {tp: self.consumer.ends[tp] for tp in tps if tp in self.consumer.ends}

    async def read_range(self, tp, start, end):
        """Kafka's messages start..end-1, or None (unreachable: the keeper seeks back instead)."""
        if self.log is None:
            return None
        return [SimpleNamespace(tp=tp, offset=o, value=self.log.get(o)) for o in range(start, end) if o in self.log]


class FakeProducer:
    """faust's producer: `flush` waits for every message sent so far (the tables' changelog writes)."""

    def __init__(self, consumer, during=None):
        self.consumer, self.during, self.flushes = consumer, during, []

    async def flush(self):
        self.flushes.append(len(self.consumer.commits))  # how many commits had happened before it
        if self.during is not None:
            await self.during()


def keeper(committed=None, log=None, **consumer):
    """`committed`: what the group has committed, as Kafka says (faust's own record is not used);
    `log`: the partition's messages by offset, when they can be read from Kafka directly."""
    fake = FakeConsumer(**consumer)
    app = SimpleNamespace(consumer=fake, consumer_generation_id=1, crash=fake.crash,
                          flow_control=SimpleNamespace(is_active=lambda: True), producer=FakeProducer(fake))
    return OffsetKeeper(app, FakeLookup(fake, committed, log)), app


def msg(offset, tp=P0):
    return SimpleNamespace(tp=tp, offset=offset)


def run(coro):
    return asyncio.run(coro)


def test_messages_in_order_are_handled_and_committed_after_the_last_one():
    k, app = keeper(committed={P0: 10})
    for offset in (10, 11, 12):
        assert run(k.check(msg(offset))) == HANDLE
        k.handled(msg(offset))
    run(k.commit(force=True))
    assert app.consumer.commits == [{P0: 13}]


def test_a_jump_seeks_back_and_nothing_past_the_hole_is_handled_or_committed():
    k, app = keeper(committed={P0: 10})
    assert run(k.check(msg(10))) == HANDLE
    k.handled(msg(10))
    assert run(k.check(msg(14))) == SKIPPED  # 11..13 were skipped by the consumer
    assert app.consumer.seeks == [(P0, 11)]
    assert run(k.check(msg(15))) == SKIPPED  # still draining the old prefetch: no second seek
    assert app.consumer.seeks == [(P0, 11)]
    assert run(k.check(msg(11))) == HANDLE
    run(k.commit(force=True))
    assert app.consumer.commits == [{P0: 11}]


def test_a_message_seen_before_is_not_handled_again():
    k, _ = keeper(committed={P0: 10})
    assert run(k.check(msg(9))) == SEEN


def test_offsets_removed_by_retention_are_passed_over_with_a_warning():
    k, app = keeper(committed={P0: 10}, earliest=50)
    assert run(k.check(msg(50))) == HANDLE
    assert app.consumer.seeks == []


def test_a_new_assignment_drops_uncommitted_progress_and_never_commits_mid_rebalance():
    k, app = keeper(committed={P0: 10})
    run(k.check(msg(10)))
    k.handled(msg(10))
    app.consumer_generation_id = 2
    run(k.commit(force=True))
    assert app.consumer.commits == []
    assert run(k.check(msg(10))) == HANDLE  # re-read from the committed offset of the new assignment


def test_a_seek_whose_offset_never_comes_back_is_made_again_then_the_worker_restarts():
    k, app = keeper(committed={P0: 10})
    k.rewind_patience_s = 0.0
    assert run(k.check(msg(12))) == SKIPPED
    assert run(k.check(msg(13))) == SKIPPED  # draining: no new seek per message
    assert app.consumer.seeks == [(P0, 10)]
    run(k.watch())  # the partition delivers nothing at all: the timer seeks again
    assert app.consumer.seeks == [(P0, 10), (P0, 10)]
    run(k.watch())
    assert not hasattr(app.consumer, "crashed")
    run(k.watch())  # still nothing: the worker restarts rather than wait forever
    assert "stuck before offset 10" in str(app.consumer.crashed)


def test_a_partition_never_committed_is_read_from_its_start():
    k, app = keeper(committed={}, earliest=0)
    assert run(k.check(msg(3))) == SKIPPED  # 0..2 were skipped by the consumer
    assert app.consumer.seeks == [(P0, 0)]
    assert run(k.check(msg(0))) == HANDLE


def test_where_the_group_stands_is_asked_of_kafka_not_of_faust():
    """faust fills in its committed offsets after its seek (a message can come first), and its
    record was seen to drop messages as seen. Kafka knows."""
    k, app = keeper(committed={P0: 16}, earliest=0)
    app.consumer._committed_offset[P0] = 40  # faust's record, wrong here: never trusted
    assert run(k.check(msg(16))) == HANDLE  # not "0..15 skipped"
    assert app.consumer.seeks == []
    k.handled(msg(16))
    assert run(k.check(msg(3))) == SEEN


def test_a_partition_the_group_never_committed_is_expected_from_its_first_offset():
    k, app = keeper(earliest=5)
    assert run(k.check(msg(7))) == SKIPPED
    assert app.consumer.seeks == [(P0, 5)]


def test_messages_skipped_by_the_consumer_are_read_from_kafka_and_handled_first():
    k, app = keeper(committed={P0: 10}, log={o: f"m{o}".encode() for o in range(10, 20)})
    assert run(k.check(msg(10))) == HANDLE
    k.handled(msg(10))
    missed = run(k.check(msg(14)))  # 11..13 never came from the consumer
    assert [m.offset for m in missed] == [11, 12, 13] and missed[0].value == b"m11"
    assert app.consumer.seeks == []  # no seek: they are handled now, then 14
    for m in missed:
        k.handled(m)
    k.handled(msg(14))
    run(k.commit(force=True))
    assert app.consumer.commits == [{P0: 15}]


def test_a_gap_kafka_cannot_fill_completely_falls_back_to_seeking():
    k, app = keeper(committed={P0: 10}, log={10: b"a", 12: b"c"})  # 11 missing in what was read
    assert run(k.check(msg(10))) == HANDLE
    k.handled(msg(10))
    assert run(k.check(msg(13))) == SKIPPED
    assert app.consumer.seeks == [(P0, 11)]


def test_a_partition_with_messages_waiting_and_nothing_handled_restarts_the_worker():
    """Seen after a restart in CI: the consumer stopped delivering one partition for good."""
    k, app = keeper(committed={P0: 10})
    k.stall_after_s, k.stall_check_every_s = 0.0, 0.0
    app.consumer.assigned, app.consumer.ends = {P0}, {P0: 10}
    run(k.check_stalled())
    assert not hasattr(app.consumer, "crashed")  # nothing waiting: quiet is fine
    app.consumer.ends = {P0: 12}
    run(k.check_stalled())
    assert "stalled at offset 10" in str(app.consumer.crashed)


def test_a_partition_making_progress_is_not_stalled():
    k, app = keeper(committed={P0: 10})
    k.stall_check_every_s = 0.0  # stall_after_s stays 20 s: the message below was just handled
    app.consumer.assigned, app.consumer.ends = {P0}, {P0: 30}
    assert run(k.check(msg(10))) == HANDLE
    k.handled(msg(10))
    run(k.check_stalled())
    assert not hasattr(app.consumer, "crashed")


def test_what_a_handler_deferred_is_stored_before_its_offsets_are_committed_and_a_failure_commits_nothing():
    k, app = keeper(committed={P0: 10})
    order = []

    async def store():
        order.append(("stored", len(app.consumer.commits)))

    k.before_commit = store
    for offset in (10, 11):
        run(k.check(msg(offset)))
        k.handled(msg(offset))
    run(k.commit(force=True))
    assert order == [("stored", 0)] and app.consumer.commits == [{P0: 12}]

    async def fails():
        raise OSError("disk full")

    k.before_commit = fails
    run(k.check(msg(12)))
    k.handled(msg(12))
    run(k.commit(force=True))  # logged, not raised: the commit timer goes on
    assert app.consumer.commits == [{P0: 12}]  # nothing past what was stored
    k.before_commit = store
    run(k.commit(force=True))
    assert app.consumer.commits[-1] == {P0: 13}


def test_the_tables_writes_are_acknowledged_before_the_offsets_that_made_them_are_committed():
    k, app = keeper(committed={P0: 10})
    for offset in (10, 11):
        run(k.check(msg(offset)))
        k.handled(msg(offset))
    run(k.commit(force=True))
    assert app.producer.flushes == [0] and app.consumer.commits == [{P0: 12}]


def test_a_message_handled_while_the_writes_are_flushed_waits_for_the_next_commit():
    k, app = keeper(committed={P0: 10})

    async def meanwhile():  # the agent goes on while the flush waits for the broker
        assert await k.check(msg(11)) == HANDLE
        k.handled(msg(11))

    app.producer.during = meanwhile
    run(k.check(msg(10)))
    k.handled(msg(10))
    run(k.commit(force=True))
    assert app.consumer.commits == [{P0: 11}]  # not 12: offset 11's table writes were not flushed
    app.producer.during = None
    run(k.commit(force=True))
    assert app.consumer.commits == [{P0: 11}, {P0: 12}]


def test_writes_the_broker_does_not_acknowledge_in_time_commit_nothing():
    k, app = keeper(committed={P0: 10})
    k.commit_timeout_s = 0.05

    async def broker_away():
        await asyncio.sleep(10)

    app.producer.during = broker_away
    run(k.check(msg(10)))
    k.handled(msg(10))
    run(k.commit(force=True))
    assert app.consumer.commits == []
    app.producer.during = None
    run(k.commit(force=True))
    assert app.consumer.commits == [{P0: 11}]


def _delivery():
    return asyncio.new_event_loop().create_future()  # set by hand: no loop needs to run it


def _handled_after_sending():
    """Message 10 handled; what it led to sent, not yet acknowledged."""
    k, app = keeper(committed={P0: 10})
    delivery = _delivery()
    run(k.check(msg(10)))
    k.sent(delivery)
    k.handled(msg(10))
    return k, app, delivery


def test_events_sent_without_waiting_hold_back_the_commit_until_the_broker_has_them():
    k, app, delivery = _handled_after_sending()
    run(k.commit(force=True))
    assert app.consumer.commits == [] and k.in_flight == [delivery]
    run(k.check(msg(11)))
    k.handled(msg(11))  # sent nothing
    delivery.set_result("acknowledged")
    run(k.commit(force=True))
    assert app.consumer.commits == [{P0: 12}] and k.in_flight == []


def test_events_the_producer_gave_up_on_restart_the_worker_and_commit_nothing():
    k, app, delivery = _handled_after_sending()
    delivery.set_exception(TimeoutError("batch expired"))
    run(k.commit(force=True))
    assert app.consumer.commits == [] and "not delivered" in str(app.consumer.crashed)


def test_publish_without_waiting_hands_the_delivery_to_the_offsets_and_with_waiting_awaits_the_broker():
    from services.streaming import Outgoing, publish

    delivery = _delivery()
    waited = []

    class Producer:
        async def send(self, topic, key, value, **kw):
            return delivery

        async def send_and_wait(self, topic, key, value, **kw):
            waited.append(topic)

    k, app = keeper()
    app.producer, app.offsets = Producer(), k
    envelope = SimpleNamespace(to_bytes=lambda: b"{}", id="e1", subject="i1", type="incident.opened")
    run(publish(app, Outgoing("spkt.incidents", envelope), acknowledged=False))
    assert k.in_flight == [delivery] and waited == [] and not delivery.done()
    run(publish(app, Outgoing("spkt.incidents", envelope)))
    assert waited == ["spkt.incidents"] and k.in_flight == [delivery]
