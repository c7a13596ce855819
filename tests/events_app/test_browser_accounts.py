"""heap.addAccountProperties through the browser endpoint (SPEC 11, issue 14): the account of the batch's current
user, the value rules of user properties, a user without an account; and Heap's script addresses, which answer
the tracker itself."""

import json
import os

import pytest

from events_app.management.commands.build_tracker import TRACKER_MINIFIED
from events_app.models import Event
from users_app.models import AccountProperty

URL = "/api/v1/browser"
DEVICE = "2222222222222"


def post(client, calls, user_id=DEVICE):
    body = {"app_id": "1000000001", "user_id": user_id, "session_id": "0123456789abcdef", "calls": calls}
    return client.post(URL, json.dumps(body), content_type="text/plain;charset=UTF-8")


def account_call(**properties):
    return {"type": "add_account_properties", "properties": properties}


def with_account_property(environment, name="company_id"):
    environment.account_id_property = name
    environment.save()
    return environment


def test_account_properties_go_to_the_users_account_set_earlier_in_the_same_batch(client, api, environment):
    with_account_property(environment)
    calls = [
        {"type": "add_user_properties", "properties": {"company_id": "acme"}},
        account_call(tier="Enterprise", seats=40, trial=True),
    ]
    response = post(client, calls)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 2 and response.json()["rejected"] == []
    account = api.get("/api/v1/accounts/acme").json()
    values = {key: value["value"] for key, value in account["properties"].items()}
    assert values == {"tier": "Enterprise", "seats": 40, "trial": "true"}
    assert account["user_count"] == 1
    # null removes one, as with user properties
    assert post(client, [account_call(trial=None)]).json()["accepted"] == 1
    assert "trial" not in api.get("/api/v1/accounts/acme").json()["properties"]


def test_a_user_without_an_account_has_the_call_rejected_and_the_rest_kept(client, api, environment):
    with_account_property(environment)
    calls = [
        account_call(tier="Free"),
        {"type": "track", "event": "Still Stored", "idempotency_key": "k1", "properties": {}},
    ]
    response = post(client, calls)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["accepted"] == 1
    assert [(item["index"], item["error"]["code"], item["error"]["field"]) for item in answer["rejected"]] == [
        (0, "no_account", "properties")
    ]
    assert "company_id" in answer["rejected"][0]["error"]["message"]
    events = api.get(f"/api/v1/users/{DEVICE}/events").json()["results"]
    assert [event["event"] for event in events] == ["Still Stored"]


def test_an_environment_without_an_account_id_property_rejects_the_call(client, environment):
    answer = post(client, [account_call(tier="Free")])
    assert answer.status_code == 400  # the batch's only call was rejected
    assert answer.json()["rejected"][0]["error"]["code"] == "no_account"
    assert "account id property" in answer.json()["rejected"][0]["error"]["message"]


def test_account_values_follow_the_user_property_rules(client, environment):
    with_account_property(environment)
    post(client, [{"type": "add_user_properties", "properties": {"company_id": "acme"}}])
    for bad in ({"nested": {"a": 1}}, {"ID": "x"}, {"": "x"}, {"k" * 1025: "x"}, {"v": "x" * 1025}, "tier", None):
        errors = [
            post(client, [{"type": kind, "properties": bad}]).json()["rejected"][0]["error"]
            for kind in ("add_account_properties", "add_user_properties")
        ]
        assert errors[0] == errors[1], bad  # the same code, message and field as for a user property
    assert post(client, [account_call(tier="Free")]).json()["accepted"] == 1


# ---- rate limits: the account's bucket, not the person's ----------------------------------------------------


@pytest.fixture
def redis_limits_of_three(settings):
    """The real Redis counters (REDIS_URL, as in production), 3 writes per person and per account."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set")
    settings.REDIS_URL = os.environ["REDIS_URL"]
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE = 3
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_BURST = 3


def rejections(response) -> list[tuple]:
    return [(item["index"], item["error"]["code"], item["error"]["field"]) for item in response.json()["rejected"]]


def track(key):
    return {"type": "track", "event": "Viewed Plan", "idempotency_key": key, "properties": {}}


def test_account_properties_do_not_use_up_the_persons_events(client, environment, redis_limits_of_three):
    with_account_property(environment)
    assert post(client, [{"type": "add_user_properties", "properties": {"company_id": "acme"}}]).status_code == 200
    # Five account updates: the account's bucket keeps three, and the person's (1 of 3 used) is not touched.
    response = post(client, [account_call(n=n) for n in range(5)])
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 3
    assert rejections(response) == [(3, "rate_limited", "account_id"), (4, "rate_limited", "account_id")]
    assert int(response["Retry-After"]) >= 1
    assert AccountProperty.objects.get(account_id="acme", key="n").typed_value == 2
    # The person still has their two writes for events.
    response = post(client, [track("e1"), track("e2")])
    assert response.status_code == 200, response.content
    assert Event.objects.filter(name="Viewed Plan").count() == 2
    assert post(client, [track("e3")]).status_code == 429  # and their own bucket still counts


def test_an_account_flooded_from_many_browsers_is_limited_in_the_server_apis_bucket(
    client, api, environment, redis_limits_of_three
):
    with_account_property(environment)
    devices = ["3000000000001", "3000000000002", "3000000000003"]
    answers = [
        post(
            client,
            [{"type": "add_user_properties", "properties": {"company_id": "acme"}}, account_call(by=device)],
            user_id=device,
        )
        for device in devices
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [rejections(answer) for answer in answers] == [[], [], []]
    # The account has had its three: a fourth browser's update is rejected, its events in the batch kept.
    acme = {"type": "add_user_properties", "properties": {"company_id": "acme"}}
    response = post(client, [acme, account_call(by="fourth"), track("k4")], user_id="3000000000004")
    assert response.status_code == 200, response.content
    assert rejections(response) == [(1, "rate_limited", "account_id")]
    assert Event.objects.filter(idempotency_key="k4").exists()
    # A batch of nothing but refused account updates is a 429 (the tracker sends it again later).
    response = post(client, [account_call(by="fourth again")], user_id="3000000000004")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == "rate_limited"
    assert AccountProperty.objects.get(account_id="acme", key="by").value == devices[-1]
    # The server API charges the same bucket.
    server = api.post(
        "/api/add_account_properties",
        {"app_id": environment.app_id, "account_id": "acme", "properties": {"by": "server"}},
    )
    assert server.status_code == 429, server.content
    # Another account is not limited by acme's flood.
    post(client, [{"type": "add_user_properties", "properties": {"company_id": "globex"}}], user_id="3000000000006")
    assert post(client, [account_call(tier="Free")], user_id="3000000000006").json()["accepted"] == 1


def test_heaps_script_addresses_answer_the_tracker_with_its_headers(client):
    tracker = TRACKER_MINIFIED.read_bytes()
    for path in ("/js/heap-1000000001.js", "/config/1000000001/heap_config.js", "/static/cairn/tracker.min.js"):
        answer = client.get(path, HTTP_ORIGIN="https://shop.example.org")
        assert answer.status_code == 200, path
        assert b"".join(answer.streaming_content) == tracker
        assert answer["Content-Type"].startswith("text/javascript")
        assert answer["Cache-Control"] == "max-age=300, public"
        assert answer["Access-Control-Allow-Origin"] == "*"
        assert answer["Cross-Origin-Resource-Policy"] == "cross-origin"
    for path in ("/js/heap-.js", "/js/heap-1/2.js", "/config/1/other.js", "/js/heap-1.js/"):
        assert client.get(path).status_code == 404, path
