"""Signed webhooks: backends learn what happened to complaints as it happens (migrations/012_webhooks.sql).

Each subscription is a consumer of the log (eventlog/subscriptions.py, at least once): every event of the
types it asked for is POSTed to its URL as JSON, signed (see :func:`signature`), retried with backoff, and
parked after its retry budget, with the complaint's later events parked behind it so that a backend always
sees a complaint's events in order. ``complaints webhook replay`` delivers what was parked once the backend is
repaired. A delivery keeps its id (``<webhook>:<position>``) through retries and replays: a backend that saw
it already recognises it.
"""

from webhooks.delivery import Deliverer, run_all
from webhooks.registry import Webhook, add, get, listing, parked, remove, replay_from, status
from webhooks.signing import SIGNATURE_HEADER, body, signature, verify

__all__ = [
    "SIGNATURE_HEADER",
    "Deliverer",
    "Webhook",
    "add",
    "body",
    "get",
    "listing",
    "parked",
    "remove",
    "replay_from",
    "run_all",
    "signature",
    "status",
    "verify",
]
