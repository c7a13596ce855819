from django.urls import path

from reports_app import views, views_defined_events

app_name = "reports"

urlpatterns = [
    path("", views.ReportView.as_view(), name="report"),
    path("export.csv", views.ReportCsvView.as_view(), name="export-csv"),
    path("saved/", views.SavedReportCreateView.as_view(), name="saved-create"),
    path("saved/<int:pk>/", views.SavedReportOpenView.as_view(), name="saved-open"),
    path("saved/<int:pk>/update/", views.SavedReportUpdateView.as_view(), name="saved-update"),
    path("saved/<int:pk>/duplicate/", views.SavedReportDuplicateView.as_view(), name="saved-duplicate"),
    path("saved/<int:pk>/delete/", views.SavedReportDeleteView.as_view(), name="saved-delete"),
    path("defined-events/", views_defined_events.DefinedEventListView.as_view(), name="defined-events"),
    path("defined-events/new/", views_defined_events.DefinedEventCreateView.as_view(), name="defined-event-new"),
    path(
        "defined-events/preview",
        views_defined_events.DefinedEventPreviewView.as_view(),
        name="defined-event-preview",
    ),
]
