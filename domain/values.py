"""Value types shared by intake, commands and events.

Every free-text field is kept verbatim (nothing is trimmed or rewritten: it is evidence), so the only
thing a type does is refuse what cannot be evidence: control characters, lone surrogates, NUL (which
PostgreSQL's jsonb cannot hold) and sizes past a clear bound. Checks here never depend on the clock
or on a library's data, so a payload that decoded once decodes the same way on replay years later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints

#: Upper bound for long free text (description, message), in bytes of UTF-8.
MAX_TEXT_BYTES = 20_000
#: Upper bound for one-line text (names, titles, references), in characters.
MAX_LINE_CHARS = 200

_ALLOWED_IN_TEXT = {"\t", "\n", "\r"}


def _refuse_unprintable(value: str, *, multiline: bool) -> str:
    for index, ch in enumerate(value):
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"contains an unpaired surrogate (U+{code:04X}) at character {index}")
        if code < 0x20 or 0x7F <= code <= 0x9F:
            if multiline and ch in _ALLOWED_IN_TEXT:
                continue
            raise ValueError(f"contains a control character (U+{code:04X}) at character {index}")
    return value


def _text(value: str) -> str:
    _refuse_unprintable(value, multiline=True)
    size = len(value.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise ValueError(f"is {size} bytes of UTF-8; the limit is {MAX_TEXT_BYTES}")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _line(value: str) -> str:
    _refuse_unprintable(value, multiline=False)
    if not value.strip():
        raise ValueError("must not be blank")
    return value


#: Multi-line free text kept verbatim (description, messages, findings).
Text = Annotated[str, Strict(), StringConstraints(min_length=1), AfterValidator(_text)]
#: One line of text (a name, a title, a reference), kept verbatim.
Line = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=MAX_LINE_CHARS), AfterValidator(_line)]

_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: A complaint's id as the business knows it (an order system's key, a ticket number).
ComplaintId = Annotated[str, Strict(), StringConstraints(pattern=_ID)]
#: A customer's id: a pseudonymous key, never a name, so it can stand in search attributes and reports.
CustomerId = Annotated[str, Strict(), StringConstraints(pattern=_ID)]
#: Who acted: ``system``, ``customer``, or a role with a name such as ``agent:ana`` or ``supervisor:budi``.
Actor = Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z][a-z_]{0,31}(:[A-Za-z0-9._@-]{1,64})?$")]
#: ISO 4217 currency code.
Currency = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Z]{3}$")]

_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _in_era(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a timezone offset")
    if not _EARLIEST <= value < _LATEST:
        raise ValueError("must lie between 2000-01-01 and 2100-01-01")
    return value.astimezone(UTC)


def _not_a_number(value: object) -> object:
    if isinstance(value, bool | int | float):
        raise ValueError("must be an ISO 8601 date-time with an offset, e.g. 2026-11-24T09:30:00+07:00")
    return value


#: An aware instant, normalised to UTC, written as ISO 8601 text (a bare number is refused, not read as
#: seconds since 1970). Relative checks (not in the future, not years old) need a clock, so they live in
#: :func:`domain.intake.check_timing`, not here.
Timestamp = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_in_era)]


MONEY_MAX = 10**12


class Money(BaseModel):
    """An amount in integer minor units (cents, sen, pence) with its currency: never a float."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount_minor: Annotated[int, Strict(), Field(ge=0, le=MONEY_MAX)]
    currency: Currency

    def __str__(self) -> str:
        if self.currency in _ZERO_DECIMAL:
            return f"{self.currency} {self.amount_minor:,}"
        major, minor = divmod(self.amount_minor, 100)
        return f"{self.currency} {major:,}.{minor:02d}"


#: ISO 4217 currencies without minor units.
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX"})
