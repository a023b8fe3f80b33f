"""Personal data in event payloads: sealed at rest with the customer's own key, so destroying that key
erases the customer (crypto-shredding) while every hash, which covers the sealed text, still verifies.

Which fields are personal is declared by each event (``Event.personal``). Sealing needs a key, which is
I/O, so it happens in the append activity through a :class:`Sealer`; this module only decides what gets
sealed and binds each sealed value to its place (complaint, sequence, event type, field), so a sealed
value copied into another event does not open.
"""

from __future__ import annotations

from typing import Any, Protocol

from domain.events import EVENT_TYPES

SEALED_PREFIX = "sealed:v1:"
#: What a reader sees where a field's key was destroyed.
ERASED = "[erased]"


class Sealer(Protocol):
    def seal(self, plaintext: str, place: bytes) -> str:
        """A sealed token (``sealed:v1:...``). Deterministic for the same key, text and place, so a retried
        append produces the same bytes and the same hash."""
        ...


class Opener(Protocol):
    def open(self, token: str, place: bytes) -> str | None:
        """The plaintext, or None where the key was destroyed."""
        ...


def place(complaint_id: str, sequence: int, event_type: str, field: str) -> bytes:
    return f"{complaint_id}/{sequence}/{event_type}/{field}".encode()


def personal_fields(event_type: str) -> tuple[str, ...]:
    cls = EVENT_TYPES.get(event_type)
    return cls.personal if cls else ()


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def seal_payload(event_type: str, payload: dict[str, Any], complaint_id: str, sequence: int,
                 sealer: Sealer) -> dict[str, Any]:
    fields = personal_fields(event_type)
    if not fields:
        return payload
    sealed = dict(payload)
    for field in fields:
        value = sealed.get(field)
        if isinstance(value, str) and not is_sealed(value):
            sealed[field] = sealer.seal(value, place(complaint_id, sequence, event_type, field))
    return sealed


def open_payload(event_type: str, payload: dict[str, Any], complaint_id: str, sequence: int,
                 opener: Opener) -> dict[str, Any]:
    """The payload as a reader sees it: personal fields opened, or ``[erased]``."""
    fields = personal_fields(event_type)
    if not fields:
        return payload
    opened = dict(payload)
    for field in fields:
        value = opened.get(field)
        if is_sealed(value):
            text = opener.open(value, place(complaint_id, sequence, event_type, field))
            opened[field] = ERASED if text is None else text
    return opened
