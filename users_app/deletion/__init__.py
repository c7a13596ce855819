"""Deleting people and expiring events (SPEC 12), one module per job:

- `person.py`: delete a whole person (every member profile, their events, sessions, properties, the merge
  records naming them and their audit trail) in short batches, the last one under the row locks of the person
  and its members, so calls that race it land before or after it; `person_deletion_preview` counts what would go;
- `requests.py`: Heap's user deletion requests (create, run, status), the state the task keeps in the database;
- `retention.py`: the periodic removal of events older than an environment's retention, and of sessions left
  empty;
- `queue.py`: the only module of this package that talks to Celery.
"""
