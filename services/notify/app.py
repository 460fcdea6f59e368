"""The notify worker's faust app, its topics, its outbox and its directory.

One agent reads every event that may tell someone something and puts the notifications it
decides into the outbox (a table keyed by notification id); a timer delivers what is due, with
retries, and says `notification.sent` / `notification.failed`, which the agent reads back to
empty the outbox. Contacts come from a directory every worker reads in full (services/feeds.py).
"""
import asyncio

import faust

from schemas import topics
from services.streaming import make_app, raw_topic
from spkt.settings import get_settings

from .directory import MemoryDirectory

SERVICE = "notify"
settings = get_settings()
app = make_app(SERVICE, settings)
events = raw_topic(app, topics.REPORTS, topics.INCIDENTS, topics.ASSIGNMENTS, topics.CLOSURES, topics.TKP,
                   topics.TURJAWALI, topics.NOTIFICATIONS)
outbox = app.Table("outbox", default=None, partitions=settings.topic_partitions,
                   schema=faust.Schema(key_serializer="json", value_serializer="json"))

directory = MemoryDirectory()
directory_ready = asyncio.Event()
