from django.core.management.base import BaseCommand, CommandError

from config.kernel.errors import InvalidInput
from users_app.services.environments import environment_create


class Command(BaseCommand):
    help = "Create an environment (one tracked site or app) and print its app_id and API key."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--app-id", dest="app_id")
        parser.add_argument("--api-key", dest="api_key")
        parser.add_argument(
            "--account-property", dest="account_property", help="The user property naming a person's account."
        )

    def handle(self, *args, name, app_id=None, api_key=None, account_property=None, **options):
        try:
            created = environment_create(
                name=name, app_id=app_id, api_key=api_key, account_id_property=account_property
            )
        except InvalidInput as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"Environment: {created.environment.name}")
        self.stdout.write(f"app_id: {created.environment.app_id}")
        self.stdout.write(f"api_key: {created.api_key}")
        if created.environment.account_id_property:
            self.stdout.write(f"account id property: {created.environment.account_id_property}")
        self.stdout.write("Keep the API key: it is shown only once.")
