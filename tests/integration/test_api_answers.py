"""The API's answers to Idempotency-Keys, on SQLite and PostgreSQL: a repeat gets the first answer
whichever database holds them, and on SQLite they live in a file of their own, so storing one
never waits for the projection's write lock on the read model."""
import json
import threading

import pytest
from fastapi import HTTPException
from sqlalchemy import func, select, text

from schemas.envelope import utcnow
from services.api import commands
from services.projection import tables as t

BODY = {"description": "Ada kebakaran kios di pasar", "channel": "call_110"}
ANSWER = {"report_id": "r-1", "tracking_code": "LAP-1"}


def _stored(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(t.IdempotentRequest.__table__)).scalar_one()


def test_a_repeat_gets_the_first_answer_and_another_request_with_the_key_is_refused(database_url):
    sessions = t.prepare_for_api(database_url)
    try:
        with sessions() as session:
            commands.remember_answer(session, "desk-1:key-1", BODY, 202, ANSWER, location="/api/v1/reports/r-1")
        with sessions() as session:
            again = commands.earlier_answer(session, "desk-1:key-1", BODY)
            assert (again.status_code, json.loads(again.body), again.headers["location"]) == \
                (202, ANSWER, "/api/v1/reports/r-1")
            with pytest.raises(HTTPException) as refused:
                commands.earlier_answer(session, "desk-1:key-1", {**BODY, "description": "lain"})
            assert refused.value.status_code == 409
            assert commands.earlier_answer(session, "desk-1:key-2", BODY) is None
        read_model = sessions.kw["bind"]
        if database_url.startswith("sqlite"):  # in the file beside, none in the read model's table
            answers = sessions.kw["binds"][t.IdempotentRequest]
            assert answers.url.database.endswith("read-model-answers.db")
            assert (_stored(read_model), _stored(answers)) == (0, 1)
        else:
            assert "binds" not in sessions.kw
            assert _stored(read_model) == 1
    finally:
        t.dispose(sessions)


def test_on_sqlite_an_answer_is_stored_while_the_projection_holds_the_read_models_write_lock(tmp_path):
    url = f"sqlite:///{tmp_path / 'spkt.db'}"
    sessions = t.prepare_for_api(url)
    projection = sessions.kw["bind"].raw_connection()
    stored = threading.Event()

    def remember() -> None:
        with sessions() as session:
            commands.remember_answer(session, "desk-1:key-1", BODY, 202, ANSWER)
        stored.set()

    try:
        cursor = projection.cursor()
        cursor.execute("BEGIN IMMEDIATE")  # the write lock, as a batch of the projection's holds it
        cursor.execute("UPDATE incidents SET revision = revision WHERE 0")
        worker = threading.Thread(target=remember, daemon=True)
        worker.start()
        # Sharing the file, it would wait for the lock (busy_timeout, 30 s) and then fail.
        assert stored.wait(timeout=10), "storing the answer waited for the read model's write lock"
        cursor.execute("ROLLBACK")
        worker.join(timeout=10)
    finally:
        projection.close()
        t.dispose(sessions)


def test_answers_given_before_they_had_a_file_of_their_own_are_still_given(tmp_path):
    url = f"sqlite:///{tmp_path / 'spkt.db'}"
    before = t.prepare(url)  # the layout until now: the answers in the read model's table
    try:
        with before() as session:
            for n in range(1, 1202):  # more than one chunk of the copy
                session.add(t.IdempotentRequest(key=f"desk-1:key-{n}", request_hash=commands._request_hash(BODY),
                                                status_code=202, response=ANSWER, created_at=utcnow()))
            session.commit()
    finally:
        t.dispose(before)
    sessions = t.prepare_for_api(url)
    try:
        with sessions() as session:
            again = commands.earlier_answer(session, "desk-1:key-1201", BODY)
            assert (again.status_code, json.loads(again.body)) == (202, ANSWER)
        assert _stored(sessions.kw["binds"][t.IdempotentRequest]) == 1201
    finally:
        t.dispose(sessions)
    again = t.prepare_for_api(url)  # a second start copies nothing again (and nothing twice)
    try:
        with again.kw["binds"][t.IdempotentRequest].connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM idempotent_requests")).scalar_one() == 1201
    finally:
        t.dispose(again)
