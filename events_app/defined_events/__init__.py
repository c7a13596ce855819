"""Defined events (SPEC 13, Heap's virtual events), one module per job: `rules.py` (the rule language: parse,
validate, compile), `matching.py` (the one evaluator: does an event match), `services.py` (create, list, delete),
`cache.py` (the compiled definitions ingest matches new events against), `backfill.py` (past events, by the
task), `queue.py` (the only one that talks to Celery). The match rows themselves are events_app.models."""
