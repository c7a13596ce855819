# The (environment, name, timestamp) index made covering: funnels and retention read each step event's original
# profile and id from the index (an index-only scan) instead of the table's pages. It replaces the old index
# rather than joining it, so ingest maintains one such index, not two (docs/benchmarks.md "Funnels and retention").

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('events_app', '0007_rollups'),
    ]

    # The new index first: reports by name keep an index while the old one is dropped.
    operations = [
        migrations.AddIndex(
            model_name='event',
            index=models.Index(
                fields=['environment', 'name', 'timestamp'],
                include=('original_profile', 'id'),
                name='event_by_name_time_cover',
            ),
        ),
        migrations.RemoveIndex(
            model_name='event',
            name='event_by_name_time',
        ),
    ]
