"""Races identify must survive without a savepoint or an out-of-order lock (users_app/services/identify.py,
_StartAgain): the same unseen device identified by several requests at once.

Real HTTP against the live server: every request thread has its own PostgreSQL connection and transaction."""

import os
import threading

import pytest
from django.db import connection

from tests.users_app.test_concurrency import post_json
from users_app.models import MergeRecord, Profile

REQUESTS = 10

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="row locks need PostgreSQL"
)



def identify_at_once(live_server, environment, user_id: str, identity: str) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(REQUESTS)
    answers = []

    def one() -> None:
        barrier.wait()
        answers.append(
            post_json(
                f"{live_server.url}/api/v1/identify",
                {"app_id": environment.app_id, "user_id": user_id, "identity": identity},
            )
        )

    threads = [threading.Thread(target=one) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == REQUESTS
    assert {status for status, _ in answers} == {200}, answers
    return answers


def test_an_unseen_device_identified_as_an_existing_identity_by_many_requests_at_once_merges_once(
    transactional_db, live_server, environment, calls, empty_broker_afterwards
):
    assert connection.vendor == "postgresql"
    calls.track(identity="alice")
    alice = Profile.objects.get(identity="alice")

    answers = identify_at_once(live_server, environment, "8400", "alice")

    assert {body["user_id"] for _, body in answers} == {str(alice.user_id)}
    assert Profile.objects.get(user_id=8400).merged_into_id == alice.pk
    assert MergeRecord.objects.filter(source__user_id=8400).count() == 1
    # The call that merged names the record; the later ones found the device already alice's (case 2).
    assert [body["merge"]["id"] for _, body in answers if body["merge"]] == [MergeRecord.objects.get().pk]


def test_an_unseen_device_identified_as_a_new_identity_by_many_requests_at_once_takes_it_once(
    transactional_db, live_server, environment, empty_broker_afterwards
):
    answers = identify_at_once(live_server, environment, "8500", "bob")

    assert {body["user_id"] for _, body in answers} == {"8500"}
    assert {body["merge"] for _, body in answers} == {None}
    assert Profile.objects.get(identity="bob").user_id == 8500
    assert Profile.objects.filter(environment=environment).count() == 1
    assert not MergeRecord.objects.exists()
