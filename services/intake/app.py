"""The intake worker's faust app and its topics."""
from services.streaming import make_app, raw_topic
from schemas import topics
from spkt.settings import get_settings

SERVICE = "intake"
app = make_app(SERVICE, get_settings())
reports = raw_topic(app, topics.REPORTS)
