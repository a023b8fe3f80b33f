"""The gateway: how the customer's own words and choices reach their complaint.

It reads a complaint from the log (the application role: SELECT only), opened with the customer's key, to
show the customer what they were told and offered; and it sends what the customer decides or writes as the
same workflow updates an operator would send, as the principal ``customer:<id>``. It vouches for that
principal with an issuer of its own (COMPLAINTS_GATEWAY_ISSUER_KEY_FILE), which the workers trust for the
``customer`` role only: whoever takes the gateway can speak for customers, never for staff.

It never writes to the log itself: the workflow does, after its validators accept the update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client

import starter
from domain import commands as cmd
from domain import events as ev
from domain.chain import Recorded
from domain.complaint import Complaint, fold
from domain.intake import default_language
from eventlog import EventStore
from eventlog.keys import CustomerKeyring
from identity.client import acting_as
from identity.tokens import IssuerKey
from logs import get_logger

log = get_logger(__name__)

#: A customer's credential lives only as long as one update takes.
CREDENTIAL_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class Story:
    """A complaint as the log holds it: the folded state (personal fields sealed), the records, and the
    events with the customer's words opened."""

    state: Complaint
    records: list[Recorded]
    events: list[ev.Event]

    @property
    def language(self) -> str:
        return self.state.language or default_language(self.state.jurisdiction)

    def offering(self, event_type: str) -> Recorded | None:
        """The newest record of ``event_type`` (the offer a link answers)."""
        return next((r for r in reversed(self.records) if r.type == event_type), None)

    def opened(self, record: Recorded) -> ev.Event:
        return self.events[record.sequence - 1]


class Gateway:
    def __init__(self, client: Client, store: EventStore, keyring: CustomerKeyring, issuer: IssuerKey) -> None:
        self.client = client
        self.store = store
        self.keyring = keyring
        self.issuer = issuer

    async def story(self, complaint_id: str) -> Story | None:
        """The complaint as the log holds it, or None if the log holds no such complaint."""
        records = await self.store.read(complaint_id)
        state = fold(records)
        if state is None:
            return None
        return Story(state, records, await self.keyring.open_events(complaint_id, records))

    async def act(self, story: Story, update: str, command: cmd.Command, *, update_id: str) -> Complaint:
        """Send ``command`` to the complaint's ``update`` as its customer. ``update_id`` makes a repeat (a form
        sent twice, a reply read twice) return the first outcome instead of deciding twice. Raises
        starter.DecisionRefused when the workflow refuses it (nothing is recorded then)."""
        state = story.state
        token = self.issuer.issue(state.customer_id, "customer", ttl=CREDENTIAL_TTL)
        with acting_as(token):
            result = await starter.send(self.client, state.complaint_id, update, command, idempotency_key=update_id)
        log.info("customer acted", complaint_id=state.complaint_id, update=update, sequence=result.head.sequence)
        return result
