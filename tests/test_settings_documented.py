"""Every setting the code reads is declared in config/settings.py, and every environment variable settings.py reads
is in docs/operations.md (a review found one documented but never read, and one read but declared nowhere)."""

import re

from tests.conftest import REPO

SETTINGS = (REPO / "config" / "settings.py").read_text()
OPERATIONS = (REPO / "docs" / "operations.md").read_text()
CODE = [
    path
    for folder in ("config", "users_app", "events_app", "reports_app")
    for path in (REPO / folder).rglob("*.py")
    if "migrations" not in path.parts and path.name not in ("settings.py", "test_settings.py")
]


def environment_variables_read() -> set[str]:
    return set(re.findall(r'(?:env_int|env_bool|env_list|os\.environ\.get)\(\s*"([A-Z][A-Z0-9_]+)"', SETTINGS))


def cairn_settings_read() -> set[str]:
    names = set()
    for path in CODE:
        text = path.read_text()
        names |= set(re.findall(r"settings\.(CAIRN_[A-Z0-9_]+)", text))
        names |= set(re.findall(r'"(CAIRN_[A-Z0-9_]+)"', text))  # getattr(settings, "..."), helpers taking a name
    return names


def test_every_environment_variable_is_documented_for_operators():
    variables = environment_variables_read()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CAIRN_HTTPS"} <= variables  # the scan itself works
    undocumented = sorted(name for name in variables if f"`{name}`" not in OPERATIONS and name != "DEBUG")
    assert not undocumented, f"read in config/settings.py, missing from docs/operations.md: {undocumented}"


def test_every_cairn_setting_the_code_reads_is_declared():
    declared = set(re.findall(r"^(CAIRN_[A-Z0-9_]+)\s*=", SETTINGS, flags=re.MULTILINE))
    read = cairn_settings_read()
    assert "CAIRN_ENVIRONMENT_CACHE_SECONDS" in read
    assert not sorted(read - declared), f"read by the code, declared nowhere: {sorted(read - declared)}"


def test_every_documented_cairn_variable_is_read():
    documented = set(re.findall(r"`(CAIRN_[A-Z0-9_]+)`", OPERATIONS))
    unread = sorted(documented - environment_variables_read())
    assert not unread, f"documented in docs/operations.md, read nowhere: {unread}"


def test_every_cairn_setting_declared_is_used():
    declared = set(re.findall(r"^(CAIRN_[A-Z0-9_]+)\s*=", SETTINGS, flags=re.MULTILINE))
    # Used by another setting (CAIRN_HTTPS turns on SECURE_SSL_REDIRECT, ...): named outside its own line.
    other_lines = {
        name: "\n".join(line for line in SETTINGS.splitlines() if not line.startswith(f"{name} =")) for name in declared
    }
    used_in_settings = {name for name in declared if re.search(rf"\b{name}\b", other_lines[name])}
    unused = sorted(declared - cairn_settings_read() - used_in_settings)
    assert not unused, f"declared in config/settings.py, used nowhere: {unused}"
