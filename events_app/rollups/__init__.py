"""Rollups (issue #16, docs/architecture.md "Rollups"): events counted per environment, UTC day and person (and
event name), which graph reports and retention read instead of scanning every event."""
