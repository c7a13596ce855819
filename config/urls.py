from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.views import HomeView, favicon, health, not_found
from events_app import api as events_api
from events_app import api_browser, api_defined_events
from reports_app import api as reports_api
from reports_app import api_funnels as reports_api_funnels
from users_app import api as users_api
from users_app import api_deletion as users_api_deletion

api_patterns = [
    path("track", events_api.TrackApi.as_view(), name="api-track"),
    path("add_user_properties", events_api.UserPropertiesAddApi.as_view(), name="api-add-user-properties"),
    path("add_account_properties", events_api.AccountPropertiesAddApi.as_view(), name="api-add-account-properties"),
    # Heap's legacy name for add_user_properties.
    path("identify", events_api.UserPropertiesAddApi.as_view(), name="api-identify-legacy"),
    path("v1/identify", users_api.IdentifyApi.as_view(), name="api-identify"),
    path("v1/browser", api_browser.BrowserBatchApi.as_view(), name="api-browser"),
    path("v1/users", users_api.UserLookupApi.as_view(), name="api-user-lookup"),
    path("v1/users/search", users_api.UserSearchApi.as_view(), name="api-user-search"),  # before <user_id>
    path("v1/users/<str:user_id>", users_api.UserDetailApi.as_view(), name="api-user-detail"),
    path("v1/users/<str:user_id>/events", users_api.UserEventsApi.as_view(), name="api-user-events"),
    path("v1/accounts/<str:account_id>", users_api.AccountDetailApi.as_view(), name="api-account-detail"),
    path("v1/merges", users_api.MergeListApi.as_view(), name="api-merges"),
    # Heap's user deletion API (SPEC 12), same paths.
    path("public/v0/auth_token", users_api_deletion.AuthTokenApi.as_view(), name="api-auth-token"),
    path("public/v0/user_deletion", users_api_deletion.UserDeletionApi.as_view(), name="api-user-deletion"),
    path(
        "public/v0/deletion_status/<str:deletion_request_id>",
        users_api_deletion.DeletionStatusApi.as_view(),
        name="api-deletion-status",
    ),
    path("v1/reports/query", reports_api.ReportQueryApi.as_view(), name="api-report-query"),
    path("v1/reports/funnel", reports_api_funnels.FunnelReportApi.as_view(), name="api-report-funnel"),
    path("v1/reports/retention", reports_api_funnels.RetentionReportApi.as_view(), name="api-report-retention"),
    path("v1/defined-events", api_defined_events.DefinedEventsApi.as_view(), name="api-defined-events"),
    path(
        "v1/defined-events/<str:defined_event_id>",
        api_defined_events.DefinedEventDetailApi.as_view(),
        name="api-defined-event",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("healthz", health, name="health"),
    path("favicon.ico", favicon),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("users/", include("users_app.urls")),
    path("api/", include(api_patterns)),
    path("demo/", include("events_app.demo_urls")),
    path("reports/", include("reports_app.urls")),
]

handler404 = not_found
