"""What several admin pages show alike: a profile with its links, and a snapshot of properties. Every value is
escaped (identities and properties are attacker-controlled)."""

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from users_app.environment_pages import profile_url
from users_app.models import Profile


def profile_links(profile: Profile | None) -> SafeString | str:
    if profile is None:
        return "—"
    return format_html(
        '<a href="{}">{}</a> <span class="quiet">user_id {}</span> · <a href="{}">profile page</a>',
        reverse("admin:users_app_profile_change", args=[profile.pk]),
        profile.display_name,
        profile.user_id,
        profile_url(profile),
    )


def properties_table(snapshot: dict | None, removed: frozenset = frozenset()) -> SafeString | str:
    """A snapshot of properties; `removed`: keys the merge removed (an earlier initial-property set won)."""
    if not snapshot:
        return "—"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}{}</td><td>{}</td></tr>",
        (
            (
                key,
                "(absent: added by the merge)" if item is None else item.get("value"),
                " (removed by the merge)" if key in removed else "",
                "" if item is None else item.get("set_at", ""),
            )
            for key, item in sorted(snapshot.items())
        ),
    )
    return format_html(
        '<table class="cairn-snapshot"><tr><th>Property</th><th>Value</th><th>Set at</th></tr>{}</table>', rows
    )
