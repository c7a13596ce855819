import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.kernel.errors import InvalidInput
from events_app.services.demo_data import DEMO_API_KEY, demo_seed


def seed_default_reports(environment) -> None:
    """The demo's saved reports (sign-ups per week by plan first), when the reports app provides them."""
    try:
        from reports_app.services import saved_report_seed_defaults
    except ImportError:
        return
    saved_report_seed_defaults(environment=environment)


class Command(BaseCommand):
    help = (
        "Seed the demo environment: thousands of users over five plans, cross-device logins and merges. "
        "With DEBUG its API key is the one printed in the docs; otherwise a random one (printed), or --api-key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=5000)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--api-key", dest="api_key", help="API key of a new demo environment (an existing one keeps its key)."
        )

    def handle(self, *args, users, days, seed, api_key=None, **options):
        if api_key is None and settings.DEBUG:
            api_key = DEMO_API_KEY  # the quickstart: the docs' curl examples work as written
        elif api_key == DEMO_API_KEY and not settings.DEBUG:
            # The documented key is public: with it anyone could read this server's demo environment.
            raise CommandError(
                "That API key is printed in the docs; outside DEBUG give another or none "
                "(a random one is made and printed)."
            )
        started = time.monotonic()
        try:
            summary = demo_seed(people=users, days=days, seed=seed, api_key=api_key)
        except InvalidInput as error:
            raise CommandError(error.message) from error
        seed_default_reports(summary.environment)
        self.stdout.write(
            f"Demo environment {summary.environment.name}: {summary.people} people, {summary.events} events, "
            f"{summary.merges} cross-device merges in {time.monotonic() - started:.1f} s"
        )
        self.stdout.write(f"app_id: {summary.environment.app_id}")
        if summary.api_key is None:
            self.stdout.write(
                "api_key: unchanged (the one printed when the demo environment was created; the admin can rotate it)"
            )
        else:
            self.stdout.write(f"api_key: {summary.api_key}")
