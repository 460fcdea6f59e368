"""Table changelog records faust fetched and did not hand on are fetched again (services/streaming.py)."""
import asyncio
from types import SimpleNamespace

from faust.transport.consumer import Consumer
from faust.types import TP

import services.streaming as streaming
from services.streaming import changelog_records_dropped

CHANGELOG = TP("spkt-dispatch-incident-facts-changelog", 1)
OTHER_CHANGELOG = TP("spkt-dispatch-unit-holds-changelog", 1)
STREAM = TP("spkt.incidents", 1)


def records(*offsets):
    return [SimpleNamespace(offset=o) for o in offsets]


def is_changelog(tp):
    return tp.topic.endswith("-changelog")


def test_a_batch_dropped_whole_is_read_again_from_its_first_record():
    fetched = {CHANGELOG: records(0, 1, 2), STREAM: records(7, 8)}
    assert changelog_records_dropped(fetched, {}, is_changelog) == {CHANGELOG: 0}


def test_a_batch_cut_short_is_read_again_from_the_first_record_not_handed_on():
    fetched = {CHANGELOG: records(10, 11, 12, 13), OTHER_CHANGELOG: records(3, 4)}
    assert changelog_records_dropped(fetched, {CHANGELOG: 11, OTHER_CHANGELOG: 4}, is_changelog) == {CHANGELOG: 12}


def test_nothing_is_read_again_when_everything_was_handed_on_or_nothing_fetched():
    assert changelog_records_dropped({CHANGELOG: records(5, 6)}, {CHANGELOG: 6}, is_changelog) == {}
    assert changelog_records_dropped({CHANGELOG: []}, {}, is_changelog) == {}
    assert changelog_records_dropped(None, {}, is_changelog) == {}


def test_streams_are_left_to_faust_and_the_offset_keeper():
    assert changelog_records_dropped({STREAM: records(1, 2)}, {}, is_changelog) == {}


class StandIn:
    """What the patched getmany uses of a faust consumer."""

    def __init__(self, fetched, assigned):
        self.fetched, self.assigned, self.seeks = fetched, assigned, []

    def _is_changelog_tp(self, tp):
        return is_changelog(tp)

    def assignment(self):
        return set(self.assigned)

    async def seek(self, tp, offset):
        self.seeks.append((tp, offset))


def test_faust_consumers_use_the_patched_fetch():
    assert Consumer.getmany is streaming._getmany_fetching_dropped_changelogs_again
    assert Consumer._wait_next_records is streaming._wait_next_records_kept


def test_the_patched_getmany_hands_on_what_faust_does_and_seeks_back_to_what_it_dropped(monkeypatch):
    fetched = {CHANGELOG: records(0, 1, 2), OTHER_CHANGELOG: records(5), STREAM: records(9)}

    async def faust_getmany(self, timeout):
        # faust: records fetched, then the flow stopped after one changelog record and the stream's
        self.spkt_fetched = self.fetched
        yield CHANGELOG, SimpleNamespace(offset=0)
        yield STREAM, SimpleNamespace(offset=9)

    monkeypatch.setattr(streaming, "_faust_getmany", faust_getmany)
    consumer = StandIn(fetched, assigned={CHANGELOG, STREAM})  # the other changelog went to another worker

    async def read_all():
        return [(tp, m.offset) async for tp, m in Consumer.getmany(consumer, timeout=1.0)]

    assert asyncio.run(read_all()) == [(CHANGELOG, 0), (STREAM, 9)]
    assert consumer.seeks == [(CHANGELOG, 1)]
    assert consumer.spkt_fetched is None
