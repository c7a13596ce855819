"""Which environment an API call may write to or read, checked before anything is parsed or stored: the
known app_id (404), the allowed origin (403), the API key if sent or required (401); the read API's
`Authorization: Bearer <api key>`."""

import hmac
from urllib.parse import urlsplit

from django.db import IntegrityError
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from config.kernel.api import JsonBodyApi
from config.kernel.errors import InvalidInput
from config.kernel.validation import parse_app_id
from users_app.models import Environment
from users_app.services.environments import (
    api_key_hash,
    environment_for_api_key,
    environment_for_app_id,
    environment_write_failure,
)


def origin_normal_form(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_is_same_site(request, origin: str) -> bool:
    # Compare host[:port] only: behind a TLS-terminating proxy Django may see http while the page is https.
    return urlsplit(origin).netloc.lower() == request.get_host().lower()


def origin_is_allowed(environment: Environment | None, origin: str) -> bool:
    if environment is None:
        return False
    allowed = {origin_normal_form(str(item)) for item in environment.allowed_origins or []}
    return "*" in allowed or origin_normal_form(origin) in allowed


def origin_check(request, environment: Environment) -> None:
    """A call sent by a page on another site (it carries that page's `Origin`) is refused unless the environment
    allows that origin, on every ingest endpoint: a page can send a `text/plain` POST to any of them without a
    preflight (`fetch(..., {mode: "no-cors"})`), so CORS alone would only hide the answer, not stop the write.
    Calls without `Origin` (servers, curl) and pages of this server itself are not concerned."""
    origin = request.headers.get("Origin")
    if origin and not origin_is_same_site(request, origin) and not origin_is_allowed(environment, origin):
        raise InvalidInput(
            "origin_not_allowed", "This origin is not in the environment's allowed origins.", "Origin", status=403
        )


def browser_origin_check(request, environment: Environment) -> None:
    """With "server calls need the API key" on, the browser endpoint would be the one way around it for a
    server (it never asks for the key: a page cannot keep one). It then takes only what browsers send, a request
    carrying an `Origin`, which origin_check holds to the allowed origins. A server can still forge an
    `Origin` header: docs/api.md says so plainly."""
    if environment.server_calls_need_api_key and not request.headers.get("Origin"):
        raise InvalidInput(
            "origin_required",
            "This environment requires the API key on server calls: the browser endpoint takes calls from "
            "pages of its allowed origins only.",
            "Origin",
            status=403,
        )


def _sent_api_key(request, body: dict) -> tuple[str | None, str]:
    """(the key, where it came from): `Authorization: Bearer <key>`, else an `api_key` body field for clients
    that can shape the body but not set headers."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return key.strip(), "Authorization"
    key = body.get("api_key")
    if key is None:
        return None, "Authorization"
    if not isinstance(key, str):
        raise InvalidInput("unauthorized", "`api_key` must be a string.", "api_key", status=401)
    return key, "api_key"


def api_key_check(request, body: dict, environment: Environment) -> None:
    """Environments with `server_calls_need_api_key` refuse server calls without their key. A key that is sent
    is checked whatever the setting, so clients can be given the key, and checked, before it is switched on."""
    key, field = _sent_api_key(request, body)
    if key is None:
        if environment.server_calls_need_api_key:
            raise InvalidInput(
                "unauthorized",
                "This environment requires the API key on server calls: send `Authorization: Bearer <api key>`.",
                field,
                status=401,
            )
        return
    if not hmac.compare_digest(api_key_hash(key[:200]), environment.api_key_hash):
        raise InvalidInput("unauthorized", "This is not the API key of this app_id's environment.", field, status=401)


class IngestApi(JsonBodyApi):
    """An ingest view: its JSON body names the environment it writes to (`environment_of`).

    An environment deleted by another process while this one still had it cached (docs/operations.md,
    "Environment cache") makes the call's write fail on a foreign key (nothing of it is stored): answered as
    the unknown app_id it now is (404), or 503 if the app_id has a new environment since, not a 500."""

    environment_used = None
    # The environment's "server calls need the API key" applies (not to the browser endpoint: a page cannot keep
    # a secret, so its key would be public).
    server_endpoint = True

    def handle_exception(self, exc):
        if isinstance(exc, IntegrityError) and self.environment_used is not None:
            exc = environment_write_failure(self.environment_used) or exc
        return super().handle_exception(exc)

    def environment_of(self, body: dict) -> Environment:
        """The call's environment, once the call may write to it: known app_id (404), allowed origin (403), API
        key if sent or required (401). Nothing is parsed or stored before this."""
        self.environment_used = environment_for_app_id(parse_app_id(body.get("app_id")))
        origin_check(self.request, self.environment_used)
        if self.server_endpoint:
            api_key_check(self.request, body, self.environment_used)
        else:
            browser_origin_check(self.request, self.environment_used)
        return self.environment_used


class BearerAuthentication(BaseAuthentication):
    """`Authorization: Bearer <credential>` naming an environment; request.auth is the environment. Subclasses
    say how a credential is looked up, how long one may be, and what a missing or unknown one is told."""

    credential_max_length: int
    missing_message: str
    invalid_message: str

    def environment_for_credential(self, credential: str) -> Environment | None:
        raise NotImplementedError

    def authenticate(self, request):
        scheme, _, credential = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise exceptions.NotAuthenticated(self.missing_message)
        environment = self.environment_for_credential(credential.strip()[: self.credential_max_length])
        if environment is None:
            raise exceptions.AuthenticationFailed(self.invalid_message)
        return (None, environment)

    def authenticate_header(self, request) -> str:
        return "Bearer"


class ApiKeyAuthentication(BearerAuthentication):
    """`Authorization: Bearer <environment api key>`."""

    credential_max_length = 200
    missing_message = "Send `Authorization: Bearer <api key>`."
    invalid_message = "Unknown API key."

    def environment_for_credential(self, credential: str) -> Environment | None:
        return environment_for_api_key(credential)


class HasEnvironment(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.auth is not None


class ReadApi(APIView):
    """Base of the read API: a key sees only its own environment (`self.environment`)."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasEnvironment]

    @property
    def environment(self):
        return self.request.auth
