"""Bad input explained field by field, without echoing the input (it may hold personal data); and the one
documented shape of each refusal's details (``ApplicationError.details``), which `complaints schema` prints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from domain.principals import Role
from domain.vocabulary import Stage

T = TypeVar("T")


class FieldError(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class FieldErrorDetails(BaseModel):
    """Each field refused, with its reason (never the value, which may be personal data)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    errors: list[FieldError] = Field(min_length=1, description="One entry per refused field: `field` is a dotted "
                                     "path (`contact.email`, `remedies.0`), `reason` says why.")


class RefusalDetails(BaseModel):
    """A decision that does not fit the complaint as it stands."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Stage = Field(description="The stage the complaint is at.")
    reason: str = Field(description="Why the decision does not fit it.")


class ForbiddenDetails(BaseModel):
    """The caller is authenticated, but its role may not make this decision (here)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required_roles: list[Role] = Field(description="The roles that may (none: nobody may).")


@dataclass(frozen=True)
class ErrorType:
    """An ApplicationError type a caller can receive, when, and the shape of its details (None: it has none)."""

    when: str
    details: type[BaseModel] | None = None


#: Every refusal a caller (the CLI, a backend, the temporal CLI) can receive, by ApplicationError type. Its
#: ``details`` holds exactly one value of the type's model, or nothing where the model is None.
ERRORS: dict[str, ErrorType] = {
    "InvalidInput": ErrorType("A start's input or an update's argument that is not valid JSON for its schema: the "
                              "run fails at once, or the update is rejected; nothing is written.", FieldErrorDetails),
    "InvalidComplaint": ErrorType("A valid intake whose times do not hold on the workflow's clock (occurred in the "
                                  "future, or too long ago): the run fails, nothing is written.", FieldErrorDetails),
    "ComplaintRefused": ErrorType("A decision that does not fit the complaint's stage: refused by the update's "
                                  "validator, nothing reaches history.", RefusalDetails),
    "Unauthenticated": ErrorType("No token, or one that is expired, not yet valid, tampered with or from an "
                                 "untrusted issuer: the start or the decision is refused."),
    "Forbidden": ErrorType("The token's role may not start the complaint or make the decision.", ForbiddenDetails),
    "PlaintextRefused": ErrorType("Input that reached Temporal unencrypted: refused, and a refused run is deleted "
                                  "from Temporal shortly after."),
    "WrongWorkflowId": ErrorType("A start under a workflow id that is not complaint-<complaint_id>."),
    "InputRefused": ErrorType("A start whose input is more than the intake (run options or state)."),
    "CarriedStateRefused": ErrorType("State carried into a run that is not the log's head for the complaint."),
    "ComplaintExists": ErrorType("A start of a complaint the log already holds (e.g. started again once it is "
                                 "closed): the run fails, nothing is written."),
}


def details_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of ``details[0]`` of an ApplicationError of type ``kind``."""
    error = ERRORS[kind]
    if error.details is None:
        return {"title": f"{kind} details", "description": f"{error.when} Its details are empty: the message "
                "says why.", "type": "null"}
    schema = error.details.model_json_schema()
    return {**schema, "title": f"{kind} details", "description": f"{error.when} Its details hold exactly one "
            f"value, this object ({error.details.__name__}): {schema.get('description', '')}".rstrip(": ")}


def details_of(kind: str | None, details: Sequence[Any] | None) -> BaseModel | None:
    """An ApplicationError's details read as its type's documented model (None: the type has none, or is not
    one of :data:`ERRORS`). Raises ValidationError when they do not have the documented shape."""
    error = ERRORS.get(kind or "")
    if error is None or error.details is None or not details:
        return None
    return error.details.model_validate(details[0])


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
