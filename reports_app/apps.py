from django.apps import AppConfig


class ReportsAppConfig(AppConfig):
    name = "reports_app"
    verbose_name = "Reports"
