"""The PostgreSQL event log: append-only, hash-chained, idempotent appends, reads by complaint and by position."""

from eventlog.errors import BrokenChain, DivergentHistory, EventLogError, EventLogUnavailable
from eventlog.store import START, Cursor, EventStore, Positioned, PostgresEventStore

__all__ = [
    "START",
    "BrokenChain",
    "Cursor",
    "DivergentHistory",
    "EventLogError",
    "EventLogUnavailable",
    "EventStore",
    "Positioned",
    "PostgresEventStore",
]
