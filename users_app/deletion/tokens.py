"""Heap's `auth_token` for the deletion API: HTTP Basic `app_id:api_key` buys a short-lived bearer token.

The token is signed (django.core.signing, with SECRET_KEY) and carries the environment and a few characters
of its key's hash, so it expires by itself, is never stored, and stops working when the key is rotated."""

import base64
import binascii
import hmac

from django.core import signing

from config.kernel.errors import InvalidInput
from users_app.models import Environment
from users_app.services.environments import api_key_hash

TOKEN_SALT = "cairn.deletion-api-token"
TOKEN_SECONDS = 3600


def _unauthorized(message: str) -> InvalidInput:
    return InvalidInput("unauthorized", message, "Authorization", status=401)


def auth_token_issue(authorization: str) -> dict:
    """{"access_token", "expires_in"} for a valid `Authorization: Basic base64(app_id:api_key)`; else 401."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise _unauthorized("Send `Authorization: Basic base64(app_id:api_key)`.")
    try:
        app_id, separator, api_key = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise _unauthorized("The Basic credentials are not base64 of `app_id:api_key`.") from error
    environment = Environment.objects.filter(app_id=app_id[:64]).first() if separator else None
    if environment is None or not hmac.compare_digest(api_key_hash(api_key[:200]), environment.api_key_hash):
        raise _unauthorized("This app_id and API key do not match.")
    token = signing.dumps({"e": environment.pk, "k": environment.api_key_hash[:16]}, salt=TOKEN_SALT, compress=True)
    return {"access_token": token, "expires_in": TOKEN_SECONDS}


def environment_for_token(token: str) -> Environment | None:
    """The environment a bearer token from auth_token_issue was made for, if it is still valid."""
    try:
        claims = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_SECONDS)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(claims, dict):
        return None
    environment = Environment.objects.filter(pk=claims.get("e")).first()
    if environment is None or not hmac.compare_digest(environment.api_key_hash[:16], str(claims.get("k"))):
        return None
    return environment
