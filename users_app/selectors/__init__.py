"""Every read of users_app that is more than a one-line queryset. Views, the read API and the admin call
the same functions, so the HTML pages and the JSON answers can never disagree."""

from users_app.selectors.profile_reads import (
    SESSION_EVENTS_SHOWN,
    SessionRow,
    identities_absorbing,
    merge_as_dict,
    merge_list,
    profile_events,
    profile_get,
    profile_members,
    profile_merge_history,
    profile_properties,
    profile_property_rows,
    profile_session_page,
    profile_sessions,
    session_events,
    user_detail,
    user_timeline,
)
from users_app.selectors.user_search import (
    USER_COUNT_CAP,
    USER_PAGE_SIZE,
    PropertyFilter,
    UserCount,
    UserFilters,
    UserPage,
    UserRow,
    property_keys_of,
    property_values,
    session_counts,
    user_count,
    user_list,
    users_matching,
)

__all__ = [
    "SESSION_EVENTS_SHOWN", "SessionRow", "identities_absorbing", "merge_as_dict", "merge_list", "profile_events",
    "profile_get", "profile_members", "profile_merge_history", "profile_properties", "profile_property_rows",
    "profile_session_page", "profile_sessions", "session_events", "user_detail", "user_timeline",
    "USER_COUNT_CAP", "USER_PAGE_SIZE", "PropertyFilter", "UserCount", "UserFilters", "UserPage", "UserRow",
    "property_keys_of", "property_values", "session_counts", "user_count", "user_list", "users_matching",
]
