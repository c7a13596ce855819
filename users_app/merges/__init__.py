"""Merges (SPEC 4 and 5; the rules are written down in docs/identity.md, "Held merges, undo, outages"), one
module per job:

- request.py: inside identify's transaction, record the merge, or hold it past the identity's threshold;
- apply.py: the task's work, moving the source's events and sessions to the destination;
- actions.py: an admin approves or rejects a held merge, or retries a failed one;
- undo.py: an admin undoes a finished merge;
- sweep.py: beat re-queues merges whose task was lost;
- queue.py: queuing a merge's task, the only module here that talks to Celery.

Lifecycle:

    merge_request --(over the 24 h threshold)--> held --approve--> pending      held --reject--> rejected
    merge_request --> pending -> running -> done --undo--> reverted
                                       \\-> failed --retry--> pending

Reads count a pending source's rows as the destination's (users_app/people.py), so they are right from the moment
identify returns, while the task runs, and after it.
"""
