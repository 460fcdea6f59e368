"""The dispatch worker's faust app, its topics, its tables and its in-memory unit board.

Two agents: one per unit (unit commands and the unit register share the unit id as key, so one
worker at a time decides for each unit: it can never be assigned twice), one per incident (what
dispatch needs to recommend: where, what, who is already on it). The board of every unit's
position and status is not partitioned: each worker reads all of it (see board_feed).
"""
import asyncio

import faust

from schemas import topics
from services.streaming import make_app, raw_topic
from spkt.settings import get_settings

from .board import Board, ranking_rules, router_for

SERVICE = "dispatch"
settings = get_settings()
app = make_app(SERVICE, settings)
unit_inbox = raw_topic(app, topics.UNIT_COMMANDS, topics.UNIT_STATUS)
incident_events = raw_topic(app, topics.INCIDENTS, topics.ASSIGNMENTS, topics.CLOSURES)

_JSON = faust.Schema(key_serializer="json", value_serializer="json")


def _table(name: str):
    return app.Table(name, default=None, schema=_JSON, partitions=settings.topic_partitions)


holds = _table("unit-holds")          # unit_id -> its status and assignment (services.dispatch.lifecycle)
unit_outcomes = _table("unit-outcomes")  # command event id -> the events it led to (replayed on re-delivery)
incident_facts = _table("incident-facts")  # incident_id -> where, what, which units are on it

board = Board(router_for(settings, ranking_rules(settings)))
board_caught_up = asyncio.Event()
