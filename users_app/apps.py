from django.apps import AppConfig


class UsersAppConfig(AppConfig):
    name = "users_app"
    verbose_name = "Users and identity"

    def ready(self) -> None:
        from users_app import (
            schema,  # noqa: F401 - registers the OpenAPI auth extension
            tasks,  # noqa: F401 - registers the tasks, which merges/queue.py publishes by name
        )
