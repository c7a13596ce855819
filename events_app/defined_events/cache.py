"""The compiled definitions ingest matches each new event against, cached in this process.

Free for an environment that never defined an event: its `defined_events_version` is 0 on the Environment row,
which every ingest call has already (users_app/services/environments.py caches it for every process). Otherwise
the compiled rules are kept here per (environment, version): a definition created or deleted bumps the version
and starts a new generation of the environment cache, so the next call of every process sees the new version
and compiles the definitions once. A call that read the environment just before the change matches with the old
definitions; the backfill's re-sweep (backfill.py) catches what it missed."""

from events_app.defined_events.matching import CompiledDefinitions
from events_app.models import DefinedEvent
from users_app.models import Environment

# Environments whose compiled rules this process keeps; beyond, it starts again (compiling is cheap).
MAX_CACHED_ENVIRONMENTS = 1000
_compiled: dict[int, tuple[int, CompiledDefinitions]] = {}


def definitions_load(environment_pk: int) -> CompiledDefinitions:
    rows = DefinedEvent.objects.filter(environment_id=environment_pk).order_by("pk").values_list("pk", "rules")
    return CompiledDefinitions.of(rows)


def definitions_for_ingest(environment: Environment) -> CompiledDefinitions | None:
    """The environment's compiled definitions, or None if it has none (nothing to match)."""
    version = environment.defined_events_version
    if not version:
        return None
    cached = _compiled.get(environment.pk)
    if cached is None or cached[0] != version:
        if len(_compiled) >= MAX_CACHED_ENVIRONMENTS:
            _compiled.clear()
        cached = (version, definitions_load(environment.pk))
        _compiled[environment.pk] = cached
    return cached[1] if cached[1].by_event else None
