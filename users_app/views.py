"""The Users view and profile pages (SPEC 6). Login required; viewers and admins alike.

The pages call the same selectors as the read API (`users_app.selectors`), so the HTML list and
`GET /api/v1/users/search` can never disagree.
"""

import json
from datetime import timedelta

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, JsonResponse
from django.urls import reverse
from django.views.generic import TemplateView, View

from config.kernel.errors import InvalidInput
from config.kernel.property_filters import ACCOUNT_SCOPE, USER_SCOPE, PropertyRef
from config.kernel.shared_cache import shared_cache_get, shared_cache_get_or_set
from config.kernel.validation import parse_user_id
from events_app.models import DefinedEvent
from users_app.environment_pages import EnvironmentMixin, account_url, profile_url
from users_app.models import Environment, Profile
from users_app.selectors import (
    PropertyFilter,
    UserCount,
    profile_events,
    profile_merge_history,
    profile_property_rows,
    profile_session_page,
    profile_sessions,
    property_keys_of,
    session_events,
    user_count,
    user_list,
)
from users_app.selectors.accounts import (
    ACCOUNT_USERS_SHOWN,
    account_detail,
    account_of,
    account_people,
    account_property_keys,
)
from users_app.user_query import (
    DEFAULT_COLUMNS,
    DEFAULT_PERIOD,
    KINDS,
    OPERATOR_LABELS,
    PERIODS,
    SPELLING_OF,
    UserQuery,
    parse_period,
    parse_user_query,
    users_view_name,
)

COUNT_CACHE_SECONDS = 60
KEYS_CACHE_SECONDS = 60


