"""What can go wrong with the log, as the rest of the program needs to tell it apart."""


class EventLogError(Exception):
    """Root of the event log's errors."""


class DivergentHistory(EventLogError):
    """A different event is already stored at this (complaint_id, sequence): never retried, never overwritten."""


class BrokenChain(EventLogError):
    """A batch that does not continue the stored chain (a gap, a wrong prev_hash, a hash that does not match)."""


class EventLogUnavailable(EventLogError):
    """PostgreSQL cannot be reached right now; the caller retries."""
