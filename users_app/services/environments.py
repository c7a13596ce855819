import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction

from users_app.errors import InvalidInput, NotFound
from users_app.models import Environment


@dataclass
class EnvironmentWithKey:
    environment: Environment
    api_key: str  # shown once; only its hash is stored


def api_key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _new_app_id() -> str:
    # Heap's app_ids are numeric; keep the same look so existing snippets and configs feel at home.
    return str(secrets.randbelow(9 * 10**9) + 10**9)


def environment_create(*, name: str, app_id: str | None = None, api_key: str | None = None) -> EnvironmentWithKey:
    app_id = app_id or _new_app_id()
    api_key = api_key or f"cairn_{secrets.token_urlsafe(32)}"
    if len(api_key) < 16:
        raise InvalidInput("invalid_api_key", "An API key must be at least 16 characters.", "api_key")
    with transaction.atomic():
        if Environment.objects.filter(app_id=app_id).exists():
            raise InvalidInput("duplicate_app_id", f"app_id {app_id} already exists.", "app_id")
        environment = Environment.objects.create(
            name=name, app_id=app_id, api_key_hash=api_key_hash(api_key), api_key_hint=api_key[:10]
        )
    return EnvironmentWithKey(environment=environment, api_key=api_key)


def environment_rotate_api_key(*, environment: Environment) -> str:
    api_key = f"cairn_{secrets.token_urlsafe(32)}"
    environment.api_key_hash = api_key_hash(api_key)
    environment.api_key_hint = api_key[:10]
    environment.save(update_fields=["api_key_hash", "api_key_hint"])
    return api_key


def environment_for_app_id(app_id: str) -> Environment:
    environment = Environment.objects.filter(app_id=app_id).first()
    if environment is None:
        raise NotFound(f"No environment has app_id {app_id!r}.", field="app_id", code="unknown_app_id")
    return environment


def environment_for_api_key(api_key: str) -> Environment | None:
    return Environment.objects.filter(api_key_hash=api_key_hash(api_key)).first()
