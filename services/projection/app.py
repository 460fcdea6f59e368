"""The projection worker's faust app: every topic the read model shows."""
import logging

from sqlalchemy import select

from schemas import topics
from services.streaming import make_app, raw_topic
from spkt.settings import Settings, get_settings

from . import tables as t
from .projector import Projector
from .rebuild import READ_MODEL_TOPICS
from .tables import prepare

SERVICE = "projection"
log = logging.getLogger(__name__)


def replay_into_an_empty_read_model(settings: Settings, sessions) -> None:
    """A read model that has applied nothing yet must see every event from the beginning.

    The group's committed offsets belong to whatever database the projection fed before (a
    deployment moved to PostgreSQL, a database restored or replaced): resuming from them would
    leave everything before them out of this one, silently. So they are dropped first."""
    with sessions() as session:
        if session.scalar(select(t.ProcessedEvent.event_id).limit(1)) is not None:
            return
    from kafka.errors import KafkaError

    from deploy.topics import admin_client

    groups = list(topics.groups_of(SERVICE))
    try:
        admin = admin_client(settings)
        try:
            results = dict(admin.delete_groups(groups))
        finally:
            admin.close()
    except KafkaError as exc:
        results = {group: str(exc) for group in groups}
    for group in groups:
        outcome = results.get(group)
        if outcome == "OK":
            log.warning("empty read model: the projection replays every topic from the beginning "
                        "(the offsets of group %s were for another database)", group)
        elif outcome not in (None, "GroupIdNotFoundError"):  # e.g. a member still running keeps its place
            log.error("empty read model but the offsets of group %s could not be dropped (%s); run "
                      "`spkt projection rebuild` to fill it", group, outcome)


settings = get_settings()
app = make_app(SERVICE, settings)
# GPS positions are read apart, outside faust (positions.py): hundreds a second, they held up
# every report, incident and recommendation (benchmarks/pipeline.py).
read_model_events = raw_topic(app, *(t for t in READ_MODEL_TOPICS if t != topics.UNIT_POSITIONS))
sessions = prepare(settings.db_url)
replay_into_an_empty_read_model(settings, sessions)
projector = Projector(sessions)
