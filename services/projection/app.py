"""The projection worker's faust app: every topic the read model shows."""
from schemas import topics
from services.streaming import make_app, raw_topic
from spkt.settings import get_settings

from .projector import Projector
from .tables import prepare

SERVICE = "projection"
settings = get_settings()
app = make_app(SERVICE, settings)
read_model_events = raw_topic(app, topics.REPORTS, topics.INCIDENTS, topics.ASSIGNMENTS, topics.UNIT_STATUS,
                              topics.UNIT_POSITIONS, topics.CLOSURES, topics.TKP, topics.TURJAWALI,
                              topics.NOTIFICATIONS)
projector = Projector(prepare(settings.db_url))
