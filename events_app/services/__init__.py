"""Every write of events_app: ingest (track, add_user_properties, identify batches) and sessions."""
