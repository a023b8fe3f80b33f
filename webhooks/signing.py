"""What a delivery says and how it is signed: pure, no I/O.

``X-Complaints-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``, with the timestamp (Unix
seconds) in ``X-Complaints-Timestamp`` and the delivery's id in ``X-Complaints-Delivery`` (the scheme of
Stripe's and Zendesk's webhooks). A receiver recomputes the HMAC over the exact bytes it received, compares in
constant time, and refuses a timestamp too far from its clock (a replayed request).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

SIGNATURE_HEADER = "X-Complaints-Signature"
TIMESTAMP_HEADER = "X-Complaints-Timestamp"
DELIVERY_HEADER = "X-Complaints-Delivery"
EVENT_HEADER = "X-Complaints-Event"


def delivery_id(webhook_id: str, position: int) -> str:
    """The same for every attempt and every replay of one event to one webhook."""
    return f"{webhook_id}:{position}"


def body(webhook_id: str, position: int, record: Any, payload: dict[str, Any]) -> bytes:
    """The JSON a backend receives for one event: its identity, its place, and its payload (sealed personal
    fields stay sealed unless the webhook may see them)."""
    return orjson.dumps({
        "delivery_id": delivery_id(webhook_id, position),
        "event_id": f"{record.complaint_id}/{record.sequence}",
        "complaint_id": record.complaint_id,
        "type": record.type,
        "sequence": record.sequence,
        "position": position,
        "schema_version": record.schema_version,
        "occurred_at": record.occurred_at.isoformat(),
        "actor": record.actor,
        "payload": payload,
    }, option=orjson.OPT_SORT_KEYS)


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(secret: str, timestamp: str, payload: bytes, signed: str, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (the README's snippet is this function): the signature over the exact bytes, and
    a timestamp within ``tolerance`` seconds of ``now``."""
    try:
        when = int(timestamp)
    except ValueError:
        return False
    if abs(now - when) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, when, payload), signed)
