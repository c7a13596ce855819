"""Count every event stored so far into the rollups (what beat's `cairn.rollups_catch_up` does every few seconds);
`--rebuild` empties them first and counts every event again (after a restore, or to check them)."""

import time

from django.core.management.base import BaseCommand
from django.db import transaction

from events_app.models import RollupWatermark
from events_app.rollups.catch_up import rollups_catch_up
from events_app.rollups.models import ROLLUP_MODELS, WATERMARK_PK, rollups_supported

BUSY_RETRIES = 30


class Command(BaseCommand):
    help = "Count the events stored so far into the rollups (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="empty the rollups and count every event again")

    def handle(self, *args, rebuild: bool, **options):
        if not rollups_supported():
            self.stdout.write("Rollups are kept on PostgreSQL only; nothing to do.")
            return
        if rebuild:
            with transaction.atomic():
                RollupWatermark.objects.select_for_update().get_or_create(pk=WATERMARK_PK)
                for model in ROLLUP_MODELS:
                    model.objects.all().delete()
                RollupWatermark.objects.filter(pk=WATERMARK_PK).update(through_event_id=0)
        result = rollups_catch_up()
        for _ in range(BUSY_RETRIES):  # writers held the events table past the lock timeout: try again shortly
            if result.stopped != "busy":
                break
            time.sleep(1)
            result = rollups_catch_up()
        self.stdout.write(f"Rollups count every event up to id {result.through_event_id} ({result.batches} batches).")
