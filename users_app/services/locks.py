from collections.abc import Iterable

from users_app.models import Profile


def profiles_lock(profile_pks: Iterable[int | None]) -> dict[int, Profile]:
    """Row locks in primary-key order, taken before any other write of the transaction. Every writer of
    profile rows (identify, merges, track, add_user_properties, first/last seen) locks in this order, so a
    call that touches two people cannot deadlock with an identify that merges one into the other.
    Returns the locked rows, fresh."""
    pks = sorted({pk for pk in profile_pks if pk is not None})
    if not pks:
        return {}
    return {profile.pk: profile for profile in Profile.objects.select_for_update().filter(pk__in=pks).order_by("pk")}
