from django.apps import AppConfig


class EventsAppConfig(AppConfig):
    name = "events_app"
    verbose_name = "Events and sessions"

    def ready(self) -> None:
        from events_app import tasks  # noqa: F401 - registers the tasks, which defined_events/queue.py publishes by name
