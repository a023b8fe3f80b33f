"""Appending to the event log: chain the drafts after the workflow's head, store them, return what was stored.

Retries are safe: chaining is pure (same drafts, head and time give the same hashes), and the store
treats an identical row as already written. A different row at the same place is divergent history,
which no retry can mend, so it is raised as non-retryable."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import messages as msg
from domain.chain import chain
from eventlog import BrokenChain, DivergentHistory, EventStore, EventLogUnavailable
from logs import get_logger

log = get_logger(__name__)


class EventLogActivities:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    @activity.defn(name=msg.APPEND_EVENTS)
    async def append_events(self, request: msg.AppendEvents) -> msg.Appended:
        info = activity.info()
        records = chain(request.head, request.complaint_id, request.occurred_at, request.drafts)
        try:
            written = await self.store.append(records, workflow_id=info.workflow_id or "",
                                              run_id=info.workflow_run_id or "")
        except DivergentHistory as error:
            raise ApplicationError(str(error), type="DivergentHistory", non_retryable=True) from error
        except BrokenChain as error:
            raise ApplicationError(str(error), type="BrokenChain", non_retryable=True) from error
        except EventLogUnavailable as error:
            # One line, no traceback: the retry policy waits the outage out, and the next attempt says more.
            log.warning("event log unavailable; will retry", attempt=info.attempt, error=str(error)[:200])
            raise ApplicationError("event log unavailable", type="EventLogUnavailable") from None
        if written < len(records):
            log.info("append retried: already stored", events=len(records), new=written)
        return msg.Appended(records=records)
