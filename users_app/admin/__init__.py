"""The admin, for staff: environments, merge records (inspect, approve, reject, retry, undo), the identities
that absorb the most profiles, read-only profiles and read-only accounts. Every write goes through a service;
every value shown is escaped (identities and properties are attacker-controlled).

Importing the modules registers their ModelAdmins with the admin site (Django's autodiscover imports this
package)."""

from users_app.admin import accounts, environments, merge_records, profiles

__all__ = ["accounts", "environments", "merge_records", "profiles"]
