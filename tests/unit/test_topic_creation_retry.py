"""deploy.topics.create_topics asks again while a fresh cluster does not know its controller yet."""
import pytest
from kafka.errors import UnknownBrokerIdError

from deploy import topics
from spkt.settings import Settings


def test_a_controller_not_known_yet_is_asked_again_and_other_errors_are_not(monkeypatch):
    calls = []

    def flaky(settings):
        calls.append(settings)
        if len(calls) < 3:
            raise UnknownBrokerIdError(1)
        return {"spkt.reports": "created"}

    monkeypatch.setattr(topics, "_create_topics", flaky)
    monkeypatch.setattr(topics.time, "sleep", lambda s: None)
    assert topics.create_topics(Settings()) == {"spkt.reports": "created"} and len(calls) == 3

    def never_known(settings):
        calls.append(settings)
        raise UnknownBrokerIdError(1)

    calls.clear()
    monkeypatch.setattr(topics, "_create_topics", never_known)
    with pytest.raises(UnknownBrokerIdError):
        topics.create_topics(Settings(), attempts=2)
    assert len(calls) == 2

    def broken(settings):
        raise RuntimeError("could not create spkt.reports")
    monkeypatch.setattr(topics, "_create_topics", broken)
    with pytest.raises(RuntimeError):
        topics.create_topics(Settings())
