"""The admin, for staff: environments, merge records (inspect, approve, reject, retry, undo), the identities
that absorb the most profiles, and read-only profiles. Every write goes through a service; every value shown is
escaped (identities and properties are attacker-controlled).

Importing the modules registers their ModelAdmins with the admin site (Django's autodiscover imports this
package)."""

from users_app.admin import environments, merge_records, profiles

__all__ = ["environments", "merge_records", "profiles"]
