"""POST /api/add_account_properties (SPEC 11), top to bottom: parse -> validate -> rate limits -> write.

The same shape as add_user_properties (ingest.py): a single call is a list of one, invalid items are rejected with
their index and the others kept, items over an account's rate limit are rejected as `rate_limited`. There is no
profile to resolve: an account is an account id (users_app/services/accounts.py).
"""

from django.utils import timezone

from events_app.services.ingest import IngestResult, admitted_by_buckets, parse_each
from users_app.models import Environment
from users_app.services.accounts import account_buckets, account_properties_set, parse_account_properties_item


def account_properties_ingest(
    *, environment: Environment, items: list, enforce_rate_limits: bool = False
) -> IngestResult:
    parsed_items, rejected = parse_each(environment, items, parse_account_properties_item)  # parse and validate
    result = IngestResult(rejected=rejected)
    admitted = [item for _, item in parsed_items]
    if enforce_rate_limits and parsed_items:
        buckets = account_buckets(environment, [item.account_id for item in admitted])
        admitted = admitted_by_buckets(environment, parsed_items, buckets, result)
    if not admitted:
        return result
    account_properties_set(
        environment=environment,
        updates=[(item.account_id, item.properties) for item in admitted],
        set_at=timezone.now(),
    )
    result.accepted = len(admitted)
    return result
