from datetime import datetime

from django.db import models
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce, Greatest, Least


def time_bounds_extend(
    model: type[models.Model], *, lower_field: str, upper_field: str, bounds: dict[int, tuple[datetime, datetime]]
) -> None:
    """Widen each row's [lower, upper] to include the given times in one UPDATE, never narrowing it (so
    concurrent requests and late events cannot move last_seen backwards). Rows are locked in primary-key
    order first, so two concurrent requests touching the same rows cannot deadlock."""
    if not bounds:
        return
    list(model.objects.select_for_update().filter(pk__in=bounds).order_by("pk").values_list("pk", flat=True))

    def widened(field: str, pick, position: int) -> Case:
        whens = []
        for pk, limits in bounds.items():
            moment = Value(limits[position], output_field=models.DateTimeField())
            whens.append(When(pk=pk, then=pick(Coalesce(F(field), moment), moment)))
        return Case(*whens, default=F(field), output_field=models.DateTimeField())

    model.objects.filter(pk__in=bounds).update(
        **{lower_field: widened(lower_field, Least, 0), upper_field: widened(upper_field, Greatest, 1)}
    )
