import time

from django.core.management.base import BaseCommand

from events_app.services.demo_data import demo_seed


def seed_default_reports(environment) -> None:
    """The demo's saved reports (sign-ups per week by plan first), when the reports app provides them."""
    try:
        from reports_app.services import saved_report_seed_defaults
    except ImportError:
        return
    saved_report_seed_defaults(environment=environment)


class Command(BaseCommand):
    help = "Seed the demo environment: thousands of users over five plans, cross-device logins and merges."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=5000)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, users, days, seed, **options):
        started = time.monotonic()
        summary = demo_seed(people=users, days=days, seed=seed)
        seed_default_reports(summary.environment)
        self.stdout.write(
            f"Demo environment {summary.environment.name}: {summary.people} people, {summary.events} events, "
            f"{summary.merges} cross-device merges in {time.monotonic() - started:.1f} s"
        )
        self.stdout.write(f"app_id: {summary.environment.app_id}")
        self.stdout.write(f"api_key: {summary.api_key}")
