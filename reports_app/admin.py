from django.contrib import admin

from reports_app.models import SavedReport


@admin.register(SavedReport)
class SavedReportAdmin(admin.ModelAdmin):
    list_display = ["name", "environment", "pinned", "created_by", "updated_at"]
    list_filter = ["environment", "pinned"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]
    raw_id_fields = ["created_by"]
