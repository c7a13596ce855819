"""The funnel of reports_app/selectors/funnels.py as one set-based PostgreSQL statement (same numbers as its
Python walk; the tests run both on the same cases). Only fixed text is written around the ORM's query of the
step events; every value (names, times, the window) is a parameter, and the structure depends only on how many
steps there are and which of them share a name.

Per person, the step events are sorted newest first once. A running aggregate over that order gives every
event the first event of each step name at or after its time (`at_or_after_<n>`, events of the same time
included). An attempt starts at each step-1 event in the range and joins, step after step, the row of the
event found for the step before, to read where the next step is: a hash join per step, no loop. Then the best
attempt per person (`DISTINCT ON`), the person's group, and one aggregate per group.

Two forms of the attempt:
- steps with different names (the usual funnel): an event is found by its time; any of the person's rows at
  that time knows the same next events, so one per (person, time) is joined, and the last step needs no join;
- a name used by several steps (`A -> A`): each step must take another event, so events are numbered
  (`rpos`, newest first) and found by number; `after_<n>` gives the first event of the name after a given one.
"""

from datetime import datetime

from reports_app.query_funnels import FunnelQuery
from reports_app.selectors.person_steps import defined_events_named, group_join_sql, person_rows_sql, step_column
from reports_app.selectors.report_cursor import report_cursor
from reports_app.selectors.series import TOP_GROUPS
from users_app.models import Environment


def seconds_rounded(value) -> float | None:
    return None if value is None else round(float(value), 3)


def _step_rows_sql(queryset, names: int, *, exclusive: bool) -> tuple[str, list]:
    """(person, timestamp, id, step_name) rows: one per event and name it counts as. `exclusive`: every name is a
    raw name, so an event counts as exactly one (a CASE); else a defined event's name may take an event that
    another name takes too (one row per name it counts as)."""
    columns = [step_column(index) for index in range(names)]
    rows_sql, params = person_rows_sql(queryset, "timestamp", "id", *columns)
    if exclusive:
        which = " ".join(f"WHEN named.{column} THEN {index}" for index, column in enumerate(columns))
        return (
            f"SELECT named.person, named.timestamp, named.id, CASE {which} END AS step_name FROM ({rows_sql}) AS named",
            params,
        )
    matches = ", ".join(f"({index}, named.{column})" for index, column in enumerate(columns))
    sql = (
        f"SELECT named.person, named.timestamp, named.id, matched.step_name FROM ({rows_sql}) AS named "
        f"CROSS JOIN LATERAL (VALUES {matches}) AS matched (step_name, counts) WHERE matched.counts"
    )
    return sql, params


def _attempts_by_time(step_names: list[int], window) -> tuple[str, list]:
    """The attempts when every step has its own name: times found by time (module docstring)."""
    targets = sorted(set(step_names[1:]))
    jumps = ", ".join(
        f"min(timestamp) FILTER (WHERE step_name = {name}) OVER at_or_after AS at_or_after_{name}" for name in targets
    )
    times, joins, time_params, join_params = ["s0.timestamp AS t0"], [], [], []
    previous = "s0"
    for step in range(1, len(step_names)):
        found = f"{previous}.at_or_after_{step_names[step]}"
        time = f"CASE WHEN {found} <= s0.timestamp + %s THEN {found} END"
        times.append(f"{time} AS t{step}")
        time_params.append(window)
        if step < len(step_names) - 1:
            joins.append(
                f"LEFT JOIN (SELECT DISTINCT ON (person, timestamp) * FROM jumps WHERE step_name = {step_names[step]}) "
                f"s{step} ON s{step}.person = s0.person AND s{step}.timestamp = {time}"
            )
            join_params.append(window)
            previous = f"s{step}"
    sql = f"""
        jumps AS MATERIALIZED (
            SELECT person, step_name, timestamp, {jumps} FROM step_rows
            WINDOW at_or_after AS (PARTITION BY person ORDER BY timestamp DESC RANGE UNBOUNDED PRECEDING)),
        attempts AS (
            SELECT s0.person, s0.timestamp AS start_time, 0 AS start_order, {", ".join(times)}
            FROM jumps s0 {" ".join(joins)}
            WHERE s0.step_name = {step_names[0]} AND s0.timestamp >= %s AND s0.timestamp < %s)"""
    return sql, time_params + join_params  # in the order of the text: the SELECT's times, then the joins


