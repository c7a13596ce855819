from django.urls import path

from users_app import views

app_name = "users"

urlpatterns = [
    path("", views.UserListView.as_view(), name="list"),
    path("count/", views.UserCountView.as_view(), name="count"),
    path("account/", views.AccountView.as_view(), name="account"),
    path("<str:user_id>/", views.ProfileView.as_view(), name="profile"),
    path("<str:user_id>/sessions/<int:session_pk>/", views.SessionView.as_view(), name="session"),
]
