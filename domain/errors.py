"""Bad input explained field by field, without echoing the input (it may hold personal data)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class FieldError(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def field_errors(error: ValidationError, root: str | None = None) -> list[FieldError]:
    """One entry per failing field, with a dotted path (``contact.email``, ``remedies.0``). ``root`` is a
    leading union tag to leave out of the path."""
    found = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        loc = item["loc"][1:] if root and item["loc"][:1] == (root,) else item["loc"]
        path = ".".join(str(part) for part in loc) or "(input)"
        reason = item["msg"].removeprefix("Value error, ")
        found.append(FieldError(field=path, reason=reason))
    return found


def summary(errors: list[FieldError]) -> str:
    return "; ".join(str(e) for e in errors)