def duration_text(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


class DateRangeMixin:
    """The chosen period: a preset (`period=7d`, the default) or `from`/`to` dates."""

    def get_date_range(self):
        return parse_period(self.request.GET)

    def date_range_context(self, query: UserQuery | None) -> dict:
        return {
            "periods": PERIODS,
            "period": query.period if query else DEFAULT_PERIOD,
            "date_from": query.date_from if query else None,
            "date_to": query.date_to if query else None,
        }


class UserFilterMixin(DateRangeMixin):
    """Property filters, identified/anonymous, search and columns, all from the query string."""

    def get_user_query(self) -> UserQuery:
        return parse_user_query(self.request.GET)

    def url_with(self, **changes) -> str:
        """This page's URL with some parameters replaced (None removes one)."""
        params = self.request.GET.copy()
        for name, value in changes.items():
            params.pop(name, None)
            if value is not None:
                params.setlist(name, value if isinstance(value, list) else [value])
        return f"{self.request.path}?{params.urlencode()}" if params else self.request.path

    def filter_rows(self, query: UserQuery | None) -> list[dict]:
        """The filter form's rows: the current filters plus one empty row to add another."""
        blank = PropertyFilter(prop=PropertyRef(USER_SCOPE, ""), op=PropertyFilter.EQUALS)
        filters = [*(query.filters.properties if query else ()), blank]
        rows = []
        for index, prop_filter in enumerate(filters):
            values = list(prop_filter.values)
            one_of = prop_filter.op == PropertyFilter.ONE_OF
            rows.append(
                {
                    "name": f"f{index}",
                    "key": users_view_name(prop_filter.prop),
                    "op": SPELLING_OF[prop_filter.op],  # as the URL spells it, like the operator menu
                    "values": values,
                    # "one of" gets a spare value box; users.js adds more without a round trip.
                    "inputs": values + ([""] if one_of or not values else []),
                }
            )
        return rows


class UserListView(LoginRequiredMixin, EnvironmentMixin, UserFilterMixin, TemplateView):
    template_name = "users_app/user_list.html"

    def get(self, request, *args, **kwargs):
        environment = self.get_environment()
        context = {**self.environment_context(environment), "operators": OPERATOR_LABELS, "kinds": KINDS}
        try:
            query = self.get_user_query()
        except InvalidInput as error:
            context.update(
                self.date_range_context(None),
                error=error,
                filter_rows=self.filter_rows(None),
                columns=[users_view_name(column) for column in DEFAULT_COLUMNS],
                rows=[],
            )
            return self.render_to_response(self.get_context_data(**context), status=400)
        if environment is None:
            context.update(
                self.date_range_context(query),
                filter_rows=self.filter_rows(query),
                rows=[],
                columns=query.column_names,
                query=query,
            )
            return self.render_to_response(self.get_context_data(**context))
        try:
            page = user_list(environment=environment, filters=query.filters, columns=query.columns, cursor=query.cursor)
        except InvalidInput as error:
            context.update(
                self.date_range_context(query),
                error=error,
                filter_rows=self.filter_rows(query),
                columns=query.column_names,
                rows=[],
            )
            return self.render_to_response(self.get_context_data(**context), status=400)
        self.environment_shown = environment
        context.update(
            self.date_range_context(query),
            query=query,
            rows=[(row, profile_url(row.profile, environment), self.cells(row, query)) for row in page.rows],
            columns=query.column_names,
            known_keys=self.known_keys(environment, query, [row.profile.pk for row in page.rows]),
            count=self.count_for_page(environment, query),
            count_url=self.url_for_count(),
            count_page_url=self.url_with(count="1", cursor=None),
            filter_rows=self.filter_rows(query),
            search=query.filters.search,
            kind=query.filters.kind,
            event=query.filters.event,
            defined_event_names=DefinedEvent.objects.filter(environment=environment)
            .order_by("name")
            .values_list("name", flat=True)[:200],
            next_url=self.url_with(cursor=page.next_cursor) if page.next_cursor else None,
            searched_until=page.searched_until,
            first_url=self.url_with(cursor=None) if query.cursor else None,
            column_chips=[
                (name, self.url_with(col=[c for c in query.column_names if c != name] or [""], cursor=None))
                for name in query.column_names
            ],
        )
        return self.render_to_response(self.get_context_data(**context))

    def known_keys(self, environment: Environment, query: UserQuery, profile_ids: list[int]) -> list[dict]:
        """The filter and column pickers' suggestions: the page's users' property keys, the environment's account
        properties (`account.<key>`), and whatever the query names already."""
        suggested = [PropertyRef(USER_SCOPE, key) for key in property_keys_of(profile_ids)]
        # A DISTINCT over every account property row of the environment (tens of ms at 20,000 accounts), so it is
        # asked once a minute, not on every page.
        account_keys = shared_cache_get_or_set(
            f"cairn:account_keys:{environment.pk}", lambda: account_property_keys(environment), KEYS_CACHE_SECONDS
        )
        suggested += [PropertyRef(ACCOUNT_SCOPE, key) for key in account_keys]
        named = {*suggested, *query.columns, *(prop_filter.prop for prop_filter in query.filters.properties)}
        return sorted(
            ({"name": users_view_name(prop), "scope": prop.scope} for prop in named),
            key=lambda option: (option["scope"] == ACCOUNT_SCOPE, option["name"]),
        )

    def cells(self, row, query: UserQuery) -> list[tuple]:
        """(value, link) per column: the account id property's values and account properties' values link to the
        account page."""
        environment = self.environment_shown
        account_key = PropertyRef(USER_SCOPE, environment.account_id_property)
        cells = []
        for column, cell in zip(query.columns, row.columns, strict=True):
            account_id = None
            if cell is not None and environment.account_id_property and column == account_key:
                account_id = cell.value
            elif cell is not None and column.scope == ACCOUNT_SCOPE:
                account_id = row.account_id
            cells.append((cell, account_url(environment, account_id) if account_id is not None else None))
        return cells

    def count_for_page(self, environment: Environment, query: UserQuery) -> UserCount | None:
        """The count if it is already known (or asked for with `count=1`); otherwise the page does not wait
        for it: users.js fetches it from /users/count/ (one COUNT per filter change, then cached)."""
        if self.request.GET.get("count") == "1":
            return cached_user_count(environment, query)
        return shared_cache_get(count_cache_key(environment, query))

    def url_for_count(self) -> str:
        params = self.request.GET.copy()
        params.pop("cursor", None)
        return f"{reverse('users:count')}?{params.urlencode()}"


def count_cache_key(environment: Environment, query: UserQuery) -> str:
    return f"cairn:user_count:{environment.pk}:{query.count_key()}"


def cached_user_count(environment: Environment, query: UserQuery) -> UserCount:
    return shared_cache_get_or_set(
        count_cache_key(environment, query),
        lambda: user_count(environment=environment, filters=query.filters),
        COUNT_CACHE_SECONDS,
    )


class UserCountView(LoginRequiredMixin, EnvironmentMixin, UserFilterMixin, View):
    """How many users match the Users view's filters, as JSON for the page's script."""

    def get(self, request, *args, **kwargs):
        environment = self.get_environment()
        try:
            query = self.get_user_query()
        except InvalidInput as error:
            return JsonResponse({"error": error.as_dict()}, status=400)
        if environment is None:
            return JsonResponse({"value": 0, "capped": False, "text": "0 users match"})
        count = cached_user_count(environment, query)
        return JsonResponse({**count.as_dict(), "text": count_text(count)})


def count_text(count: UserCount) -> str:
    if count.capped:
        return f"More than {count.value:,} users match"
    return f"{count.value:,} user{'' if count.value == 1 else 's'} match{'es' if count.value == 1 else ''}"


class ProfileMixin(EnvironmentMixin):
    """The profile named by the URL's user_id, in `?env=` or, without it, in whichever environment has it."""

    def get_profile(self) -> tuple[Profile, Environment]:
        try:
            user_id = parse_user_id(self.kwargs["user_id"])
        except InvalidInput as error:
            raise Http404(error.message) from error
        profiles = Profile.objects.filter(user_id=user_id).select_related("environment", "merged_into")
        if self.request.GET.get("env"):
            profiles = profiles.filter(environment=self.get_environment())
        profile = profiles.order_by("environment__name", "environment_id").first()
        if profile is None:
            raise Http404("No such user.")
        return profile, profile.environment


class ProfileView(LoginRequiredMixin, ProfileMixin, TemplateView):
    template_name = "users_app/profile.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        profile, environment = self.get_profile()
        search = self.request.GET.get("pq", "")[:200].replace("\x00", "")
        custom, initial = profile_property_rows(profile, search=search)
        try:
            sessions, next_cursor = profile_session_page(profile, cursor=self.request.GET.get("sessions") or None)
        except InvalidInput as error:
            raise Http404(error.message) from error
        for row in sessions:
            row.duration_text = duration_text(row.session.duration)
            for event in row.events:
                event.properties_text = json.dumps(event.properties, ensure_ascii=False, sort_keys=True)
        merges = profile_merge_history(profile)
        params = self.request.GET.copy()
        params["sessions"] = next_cursor or ""
        context.update(
            self.environment_context(environment),
            profile=profile,
            profile_url=profile_url(profile, environment),
            merged_into_url=profile_url(profile.merged_into, environment) if profile.merged_into_id else None,
            merged_by=next((m for m in merges if m.source_id == profile.pk and m.status != "held"), None),
            session_count=profile_sessions(profile).count(),
            event_count=profile_events(profile).count(),
            custom_properties=custom,
            initial_properties=initial,
            property_search=search,
            sessions=sessions,
            next_sessions_url=f"?{params.urlencode()}" if next_cursor else None,
            merges_in=[(m, profile_url(m.source, environment)) for m in merges if m.destination_id == profile.pk],
            merges_out=[(m, profile_url(m.destination, environment)) for m in merges if m.source_id == profile.pk],
            can_admin=self.request.user.is_staff,
            account_id=(account_id := account_of(profile)),
            account_url=account_url(environment, account_id) if account_id is not None else None,
        )
        return context


class AccountView(LoginRequiredMixin, EnvironmentMixin, TemplateView):
    """An account (SPEC 11): its properties and its people (`?env=<app_id>&id=<account id>`)."""

    template_name = "users_app/account.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        environment = self.get_environment()
        if environment is None:
            raise Http404("No environment yet.")
        try:
            account = account_detail(environment=environment, account_id=self.request.GET.get("id", ""))
        except InvalidInput as error:
            raise Http404(error.message) from error
        people = account_people(environment=environment, account_id=account.account_id)[:ACCOUNT_USERS_SHOWN]
        context.update(
            self.environment_context(environment),
            account=account,
            people=[(profile, profile_url(profile, environment)) for profile in people],
            people_shown=ACCOUNT_USERS_SHOWN,
        )
        return context


class SessionView(LoginRequiredMixin, ProfileMixin, TemplateView):
    """Every event of one session (the profile page shows the first few inline)."""

    template_name = "users_app/session.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        profile, environment = self.get_profile()
        try:
            session, events = session_events(profile, session_pk=int(self.kwargs["session_pk"]))
        except InvalidInput as error:
            raise Http404(error.message) from error
        session.duration_text = duration_text(session.duration)
        for event in events:
            event.properties_text = json.dumps(event.properties, ensure_ascii=False, sort_keys=True)
        context.update(
            self.environment_context(environment),
            profile=profile,
            session=session,
            events=events,
            profile_url=profile_url(profile, environment),
        )
        return context
