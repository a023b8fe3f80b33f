"""Appending to the event log: seal personal fields with the customer's key, chain the drafts after the
workflow's head, store them, and return what was stored (what the workflow folds).

Retries are safe: chaining is pure (same drafts, head and time give the same hashes), and the store
treats an identical row as already written. A different row at the same place is divergent history, which no
retry can mend, so it is raised as non-retryable; except when the same run stored a batch there from the same
head, in one append: then that batch is returned, and the workflow folds what the log holds. Either the same
decision (a local append whose workflow task never completed, run again with a new workflow.now()), or another
one of the run's (a task Temporal lost after its append committed, the run deciding again on inputs that came in
another order: ``decided_before``, and the workflow decides again on top of it). Another run's batch, or one
from another head, stays divergent."""

from __future__ import annotations

import time
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities import messages as msg
from domain.chain import Recorded, chain
from domain.personal import has_personal, seal_payload
from eventlog import BrokenChain, DivergentHistory, EventLogUnavailable, EventStore
from eventlog.connect import CONNECTION_ERRORS
from eventlog.errors import EventLogError
from eventlog.keys import CustomerErased, CustomerKeyring
from eventlog.store import StoredBatch
from logs import get_logger

log = get_logger(__name__)


#: Metrics, served with the SDK's (worker.py): every append by how it ended (appended, already_stored,
#: same_decision, decided_before, divergent, broken_chain, unavailable, refused), and how long the store took.
APPENDS = "complaints_appends"
APPEND_LATENCY = "complaints_append_latency"


def _measured(outcome: str, started: float) -> None:
    meter = activity.metric_meter()
    meter.create_counter(APPENDS, "appends to the event log, by outcome").add(1, {"outcome": outcome})
    meter.create_histogram_timedelta(APPEND_LATENCY, "how long the event log took to append", "ms").record(
        timedelta(seconds=time.monotonic() - started), {"outcome": outcome})


def unavailable(attempt: int, error: BaseException) -> ApplicationError:
    """PostgreSQL is away: one warning line, no traceback (BENIGN: the SDK logs it at DEBUG), and the retry
    policy waits the outage out."""
    log.warning("event log unavailable; will retry", attempt=attempt, error=str(error)[:200])
    return ApplicationError("event log unavailable", type="EventLogUnavailable",
                            category=ApplicationErrorCategory.BENIGN)


class EventLogActivities:
    def __init__(self, store: EventStore, keyring: CustomerKeyring) -> None:
        self.store = store
        self.keyring = keyring

    @activity.defn(name=msg.APPEND_EVENTS)
    async def append_events(self, request: msg.AppendEvents) -> msg.Appended:
        info = activity.info()
        first = request.head.sequence + 1
        drafts = request.drafts
        if any(has_personal(draft.type, draft.payload) for draft in drafts):
            try:
                key = await self.keyring.key_for(request.customer_id)
            except CONNECTION_ERRORS as error:
                raise unavailable(info.attempt, error) from None
            except CustomerErased as error:
                # Sealing under a fresh key would keep what the erasure destroyed: refused for good.
                log.warning("append refused: the customer was erased", types=[d.type for d in drafts])
                raise ApplicationError(str(error), type="CustomerErased", non_retryable=True) from None
            drafts = [
                draft.model_copy(update={"payload": seal_payload(draft.type, draft.payload, request.complaint_id,
                                                                 first + offset, key)})
                for offset, draft in enumerate(drafts)
            ]
        records = chain(request.head, request.complaint_id, request.occurred_at, drafts)
        started = time.monotonic()
        try:
            written = await self.store.append(records, workflow_id=info.workflow_id or "",
                                              run_id=info.workflow_run_id or "", update_id=request.update_id)
        except DivergentHistory as error:
            stored = await self._stored_by_run(records, info.workflow_run_id or "")
            if stored is None:
                _measured("divergent", started)
                raise ApplicationError(str(error), type="DivergentHistory", non_retryable=True) from error
            if _same_decision(stored, records, request.update_id):
                # The same run's same decision, stored by an attempt whose workflow task never completed (a
                # worker killed after a local append): the log keeps what it stored, and the workflow folds that.
                log.warning("append retried by its run: the batch already stored is returned",
                            types=[r.type for r in records], sequence=records[-1].sequence)
                _measured("same_decision", started)
                return msg.Appended(records=stored.records)
            # Another decision of the same run, from the same head, whose workflow task Temporal lost (the server
            # killed after the append committed): the run decided again, on inputs that came in another order.
            # What is asked for is not written; the log keeps what it stored, and the run folds that batch and
            # decides again on top of it.
            log.warning("the run lost the workflow task of an earlier append: the batch it stored is returned",
                        types=[r.type for r in stored.records], asked=[r.type for r in records],
                        sequence=stored.records[-1].sequence)
            _measured("decided_before", started)
            return msg.Appended(records=stored.records, decided_before=True, decided_by_update=stored.update_id)
        except BrokenChain as error:
            _measured("broken_chain", started)
            raise ApplicationError(str(error), type="BrokenChain", non_retryable=True) from error
        except EventLogUnavailable as error:
            _measured("unavailable", started)
            raise unavailable(info.attempt, error) from None
        except EventLogError as error:
            _measured("refused", started)
            # Only an unavailable log is waited out; anything else the database refuses (a NUL in a text,
            # a value out of range) would be refused again on every retry, while the workflow's decisions
            # wait behind it: end the attempt, visibly.
            log.error("append refused by the event log", error=str(error)[:300])
            raise ApplicationError(f"the event log refused the append: {str(error)[:300]}", type="AppendRefused",
                                   non_retryable=True) from error
        _measured("appended" if written else "already_stored", started)
        log.info("events appended" if written == len(records) else "append retried: already stored",
                 types=[r.type for r in records], new=written, sequence=records[-1].sequence)
        return msg.Appended(records=records)

    async def _stored_by_run(self, records: list[Recorded], run_id: str) -> StoredBatch | None:
        """The batch one append stored at ``records``' place, if this run stored it there from the same head;
        else None (another run's, or none: what is asked for is divergent)."""
        if not run_id:
            return None
        try:
            found = await self.store.stored_from(records[0].complaint_id, records[0].sequence)
        except EventLogError:
            return None
        if found is None or found.run_id != run_id or found.records[0].prev_hash != records[0].prev_hash:
            return None
        return found


def _same_decision(stored: StoredBatch, records: list[Recorded], update_id: str | None) -> bool:
    """The same decision: the same events, by the same actors, in the same order, decided by the same update
    (or both the workflow's own); only what the clock gave may differ."""
    return stored.update_id == update_id and len(stored.records) == len(records) and all(
        kept.type == new.type and kept.actor == new.actor for kept, new in zip(stored.records, records, strict=True))
