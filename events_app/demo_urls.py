from django.urls import path

from events_app.demo_views import DemoPageView

app_name = "demo"

urlpatterns = [
    path("<str:app_id>/", DemoPageView.as_view(template_name="demo/landing.html"), name="landing"),
    path("<str:app_id>/signup/", DemoPageView.as_view(template_name="demo/signup.html"), name="signup"),
    path("<str:app_id>/login/", DemoPageView.as_view(template_name="demo/login.html"), name="login"),
    path("<str:app_id>/app/", DemoPageView.as_view(template_name="demo/app.html"), name="app"),
    path("<str:app_id>/autocapture/", DemoPageView.as_view(template_name="demo/autocapture.html"), name="autocapture"),
    path("<str:app_id>/playground/", DemoPageView.as_view(template_name="demo/playground.html"), name="playground"),
    path(
        "<str:app_id>/goodbye/",
        DemoPageView.as_view(template_name="demo/goodbye.html", with_tracker=False),
        name="goodbye",
    ),
]
