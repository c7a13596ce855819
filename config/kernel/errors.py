"""The one error type every service raises for bad input; the API turns it into SPEC 3's error body."""

from dataclasses import dataclass


@dataclass
class InvalidInput(Exception):
    code: str
    message: str
    field: str | None = None
    status: int = 400

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "field": self.field}


class NotFound(InvalidInput):
    def __init__(self, message: str, field: str | None = None, code: str = "not_found"):
        super().__init__(code=code, message=message, field=field, status=404)


@dataclass
class RateLimited(InvalidInput):
    """Over a rate limit (users_app/rate_limits.py): 429 with `Retry-After`."""

    status: int = 429
    retry_after: int = 1
