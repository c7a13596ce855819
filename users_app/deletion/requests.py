"""Heap's user deletion requests (SPEC 12): recorded by the API (or an admin), run by a Celery task.

The state lives in the DeletionRequest row, so the task is idempotent and safe if a worker dies: it resolves
the users asked for to people (profile primary keys) once, in one transaction that also empties the list of
user_ids and identities (the request keeps no personal data from then on), then deletes the people one by one
(users_app/deletion/person.py), each person's last batch removing it from the request's list and counting it.
A run that died is continued by the next one (acks_late redelivery, or the sweep for a lost message)."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config.kernel.errors import InvalidInput
from config.kernel.validation import parse_identity, parse_user_id
from users_app.deletion.person import person_delete
from users_app.deletion.queue import deletion_publish, deletion_queue_on_commit
from users_app.models import DeletionRequest, Environment, Profile
from users_app.people import person_pk

# Heap's limit per request.
MAX_USERS_PER_REQUEST = 10_000
LOOKUP_CHUNK = 1000
COUNTERS = {
    "profiles": "profiles_deleted",
    "events": "events_deleted",
    "sessions": "sessions_deleted",
    "merges": "merges_deleted",
}


def parse_deletion_users(users) -> list[dict]:
    """`users` as Heap's user_deletion takes it: 1 to 10,000 items, each `{"user_id": ...}` or
    `{"identity": ...}`. Returns them normalised ({"user_id": "123"} / {"identity": "alice"})."""
    if not isinstance(users, list) or not users:
        raise InvalidInput("invalid_users", "`users` must be a non-empty list of {user_id} or {identity}.", "users")
    if len(users) > MAX_USERS_PER_REQUEST:
        raise InvalidInput(
            "too_many_users", f"`users` holds at most {MAX_USERS_PER_REQUEST:,} items per request.", "users"
        )
    parsed = []
    for index, item in enumerate(users):
        field = f"users[{index}]"
        if not isinstance(item, dict) or len(item) != 1 or not {"user_id", "identity"} & set(item):
            raise InvalidInput(
                "invalid_user", f"`{field}` must be an object with exactly one of `user_id` or `identity`.", field
            )
        if "user_id" in item:
            parsed.append({"user_id": str(parse_user_id(item["user_id"], f"{field}.user_id"))})
        else:
            parsed.append({"identity": parse_identity(item["identity"], f"{field}.identity")})
    return parsed


def deletion_request_create(*, environment: Environment, users: list[dict], requested_by=None) -> DeletionRequest:
    """Record a request for these users (already parsed: parse_deletion_users) and queue its task on commit."""
    with transaction.atomic():
        request = DeletionRequest.objects.create(
            environment=environment, users=users, users_requested=len(users), requested_by=requested_by
        )
        deletion_queue_on_commit(deletion_request_id=request.pk)
    return request


def deletion_request_for_profile(*, profile: Profile, requested_by=None) -> DeletionRequest:
    """An admin's "Delete this person": the same request and task, resolved already (the admin chose a person)."""
    with transaction.atomic():
        request = DeletionRequest.objects.create(
            environment_id=profile.environment_id,
            person_pks=[person_pk(profile)],
            resolved=True,
            users_requested=1,
            requested_by=requested_by,
        )
        deletion_queue_on_commit(deletion_request_id=request.pk)
    return request


def _people_of(environment_id: int, users: list[dict]) -> list[int]:
    """The people (primary keys, each once, in the order asked) of the users that exist."""
    user_ids = [int(item["user_id"]) for item in users if "user_id" in item]
    identities = [item["identity"] for item in users if "identity" in item]
    people: dict[int, None] = {}
    for start in range(0, max(len(user_ids), len(identities)), LOOKUP_CHUNK):
        condition = Q(user_id__in=user_ids[start : start + LOOKUP_CHUNK]) | Q(
            identity__in=identities[start : start + LOOKUP_CHUNK]
        )
        for profile in Profile.objects.filter(condition, environment_id=environment_id).order_by("pk"):
            people[person_pk(profile)] = None
    return list(people)


def _resolve(deletion_request_id: int) -> DeletionRequest | None:
    with transaction.atomic():
        request = DeletionRequest.objects.select_for_update().filter(pk=deletion_request_id).first()
        if request is None or request.status == DeletionRequest.Status.DONE:
            return request
        if not request.resolved:
            request.person_pks = _people_of(request.environment_id, request.users)
            request.users = []  # from here on the request holds no user_id or identity
            request.resolved = True
        request.status = DeletionRequest.Status.RUNNING
        request.heartbeat_at = timezone.now()
        request.save()
    return request


def _count_batch(deletion_request_id: int, person: int, counts: dict[str, int]) -> None:
    """Add a batch's counts to the request, in the batch's transaction. The person's last batch (the one that
    deletes its profiles) also takes it off the request's list and counts it as deleted."""
    updates = {COUNTERS[key]: F(COUNTERS[key]) + count for key, count in counts.items() if key in COUNTERS and count}
    DeletionRequest.objects.filter(pk=deletion_request_id).update(**updates, heartbeat_at=timezone.now())
    if counts.get("profiles"):
        _person_off_the_list(deletion_request_id, person, counted=True)


def _person_off_the_list(deletion_request_id: int, person: int, *, counted: bool) -> None:
    with transaction.atomic():
        request = DeletionRequest.objects.select_for_update().get(pk=deletion_request_id)
        if person in request.person_pks:
            request.person_pks = [pk for pk in request.person_pks if pk != person]
            request.users_deleted += 1 if counted else 0
            request.save(update_fields=["person_pks", "users_deleted"])


def deletion_request_run(*, deletion_request_id: int) -> DeletionRequest | None:
    """The task's work: resolve, delete each person, mark done. Idempotent; None if there is no such request."""
    request = _resolve(deletion_request_id)
    if request is None or request.status == DeletionRequest.Status.DONE:
        return request
    for person in list(request.person_pks):
        person_delete(person_pk=person, on_batch=lambda counts, person=person: _count_batch(request.pk, person, counts))
        _person_off_the_list(request.pk, person, counted=False)  # already gone before this run: not counted again
    DeletionRequest.objects.filter(pk=request.pk).update(
        status=DeletionRequest.Status.DONE, person_pks=[], finished_at=timezone.now(), heartbeat_at=timezone.now()
    )
    request.refresh_from_db()
    return request


def deletion_status(request: DeletionRequest) -> dict:
    return {
        "deletion_request_id": str(request.pk),
        "status": request.status,
        "users_requested": request.users_requested,
        "users_deleted": request.users_deleted,
    }


def deletion_sweep() -> int:
    """Queue again the requests not done whose task has shown no sign of life for CAIRN_DELETION_STALE_SECONDS
    (a message lost with the broker, or refused when the request was made). Returns how many it queued."""
    stale_before = timezone.now() - timedelta(seconds=settings.CAIRN_DELETION_STALE_SECONDS)
    stale = DeletionRequest.objects.exclude(status=DeletionRequest.Status.DONE).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, requested_at__lt=stale_before)
    )
    queued = 0
    for deletion_request_id in stale.values_list("pk", flat=True)[:100]:
        if not deletion_publish(deletion_request_id=deletion_request_id):
            break
        DeletionRequest.objects.filter(pk=deletion_request_id).update(heartbeat_at=timezone.now())
        queued += 1
    return queued
