"""Bad input explained field by field, without echoing the input (it may hold personal data)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

T = TypeVar("T")


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


def validate_json(adapter: TypeAdapter[T], data: str | bytes) -> T:
    """Validate JSON text, naming fields even where the text itself is at fault.

    pydantic's fast parser refuses some text outright (a lone surrogate escape such as ``\\ud800``) and
    can then only point at a line and column. Python's own parser accepts it, so the value is validated
    again from there, and the refusal names the field that holds it."""
    try:
        return adapter.validate_json(data)
    except ValidationError as error:
        if not all(e["type"] == "json_invalid" for e in error.errors()):
            raise
        try:
            value: Any = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise error from None
        return adapter.validate_python(value)
