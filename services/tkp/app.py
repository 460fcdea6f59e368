"""The tkp worker's faust app, its topics and its tables.

Two agents. One per incident: the users' TKP commands and every event of the incident share the
incident id as key, so one worker at a time decides for each incident and writes its records, in
order, into the incident's hash chain. One per turjawali duty: who is on it, and when the guard
last checked in.
"""
import faust

from schemas import topics
from services.streaming import make_app, raw_topic
from spkt.settings import get_settings

SERVICE = "tkp"
settings = get_settings()
app = make_app(SERVICE, settings)
incident_inbox = raw_topic(app, topics.COMMANDS, topics.INCIDENTS, topics.ASSIGNMENTS, topics.CLOSURES, topics.TKP)
duty_inbox = raw_topic(app, topics.TURJAWALI)

_JSON = faust.Schema(key_serializer="json", value_serializer="json")


def _table(name: str):
    return app.Table(name, default=None, schema=_JSON, partitions=settings.topic_partitions)


scenes = _table("scenes")        # incident_id -> the scene (services.tkp.records.new_scene)
outcomes = _table("outcomes")    # message id -> the events it led to (replayed on re-delivery)
duties = _table("duties")        # duty_id -> the duty, its units and its last check-in
