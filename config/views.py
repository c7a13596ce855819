from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import JsonResponse
from django.views.defaults import page_not_found
from django.views.generic import TemplateView

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
