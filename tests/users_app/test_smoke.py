from users_app.models import Profile


def test_track_then_identify_merges_anonymous_history(
    api, environment, eager_celery, django_capture_on_commit_callbacks
):
    api.post("/api/track", {"app_id": environment.app_id, "user_id": "11", "event": "pageview"})
    api.post("/api/add_user_properties", {"app_id": environment.app_id, "identity": "alice",
                                          "properties": {"plan": "Startup"}})
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post("/api/v1/identify", {"app_id": environment.app_id, "user_id": "11", "identity": "alice"})
    assert answer.status_code == 200
    alice = Profile.objects.get(identity="alice")
    assert answer.json()["user_id"] == str(alice.user_id)
    detail = api.get(f"/api/v1/users/{alice.user_id}").json()
    assert detail["event_count"] == 1
    assert detail["properties"]["plan"]["value"] == "Startup"
