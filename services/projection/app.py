"""The projection worker's faust app: every topic the read model shows."""
from services.streaming import make_app, raw_topic
from spkt.settings import get_settings

from .projector import Projector
from .rebuild import READ_MODEL_TOPICS
from .tables import prepare

SERVICE = "projection"
settings = get_settings()
app = make_app(SERVICE, settings)
read_model_events = raw_topic(app, *READ_MODEL_TOPICS)
projector = Projector(prepare(settings.db_url))
