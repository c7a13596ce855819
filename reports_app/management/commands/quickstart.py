import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from events_app.services.demo_data import DEMO_APP_ID
from users_app.models import Environment


class Command(BaseCommand):
    help = "Migrate, seed the demo data on first run, print the logins and serve the dashboard."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-seed", action="store_true")
        parser.add_argument("--no-serve", action="store_true", help="Set up and print the logins only.")

    def handle(self, *args, port, no_seed, no_serve, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if not no_seed and not Environment.objects.filter(app_id=DEMO_APP_ID).exists():
            self.stdout.write("Seeding demo data (a minute or so on first run)...")
            call_command("seed_demo")
        logins = [self._login("admin", staff=True), self._login("viewer", staff=False)]
        self.stdout.write(self.style.SUCCESS(f"\nCairn is at http://127.0.0.1:{port}/"))
        for username, password, role in logins:
            self.stdout.write(f"  {role}: {username} / {password}")
        if settings.CAIRN_DEMO_SITE:
            self.stdout.write(f"  demo site: http://127.0.0.1:{port}/demo/{DEMO_APP_ID}/\n")
        else:
            self.stdout.write("  demo site: off (CAIRN_DEMO_SITE=1 turns it on)\n")
        if not no_serve:
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)

    def _login(self, username: str, *, staff: bool) -> tuple[str, str, str]:
        """A fresh password each run, so the printed login is always the right one."""
        password = secrets.token_urlsafe(9)
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = staff
        user.set_password(password)
        user.save()
        return username, password, "admin (merges, environments)" if staff else "viewer (Users, reports)"
