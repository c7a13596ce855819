from django.apps import AppConfig


class UsersAppConfig(AppConfig):
    name = "users_app"
    verbose_name = "Users and identity"
