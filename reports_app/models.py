"""Saved graph reports. A report's definition is its canonical query string parameters (reports_app.query),
so reopening one is the same as opening its URL."""

from django.conf import settings
from django.db import models

from users_app.models import Environment


class SavedReport(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="saved_reports")
    name = models.CharField(max_length=200)
    # ReportQuery.to_params(): {"measure": "...", "where": ["user.plan=Startup"], "range": "90d", ...}
    params = models.JSONField(default=dict)
    # Pinned reports (the demo's headline report) come first in the list.
    pinned = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-pinned", "id"]
        indexes = [models.Index(fields=["environment", "-pinned", "id"], name="saved_report_list")]

    def __str__(self) -> str:
        return self.name
