"""POST/GET /api/v1/defined-events and DELETE /api/v1/defined-events/<id> (SPEC 13), with the environment's API
key as the read API takes it. Thin views over events_app/defined_events/services.py."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from config.kernel.api import JsonBodyApi
from config.kernel.errors import NotFound
from config.kernel.schema import ERROR_SCHEMA, NOT_BLANK, NULL, READ_ERRORS, json_object, schema_field
from config.kernel.validation import ascii_decimal
from events_app.defined_events.rules import (
    MAX_RULES,
    NAME_MAX_LENGTH,
    PATH_MAX_LENGTH,
    SELECTOR_MAX_LENGTH,
    SELECTOR_PATTERN,
    TEXT_MAX_LENGTH,
)
from events_app.defined_events.services import (
    defined_event_as_dict,
    defined_event_create,
    defined_event_delete,
    defined_event_list,
)
from events_app.models import EVENT_NAME_MAX_LENGTH
from users_app.api_access import ReadApi


def _optional_text(max_length: int, description: str, **extra) -> dict:
    return {
        "oneOf": [{"type": "string", "maxLength": max_length, "pattern": NOT_BLANK, **extra}, NULL],
        "description": description,
    }


RULE = json_object(
    {
        "event": {
            "type": "string",
            "maxLength": EVENT_NAME_MAX_LENGTH,
            "pattern": NOT_BLANK,
            "description": "The raw event name, exactly (any event, not only click, submit and change).",
        },
        "selector": {
            "oneOf": [{"type": "string", "maxLength": SELECTOR_MAX_LENGTH, "pattern": SELECTOR_PATTERN}, NULL],
            "description": "CSS subset: compounds of tag, `*`, `#id`, `.class`, joined by white space (descendant) "
            "or `>` (child); no commas, attributes or pseudo-classes. Matches when the target or any ancestor in "
            "`hierarchy` matches.",
        },
        "text": _optional_text(TEXT_MAX_LENGTH, "The element's `target_text`, exactly."),
        "path": _optional_text(PATH_MAX_LENGTH, "A glob on the page's `path`; `*` is the only wildcard."),
    },
    ["event"],
    additionalProperties=False,
)
DEFINED_EVENT_REQUEST = inline_serializer(
    "DefinedEventCreate",
    {
        "name": schema_field(
            {"type": "string", "maxLength": NAME_MAX_LENGTH, "pattern": NOT_BLANK},
            help_text="Unique in the environment (trimmed); a name taken answers 409.",
        ),
        "rules": schema_field(
            {"type": "array", "minItems": 1, "maxItems": MAX_RULES, "items": RULE},
            help_text="The defined event matches an event when any rule does; a rule, when all its fields do.",
        ),
    },
)
DEFINED_EVENT_LIST = inline_serializer(
    "DefinedEventList",
    {
        "results": inline_serializer(
            "DefinedEvent",
            {
                "id": serializers.IntegerField(),
                "name": serializers.CharField(),
                "rules": schema_field({"type": "array", "items": RULE}),
                "created_at": serializers.DateTimeField(),
                "backfill": schema_field(
                    {"type": "string", "enum": ["pending", "running", "done"]},
                    help_text="Past events are matched by a background task; until `done`, counts are partial.",
                ),
            },
            many=True,
        )
    },
)


class DefinedEventsApi(JsonBodyApi, ReadApi):
    @extend_schema(
        summary="Define an event over past and future raw events (SPEC 13)",
        request=DEFINED_EVENT_REQUEST,
        responses={
            201: inline_serializer(
                "DefinedEventCreated", {"id": serializers.IntegerField(), "name": serializers.CharField()}
            ),
            409: ERROR_SCHEMA,
            413: ERROR_SCHEMA,
            **READ_ERRORS,
        },
        examples=[
            OpenApiExample(
                "Clicked Buy",
                request_only=True,
                value={
                    "name": "Clicked Buy",
                    "rules": [{"event": "click", "selector": "#buy", "text": "Buy now", "path": "/pricing*"}],
                },
            )
        ],
    )
    def post(self, request):
        body = self.json_body(request)
        defined = defined_event_create(environment=self.environment, name=body.get("name"), rules=body.get("rules"))
        return Response({"id": defined.pk, "name": defined.name}, status=201)

    @extend_schema(
        summary="The environment's defined events",
        responses={200: DEFINED_EVENT_LIST, 401: ERROR_SCHEMA},
    )
    def get(self, request):
        return Response(
            {"results": [defined_event_as_dict(item) for item in defined_event_list(environment=self.environment)]}
        )


class DefinedEventDetailApi(ReadApi):
    @extend_schema(
        summary="Delete a defined event (its match rows go; the events stay)",
        parameters=[
            OpenApiParameter("defined_event_id", {"type": "string", "pattern": "^[0-9]{1,18}$"}, OpenApiParameter.PATH)
        ],
        responses={204: None, 401: ERROR_SCHEMA, 404: ERROR_SCHEMA},
    )
    def delete(self, request, defined_event_id: str):
        number = ascii_decimal(defined_event_id, 2**63)
        if number is None:
            raise NotFound("No such defined event in this environment.", field="id")
        defined_event_delete(environment=self.environment, defined_event_id=number)
        return Response(status=204)
