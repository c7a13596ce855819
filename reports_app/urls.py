from django.urls import path

from reports_app import views

app_name = "reports"

urlpatterns = [
    path("", views.ReportView.as_view(), name="report"),
    path("export.csv", views.ReportCsvView.as_view(), name="export-csv"),
    path("saved/", views.SavedReportCreateView.as_view(), name="saved-create"),
    path("saved/<int:pk>/", views.SavedReportOpenView.as_view(), name="saved-open"),
    path("saved/<int:pk>/update/", views.SavedReportUpdateView.as_view(), name="saved-update"),
    path("saved/<int:pk>/duplicate/", views.SavedReportDuplicateView.as_view(), name="saved-duplicate"),
    path("saved/<int:pk>/delete/", views.SavedReportDeleteView.as_view(), name="saved-delete"),
]
