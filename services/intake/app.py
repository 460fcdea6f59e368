"""The intake worker's faust app, its topics and its tables.

Reports and intake commands are keyed by area (Polres): one partition sees every report of an
area, so one worker at a time decides duplicates and numbers. The tables keep that state; faust
restores them from their changelogs after a restart or a rebalance.
"""
import faust

from schemas import topics
from services.streaming import make_app, raw_topic
from spkt.settings import get_settings

SERVICE = "intake"
settings = get_settings()
app = make_app(SERVICE, settings)
area_inbox = raw_topic(app, topics.REPORTS, topics.COMMANDS)
incident_events = raw_topic(app, topics.INCIDENTS, topics.ASSIGNMENTS, topics.CLOSURES)


# Plain JSON keys and values: the app's own serializers are raw bytes, for the event topics.
_JSON = faust.Schema(key_serializer="json", value_serializer="json")


def _table(name: str):
    return app.Table(name, default=None, schema=_JSON, partitions=settings.topic_partitions)


open_incidents = _table("open-incidents")
counters = _table("counters")
outcomes = _table("outcomes")
recent_messages = _table("recent-messages")
timers = _table("timers")
