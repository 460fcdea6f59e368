"""The tkp worker's faust app and its topics."""
from schemas import topics
from services.streaming import make_app, raw_topic
from spkt.settings import get_settings

SERVICE = "tkp"
app = make_app(SERVICE, get_settings())
incident_events = raw_topic(app, topics.INCIDENTS, topics.ASSIGNMENTS, topics.CLOSURES, topics.TKP)
