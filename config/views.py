from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView

from users_app.models import Environment


class HomeView(LoginRequiredMixin, TemplateView):
    template_name = "home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["environments"] = Environment.objects.order_by("name")
        return context
