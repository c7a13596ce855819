"""A small fake product at /demo/<app_id>/ that loads the real tracker for that environment: for trying
Cairn by hand and for the browser tests. Nothing here stores anything: sign-up and login only call
`heap.identify` / `heap.addUserProperties` / `heap.track` in the page, like a real product would.

It is public (no login) and works for every environment's app_id, so it is served only when
`CAIRN_DEMO_SITE` is on (by default only with DEBUG); otherwise every demo URL is a 404."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.safestring import mark_safe
from django.views.generic import TemplateView

from users_app.models import Environment
from users_app.services.tracker_snippet import tracker_snippet

PLANS = ["Free", "Startup", "Growth", "Premium", "Enterprise"]


class DemoPageView(TemplateView):
    """One page of the demo product. `with_tracker=False` is a page off the tracked site (where a visitor
    goes after the last tracked click), so whatever arrives from it came by sendBeacon."""

    with_tracker = True

    def dispatch(self, request, *args, **kwargs):
        if not settings.CAIRN_DEMO_SITE:
            raise Http404("The demo site is off (CAIRN_DEMO_SITE).")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        app_id = self.kwargs["app_id"]
        if "\x00" in app_id:  # PostgreSQL text cannot hold NUL: no environment has it (not a DataError)
            raise Http404("No such environment.")
        environment = get_object_or_404(Environment, app_id=app_id)
        context["environment"] = environment
        context["app_id"] = environment.app_id
        context["plans"] = PLANS
        if self.with_tracker:
            # Built by tracker_snippet from escaped JavaScript string literals, never from raw input.
            context["tracker_snippet"] = mark_safe(tracker_snippet(environment, self.request))  # noqa: S308
        return context
