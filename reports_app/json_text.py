"""Reading one key of an event's JSON properties as text, the same on PostgreSQL and SQLite."""

import json

from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform


class PropertyText(KeyTextTransform):
    """`properties ->> key`, the key always read as an object's key.

    Django's KeyTextTransform takes a key that `int()` accepts ("12", " 7", "١٢") for an array index: a
    property named "12" read as missing, and a key beyond 2**31 failed the whole query on PostgreSQL (there
    is no `jsonb ->> bigint`), a 500 for `group_by=event.9007199254740992`. Property names are text."""

    output_field = TextField()

    def as_postgresql(self, compiler, connection):
        lhs, params, _ = self.preprocess_lhs(compiler, connection)
        return f"({lhs} ->> %s)", (*params, self.key_name)

    def as_sqlite(self, compiler, connection):
        # Django's SQLite form with a path that quotes the key (`$."12"`), never `$[12]`.
        lhs, params, _ = self.preprocess_lhs(compiler, connection)
        path = "$." + json.dumps(self.key_name)
        datatypes = ",".join(repr(datatype) for datatype in connection.ops.jsonfield_datatype_values)
        sql = (
            f"(CASE WHEN JSON_TYPE({lhs}, %s) IN ({datatypes}) THEN JSON_TYPE({lhs}, %s) "
            f"ELSE JSON_EXTRACT({lhs}, %s) END)"
        )
        return sql, (*params, path) * 3
