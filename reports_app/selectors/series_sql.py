"""PostgreSQL's hand-written pass of a graph report (series.py): around an inner query of rows that carry a bucket,
the profile whose person they count for and, where they stand for several events, a weight, the person and their
property are joined as plain SQL would, and the rows are counted per (bucket, group), with the range totals of
distinct measures in the same pass (GROUPING SETS) instead of a second scan.

Two inner queries feed it: the events themselves (`event_rows_sql`), and the rollups plus the events above their
watermark (selectors/rollup_rows.py)."""

from django.db import connection
from django.db.models import F, QuerySet, TextField, Value
from django.db.models.functions import Coalesce

from reports_app.query import ReportQuery
from reports_app.selectors.groups import ALL_GROUP, NONE_GROUP
from reports_app.selectors.report_cursor import report_cursor
from users_app.models import Environment, Profile, UserProperty, property_key_hash
from users_app.people import person_sql
from users_app.selectors.accounts import account_property_sql, person_account_sql


def needs_person(query: ReportQuery) -> bool:
    """Whether the numbers depend on who each row's person is (a distinct measure, a user or account group)."""
    scope = query.group_by.scope if query.group_by is not None else None
    return query.measure in ("unique_users", "unique_accounts") or scope in ("user", "account")


def event_rows_sql(base: QuerySet, query: ReportQuery, expressions, bucket) -> tuple[str, list]:
    """The inner query over the events of `base` (filters applied, `expressions` its joins): report_bucket,
    report_profile_id where the person matters, report_group for an event property, report_item for sessions."""
    group_by = query.group_by
    columns = {"report_bucket": bucket}
    if needs_person(query):
        columns["report_profile_id"] = F(expressions.profile_column)
    if group_by is not None and group_by.scope == "event":
        columns["report_group"] = Coalesce(
            expressions.event_property(group_by.key), Value(NONE_GROUP), output_field=TextField()
        )
    if query.measure == "sessions":
        columns["report_item"] = F("session_id")
    sql, params = base.annotate(**columns).values(*columns).order_by().query.sql_with_params()
    return sql, list(params)


def counted_rows(
    inner_sql: str, inner_params: list, query: ReportQuery, environment: Environment, *, weighted: bool = False
) -> tuple[list[tuple], dict[str, int] | None]:
    """(bucket, group, value) rows of the inner query, and for distinct measures the range totals (else None).
    `weighted`: each inner row stands for report_weight events (a rollup row).

    The person and their property are joined on the profile's own columns: profile, then the property row of the
    person (people.person_sql), and for accounts the person's account id property row and the account's property
    row (users_app/selectors/accounts.py). So the planner can join profiles to their properties first and the rows
    once; the ORM's version (a tombstone's destination reached through two more joins; an account property looked
    up once per row) was much slower on large tables (docs/benchmarks.md, "Graph reports"). Only fixed text (table
    names from the models, aliases written here) is added around the inner SQL; every value is a parameter."""
    quote = connection.ops.quote_name
    group_by = query.group_by
    group_scope = group_by.scope if group_by is not None else None
    needs_account = query.measure == "unique_accounts" or group_scope == "account"
    person = person_sql("report_profile")
    joins, join_params = [], []
    if needs_person(query):
        joins.append(
            f"JOIN {quote(Profile._meta.db_table)} report_profile ON report_profile.id = report_rows.report_profile_id"
        )
    account = "NULL"
    if needs_account:
        account_join = person_account_sql(environment, person, alias="report_account")
        joins.append(account_join.join)
        join_params += account_join.params
        account = account_join.value
    if group_scope == "user":
        joins.append(
            f"LEFT JOIN {quote(UserProperty._meta.db_table)} report_property "
            f"ON report_property.profile_id = {person} AND report_property.key_hash = %s"
        )
        join_params.append(property_key_hash(group_by.key))
        group_sql, group_params = "COALESCE(report_property.value, %s)", [NONE_GROUP]
    elif group_scope == "account":
        property_join = account_property_sql(environment, account, group_by.key, alias="report_property")
        joins.append(property_join.join)
        join_params += property_join.params
        group_sql, group_params = f"COALESCE({property_join.value}, %s)", [NONE_GROUP]
    elif group_scope == "event":
        group_sql, group_params = "report_rows.report_group", []
    else:
        group_sql, group_params = "%s", [ALL_GROUP]
    item_sql = {
        "unique_users": person,
        "unique_accounts": account,
        "sessions": "report_rows.report_item",
        "events": "report_rows.report_weight" if weighted else "NULL",
    }[query.measure]
    rows_sql = (
        f"SELECT report_rows.report_bucket AS bucket, {group_sql} AS grp, {item_sql} AS item "
        f"FROM ({inner_sql}) AS report_rows {' '.join(joins)}"
    )
    params = [*group_params, *inner_params, *join_params]
    if query.measure == "events":
        count = "SUM(item)" if weighted else "COUNT(*)"
        sql = f"SELECT 0, bucket, grp, {count} FROM ({rows_sql}) AS report_groups GROUP BY bucket, grp"
    else:
        sql = (
            f"SELECT GROUPING(bucket), bucket, grp, COUNT(DISTINCT item) FROM ({rows_sql}) AS report_groups "
            "GROUP BY GROUPING SETS ((bucket, grp), (grp))"
        )
    # A sum per (bucket, group) is a hash aggregate of a few hundred groups, but the planner cannot know how few
    # (the group is a property value behind two joins, counted over every key) and sorts every row instead, a
    # third of the statement's time (docs/benchmarks.md "Against a lean table").
    planner = {"enable_sort": "off"} if query.measure == "events" else {}
    with report_cursor(**planner) as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    rows = [(moment, group_name, int(value)) for is_total, moment, group_name, value in fetched if not is_total]
    if query.measure == "events":
        return rows, None
    return rows, {group_name: value for is_total, _, group_name, value in fetched if is_total}