def _attempts_by_position(step_names: list[int], window) -> tuple[str, list]:
    """The attempts when a name is used by several steps: events found by number (module docstring)."""
    targets = sorted(set(step_names[1:]))
    repeated = sorted({name for name in step_names if step_names.count(name) > 1})
    jumps = [f"max(rpos) FILTER (WHERE step_name = {n}) OVER at_or_after AS at_or_after_{n}" for n in targets]
    jumps += [f"max(rpos) FILTER (WHERE step_name = {n}) OVER after AS after_{n}" for n in repeated]
    joins, params = [], []
    for step in range(1, len(step_names)):
        name = step_names[step]
        found = f"s{step - 1}.at_or_after_{name}"
        earlier = [index for index in range(step) if step_names[index] == name]
        if earlier:
            after = f"s{earlier[-1]}.after_{name}"
            # the later of the two (the smaller number); LEAST alone would drop a NULL, which means "none"
            found = f"CASE WHEN {found} IS NULL OR {after} IS NULL THEN NULL ELSE LEAST({found}, {after}) END"
        joins.append(
            f"LEFT JOIN jumps s{step} ON s{step}.person = s0.person AND s{step}.rpos = {found} "
            f"AND s{step}.ts <= s0.ts + %s"
        )
        params.append(window)
    times = ", ".join(f"s{step}.ts AS t{step}" for step in range(len(step_names)))
    sql = f"""
        numbered AS (
            SELECT person, step_name, timestamp AS ts, id,
                   row_number() OVER (PARTITION BY person ORDER BY timestamp DESC, id DESC, step_name DESC) AS rpos
            FROM step_rows),
        jumps AS MATERIALIZED (
            SELECT person, step_name, ts, rpos, {", ".join(jumps)}
            FROM numbered
            WINDOW at_or_after AS (PARTITION BY person ORDER BY ts DESC RANGE UNBOUNDED PRECEDING),
                   after AS (PARTITION BY person ORDER BY ts DESC, id DESC, step_name DESC
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
        attempts AS (
            SELECT s0.person, s0.ts AS start_time, -s0.rpos AS start_order, {times}
            FROM jumps s0 {" ".join(joins)}
            WHERE s0.step_name = {step_names[0]} AND s0.ts >= %s AND s0.ts < %s)"""
    return sql, params


def postgresql_funnel_rows(
    environment: Environment, query: FunnelQuery, queryset, step_names: list[int], start: datetime, end: datetime
) -> list[tuple]:
    """[(group or None for Other, counts, medians)], the groups in order (module docstring)."""
    steps = len(step_names)
    exclusive = not defined_events_named(environment, query.steps)
    step_rows, params = _step_rows_sql(queryset, len(set(step_names)), exclusive=exclusive)
    repeats = len(set(step_names)) < steps
    attempts, attempt_params = (_attempts_by_position if repeats else _attempts_by_time)(
        step_names, query.window_length
    )
    reached = " + ".join(["1", *(f"(t{step} IS NOT NULL)::int" for step in range(1, steps))])
    group_sql, group_join, group_params = group_join_sql(environment, query.base.group_by, "best.person")
    counts = ", ".join(f"count(*) FILTER (WHERE reached > {step})" for step in range(steps))
    medians = ", ".join(
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM t{step} - t{step - 1})::float8)"
        for step in range(1, steps)
    )
    # The best attempt: the most steps, then the earliest start (by time, then by the order events are stored).
    sql = f"""
        WITH step_rows AS ({step_rows}), {attempts},
        best AS (
            SELECT DISTINCT ON (person) *, {reached} AS reached
            FROM attempts ORDER BY person, reached DESC, start_time, start_order),
        grouped AS (SELECT best.*, {group_sql} AS grp FROM best {group_join}),
        ranked AS (
            SELECT grp, row_number() OVER (ORDER BY count(*) DESC, grp COLLATE "C") AS position
            FROM grouped GROUP BY grp)
        SELECT min(ranked.position), CASE WHEN ranked.position <= {TOP_GROUPS} THEN grouped.grp END,
               {counts}, {medians}
        FROM grouped JOIN ranked ON ranked.grp = grouped.grp
        GROUP BY 2 ORDER BY 1"""
    params += [*attempt_params, start, end, *group_params]
    with report_cursor(queryset.db) as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    return [
        (row[1], list(row[2 : 2 + steps]), [None, *(seconds_rounded(value) for value in row[2 + steps :])])
        for row in fetched
    ]
