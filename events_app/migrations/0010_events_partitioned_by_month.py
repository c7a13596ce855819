# Events partitioned by month on PostgreSQL (issue #16, docs/operations.md "Event partitions"). A partitioned table's
# unique keys must hold its partition key, so the idempotency keys' uniqueness moves to a side table first (on SQLite
# too: one code path), filled with the keys the events have; then, on PostgreSQL only, the table is rebuilt
# partitioned (events_app/partitions.py: same columns, rows, id sequence value and indexes, read from the catalog so
# whatever earlier migrations made carries over). The reverse rebuilds one plain table; the events keep their
# idempotency_key column throughout, so the unique constraint comes back from it.

from django.db import migrations, models


def events_partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from events_app.partitions import table_partition_by_month

        table_partition_by_month()


def events_unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from events_app.partitions import table_unpartition

        table_unpartition()


def keys_copy(apps, schema_editor):
    Event = apps.get_model("events_app", "Event")
    EventIdempotencyKey = apps.get_model("events_app", "EventIdempotencyKey")
    with schema_editor.connection.cursor() as cursor:
        quote = schema_editor.connection.ops.quote_name
        cursor.execute(
            f"INSERT INTO {quote(EventIdempotencyKey._meta.db_table)} (environment_id, {quote('key')}, event_id) "
            f"SELECT environment_id, idempotency_key, id FROM {quote(Event._meta.db_table)} "
            f"WHERE idempotency_key IS NOT NULL"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('events_app', '0009_activity_rollup'),
        ('users_app', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='EventIdempotencyKey',
            fields=[
                ('pk', models.CompositePrimaryKey('environment', 'key', blank=True, editable=False, primary_key=True, serialize=False)),
                ('key', models.CharField(max_length=255)),
                ('event_id', models.BigIntegerField()),
                ('environment', models.ForeignKey(db_constraint=False, db_index=False, on_delete=models.deletion.CASCADE, related_name='+', to='users_app.environment')),
            ],
            options={
                'indexes': [models.Index(fields=['event_id'], name='idempotency_key_by_event')],
            },
        ),
        migrations.RunPython(keys_copy, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name='event',
            name='event_unique_idempotency_key',
        ),
        migrations.RunPython(events_partition, events_unpartition),
    ]
