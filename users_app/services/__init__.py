"""Every write of users_app. Import from the submodules: environments, identity_guard, profiles,
properties, merges."""
