"""The unit of work of an ingest transaction: what the steps of one call share, and the writes it holds back.

Each ingest transaction (track_ingest, user_properties_ingest, each run of events in a browser batch) creates
one `IngestUnitOfWork` and hands it to every step instead of a flag each. Resolving profiles records in it
which profiles this transaction created and the session id reserved for each one's first session; the
session and event writes read that instead of asking the database again; and the writes the call needs no
answer from wait in it until `flush`, the call's last round trip.

A unit lives exactly as long as its transaction: owner_transaction may start a call again, and the profiles
created and ids reserved by a rolled-back attempt do not exist any more, so every attempt creates its own.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection, models

from config.kernel.sql import rows_insert, rows_insert_sql
from users_app.models import Environment
from users_app.services.profiles import ResolvedProfile


@dataclass
class RequestContext:
    """What the HTTP request tells about the device: used for a new session's browser, device and place."""

    user_agent: str = ""
    ip: str = ""
    country: str = ""
    city: str = ""


@dataclass
class IngestUnitOfWork:
    environment: Environment
    # The device the request describes (the browser endpoint), for new sessions' browser, device and place.
    # None for server calls: their request describes the backend that sent them, not the person.
    context: RequestContext | None = None
    # Profiles created by the call come with an id reserved for their first session (track_ingest), so that
    # session goes with the call's last writes instead of taking a round trip of its own.
    reserve_session_ids: bool = False
    # Profiles this transaction inserted: invisible to every other call until commit, so they need no row lock
    # and have no stored sessions, properties or merged-in profiles to look up.
    created_profile_pks: set[int] = field(default_factory=set)
    # A created profile's pk -> the id reserved for its first session (taken once, by that session).
    reserved_session_ids: dict[int, int] = field(default_factory=dict)
    # Statements held back until `flush` (PostgreSQL only; elsewhere each runs when added): (SQL, parameters).
    pending_writes: list[tuple[str, list]] = field(default_factory=list)

    def profiles_resolved(self, resolved: Iterable[ResolvedProfile]) -> None:
        """Record which of the call's profiles this transaction created, and their reserved session ids."""
        for each in resolved:
            if each.created:
                self.created_profile_pks.add(each.profile.pk)
                if each.reserved_session_id is not None:
                    self.reserved_session_ids[each.profile.pk] = each.reserved_session_id

    def take_reserved_session_id(self, profile_pk: int) -> int | None:
        """The id reserved for this profile's first session, if it has one and it was not taken yet."""
        return self.reserved_session_ids.pop(profile_pk, None)

    # ---- the writes held back ----------------------------------------------------------------------------
    # Only writes the call needs no answer from and that read nothing another of them writes (the last
    # INSERTs and UPDATEs of an ingest call): on PostgreSQL they go as the data-modifying WITH clauses of
    # one statement, one round trip instead of one each.

    def insert_later(
        self, model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple], *, on_conflict: str = ""
    ) -> None:
        """rows_insert, held back until `flush` (config.kernel.sql.InsertRows)."""
        if not rows:
            return
        if connection.vendor != "postgresql":
            rows_insert(model, columns, rows, on_conflict=on_conflict)
            return
        self.pending_writes.append(rows_insert_sql(model, columns, rows, on_conflict=on_conflict))

    def execute_later(self, sql: str, params: list) -> None:
        """A statement of the caller's (fixed SQL text, values as parameters), held back until `flush`."""
        if connection.vendor != "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
            return
        self.pending_writes.append((sql, params))

    def flush(self) -> None:
        """Send the writes held back, in one statement."""
        if not self.pending_writes:
            return
        statements, self.pending_writes = self.pending_writes, []
        if len(statements) == 1:
            sql, params = statements[0]
        else:
            # Data-modifying WITH clauses run exactly once, to completion, whether or not the query reads them.
            with_sql = ", ".join(f"write_{index} AS ({sql})" for index, (sql, _) in enumerate(statements))
            sql, params = f"WITH {with_sql} SELECT 1", [param for _, params in statements for param in params]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
