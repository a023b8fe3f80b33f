"""Personal data in event payloads: sealed at rest with the customer's own key, so destroying that key
erases the customer (crypto-shredding) while every hash, which covers the sealed text, still verifies.

Which fields are personal is declared by each event (``Event.personal``): a field name, or a path into
nested values where ``[]`` means every item of a list (``options[].description``). Sealing needs a key,
which is I/O, so it happens in the append activity through a :class:`Sealer`; this module only decides
what gets sealed and binds each sealed value to its place (complaint, sequence, event type, field, and the
item's index for a nested one), so a sealed value copied into another event, field or item does not open.

Every string in a personal field is sealed, also one that already looks sealed (a customer may type
anything). A value stored unsealed before its field was declared personal reads as itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from domain.events import EVENT_TYPES

SEALED_PREFIX = "sealed:v1:"
#: What a reader sees where a field's key was destroyed.
ERASED = "[erased]"
#: What a reader sees where a sealed field does not open (reported as a break, never as an erasure).
UNREADABLE = "[unreadable]"


class SealedFieldError(ValueError):
    """A sealed value that does not open with its key: tampered, or moved from another place."""

    kind = "sealed_field_tampered"


class UnknownKeyError(SealedFieldError):
    """A sealed value naming a key that was never issued: not an erasure (an erased key is still listed,
    destroyed), so never shown as one."""

    kind = "unknown_key"


class KeyUnavailableError(SealedFieldError):
    """A live key that cannot be unwrapped here: the master key that wrapped it is not configured."""

    kind = "key_unavailable"


class Sealer(Protocol):
    def seal(self, plaintext: str, place: bytes) -> str:
        """A sealed token (``sealed:v1:...``). Deterministic for the same key, text and place, so a retried
        append produces the same bytes and the same hash."""
        ...


class Opener(Protocol):
    def open(self, token: str, place: bytes) -> str | None:
        """The plaintext, or None where the key was destroyed. Raises :class:`SealedFieldError` (or one of
        its kinds) where the value does not open."""
        ...


#: Told of a personal field that does not open: its label (``options.1.description``) and why.
OnBroken = Callable[[str, SealedFieldError], None]


def place(complaint_id: str, sequence: int, event_type: str, field: str) -> bytes:
    return f"{complaint_id}/{sequence}/{event_type}/{field}".encode()


def ledger_place(complaint_id: str, offer_round: int, option_id: str) -> bytes:
    """Where a remedy's description is sealed in the remedy ledger (complaint_remedy_fulfilments)."""
    return f"{complaint_id}/ledger/{offer_round}/{option_id}/description".encode()


def personal_fields(event_type: str) -> tuple[str, ...]:
    cls = EVENT_TYPES.get(event_type)
    return cls.personal if cls else ()


def shown(value: str | None) -> str:
    """A value as an operator's screen shows it: a sealed one as ``[sealed]`` (it opens only in the log's
    timeline, for a reader with the keys), never the token."""
    if value is None:
        return ""
    return "[sealed]" if is_sealed(value) else value


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


Leaf = Callable[[Any, str], Any]


def _at(node: Any, steps: list[str], labels: list[str], leaf: Leaf) -> Any:
    """``node`` with ``leaf(value, label)`` applied at the path ``steps``; a missing key, or a value that is
    not the declared shape, is left as it is. Copies along the path, never changes ``node``."""
    step, rest = steps[0], steps[1:]
    many = step.endswith("[]")
    name = step[:-2] if many else step
    if not isinstance(node, dict) or name not in node:
        return node
    value = node[name]
    if many:
        if not isinstance(value, list):
            return node
        new: Any = [_at(item, rest, [*labels, name, str(i)], leaf) if rest else
                    leaf(item, ".".join([*labels, name, str(i)])) for i, item in enumerate(value)]
    else:
        new = _at(value, rest, [*labels, name], leaf) if rest else leaf(value, ".".join([*labels, name]))
    return {**node, name: new}


def _each_field(event_type: str, payload: dict[str, Any], leaf: Leaf) -> dict[str, Any]:
    for path in personal_fields(event_type):
        payload = _at(payload, path.split("."), [], leaf)
    return payload


def has_personal(event_type: str, payload: dict[str, Any]) -> bool:
    """Whether sealing this payload needs the customer's key (a string in one of its personal fields)."""
    found = False

    def look(value: Any, label: str) -> Any:
        nonlocal found
        found = found or isinstance(value, str)
        return value

    _each_field(event_type, payload, look)
    return found


def seal_payload(event_type: str, payload: dict[str, Any], complaint_id: str, sequence: int,
                 sealer: Sealer) -> dict[str, Any]:
    """Every string in a personal field sealed at its place. Deterministic (the sealer is), so a retried
    append gives the same bytes."""

    def seal(value: Any, label: str) -> Any:
        return sealer.seal(value, place(complaint_id, sequence, event_type, label)) if isinstance(value, str) else value

    return _each_field(event_type, payload, seal)


def open_payload(event_type: str, payload: dict[str, Any], complaint_id: str, sequence: int,
                 opener: Opener, on_broken: OnBroken | None = None) -> dict[str, Any]:
    """The payload as a reader sees it: personal fields opened, or ``[erased]`` where the key was destroyed.
    A sealed value that does not open raises :class:`SealedFieldError`, unless ``on_broken`` is given: then
    it is told, and the field reads ``[unreadable]``."""

    def open_(value: Any, label: str) -> Any:
        if not is_sealed(value):
            return value  # not personal when it was written, or no value
        try:
            text = opener.open(value, place(complaint_id, sequence, event_type, label))
        except SealedFieldError as error:
            if on_broken is None:
                raise
            on_broken(label, error)
            return UNREADABLE
        return ERASED if text is None else text

    return _each_field(event_type, payload, open_)
