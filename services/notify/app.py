"""The notify worker's faust app and its topics."""
from schemas import topics
from services.streaming import make_app, raw_topic
from spkt.settings import get_settings

SERVICE = "notify"
app = make_app(SERVICE, get_settings())
reports = raw_topic(app, topics.REPORTS)
