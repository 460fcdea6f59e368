"""The dispatch worker's faust app, its topics and its in-memory unit board."""
import asyncio

from schemas import topics
from services.streaming import make_app, raw_topic
from spkt.settings import get_settings

from .domain import UnitBoard

SERVICE = "dispatch"
settings = get_settings()
app = make_app(SERVICE, settings)
incidents = raw_topic(app, topics.INCIDENTS)

board = UnitBoard()
board_caught_up = asyncio.Event()
