"""Accounts in the admin, read-only (SPEC 11): one row per account of an environment (its id, how many properties it
has, when one was last set, how many people have it), searchable by account id, and an account's page with its
properties and links to the dashboard.

An account has no row of its own (users_app/services/accounts.py): the admin lists the accounts that have
properties, each represented by its first property row, so the changelist keeps Django's search, filters, ordering
and pagination without a table or a migration. Accounts that people name but that have no property yet are on
the dashboard's account page, not here. Every value is escaped (account ids and properties are attacker-controlled).
"""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Count, IntegerField, Max, Min, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from config.kernel.admin_site import ReadOnlyAdminMixin
from users_app.environment_pages import account_url
from users_app.models import AccountProperty
from users_app.selectors.accounts import account_people


def _per_account(aggregate) -> Subquery:
    """An aggregate over the account's property rows, for each listed row (the unique (environment, account_id,
    key_hash) index serves it)."""
    rows = (
        AccountProperty.objects.filter(environment_id=OuterRef("environment_id"), account_id=OuterRef("account_id"))
        .order_by()
        .values("environment_id", "account_id")
        .annotate(value=aggregate)
        .values("value")
    )
    return Subquery(rows)


@admin.register(AccountProperty)
class AccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account_id", "environment_name", "property_count", "last_set", "user_count", "account_page"]
    list_display_links = ["account_id"]
    list_filter = ["environment"]
    list_select_related = ["environment"]
    search_fields = ["account_id"]  # see get_search_results
    search_help_text = "An account id (exact or prefix)."
    ordering = ["environment", "account_id"]
    show_full_result_count = False
    list_per_page = 50
    fields = ["account_id", "environment", "user_count", "links", "properties"]
    readonly_fields = fields

    def get_queryset(self, request):
        first_rows = AccountProperty.objects.order_by().values("environment_id", "account_id").annotate(first=Min("pk"))
        return (
            super()
            .get_queryset(request)
            .filter(pk__in=first_rows.values("first"))
            .annotate(
                property_count=_per_account(Count("pk", output_field=IntegerField())),
                last_set=_per_account(Max("set_at")),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Account ids are at most 255 characters: a longer term names none (and no index can take it).
        if len(term) > AccountProperty._meta.get_field("account_id").max_length:
            return queryset.none(), False
        return queryset.filter(Q(account_id=term) | Q(account_id__startswith=term)), False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Accounts (with their properties)", **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The page is the account's, not its first property's (the row's __str__).
        row = self.get_object(request, unquote(object_id))
        context = {"title": "Account", "subtitle": row.account_id if row is not None else None}
        return super().change_view(request, object_id, form_url, {**context, **(extra_context or {})})

    @admin.display(description="environment", ordering="environment__name")
    def environment_name(self, row: AccountProperty) -> str:
        return row.environment.name

    @admin.display(description="properties", ordering="property_count")
    def property_count(self, row: AccountProperty) -> int:
        return row.property_count

    @admin.display(description="last set", ordering="last_set")
    def last_set(self, row: AccountProperty):
        return row.last_set

    @admin.display(description="users")
    def user_count(self, row: AccountProperty) -> int:
        return account_people(environment=row.environment, account_id=row.account_id).count()

    @admin.display(description="dashboard")
    def account_page(self, row: AccountProperty):
        return format_html('<a href="{}">open</a>', account_url(row.environment, row.account_id))

    @admin.display(description="links")
    def links(self, row: AccountProperty):
        environment = row.environment
        users = (
            reverse("users:list")
            + "?"
            + urlencode(
                {
                    "env": environment.app_id,
                    "period": "all",
                    "f0": environment.account_id_property,
                    "f0_v": row.account_id,
                }
            )
        )
        page = format_html('<a href="{}">account page</a>', account_url(environment, row.account_id))
        if not environment.account_id_property:
            return format_html("{} · this environment names no account id property: nobody has an account", page)
        return format_html('{} · <a href="{}">its users in the Users view</a>', page, users)

    @admin.display(description="properties")
    def properties(self, row: AccountProperty):
        rows = AccountProperty.objects.filter(environment_id=row.environment_id, account_id=row.account_id).order_by(
            "key"
        )
        body = format_html_join(
            "",
            '<tr class="account-property"><td>{}</td><td>{}</td><td>{}</td></tr>',
            ((item.key, item.value, item.set_at.isoformat(timespec="seconds")) for item in rows),
        )
        return format_html(
            '<table class="cairn-snapshot" id="account-properties"><tr><th>Key</th><th>Value</th><th>Set at</th></tr>'
            "{}</table>",
            body,
        )
