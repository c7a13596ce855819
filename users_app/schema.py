"""OpenAPI description of the read API's authentication (imported in UsersAppConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "users_app.api_common.ApiKeyAuthentication"
    name = "EnvironmentApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <environment API key>` (printed by create_environment).",
        }
