from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.staticfiles.storage import staticfiles_storage
from django.db import DatabaseError, connection
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.views.defaults import page_not_found
from django.views.generic import TemplateView

from config.kernel.shared_cache import shared_cache_reachable
from users_app.models import Environment


class HomeView(LoginRequiredMixin, TemplateView):
    template_name = "home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["environments"] = Environment.objects.order_by("name")
        return context


def not_found(request, exception=None):
    """404s under /api/ answer the API's JSON error body; pages get Django's usual page."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": "not_found", "message": f"No API endpoint at {request.path[:200]}.", "field": None}}
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)


def health(request):
    """GET /healthz for a load balancer or an orchestrator: 200 when this process can reach the database, 503
    when it cannot. Redis is reported, not required: ingest and identify keep working while it is down
    (docs/operations.md, "Outages")."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except DatabaseError:
        database = "unavailable"
    body = {"database": database, "cache": "ok" if shared_cache_reachable() else "unavailable"}
    return JsonResponse(body, status=200 if database == "ok" else 503)


def favicon(request):
    """Browsers ask for /favicon.ico on every page that names none (the admin, the API's pages): the icon, not a
    logged 404."""
    return HttpResponsePermanentRedirect(staticfiles_storage.url("cairn/favicon.svg"))
