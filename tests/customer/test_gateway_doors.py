"""The gateway's own doors, tried by the forgeries they must refuse, against a real worker: its issuer vouches
for customers only, a customer acts on their own complaint only, and a reply's Message-ID is kept once. Each
refusal is made by an update validator: nothing reaches history or the log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType

import starter
from domain import commands as cmd
from identity.client import acting_as
from settings import workflow_id
from tests.customer.conftest import CustomerSide, Data
from tests.principals import GATEWAY
from tests.workflows.test_paths import valid
from workflows.complaint import ComplaintWorkflow


async def accepted_updates(side: CustomerSide, cid: str) -> list[str]:
    history = await side.drive.client.get_workflow_handle(workflow_id(cid)).fetch_history()
    return [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]


async def test_the_gateways_issuer_cannot_act_as_staff_nor_for_another_customer(
        customer_side: CustomerSide, intake_data: Data) -> None:
    side = customer_side
    data = intake_data("unanswered-letter.json")
    cid = await side.drive.submit(data)
    before = (len(await side.drive.store.read(cid)), await accepted_updates(side, cid))
    assess = cmd.Assess.model_validate(valid())
    for role, subject in (("agent", "ana"), ("supervisor", "budi")):
        with acting_as(GATEWAY.issue(subject, role, ttl=timedelta(minutes=5))), \
                pytest.raises(starter.DecisionRefused, match="trusted only for the role"):
            await starter.send(side.drive.client, cid, ComplaintWorkflow.assess, assess)
    with acting_as(GATEWAY.issue("somebody-else", "customer", ttl=timedelta(minutes=5))), \
            pytest.raises(starter.DecisionRefused, match="not this complaint's customer"):
        await starter.send(side.drive.client, cid, ComplaintWorkflow.withdraw, cmd.Withdraw())
    assert (len(await side.drive.store.read(cid)), await accepted_updates(side, cid)) == before
    await side.drive.send(cid, ComplaintWorkflow.withdraw)


async def test_a_message_id_already_kept_is_refused_by_the_validator(
        customer_side: CustomerSide, intake_data: Data) -> None:
    side = customer_side
    data = intake_data("unanswered-letter.json")
    cid = await side.drive.submit(data)
    message = cmd.LogMessage(sender="customer", channel="email", text="Halo.",  # type: ignore[arg-type]
                             message_id="<once@mail.contoh.co.id>")
    with acting_as(GATEWAY.issue(data["customer"]["id"], "customer", ttl=timedelta(minutes=5))):
        await starter.send(side.drive.client, cid, ComplaintWorkflow.log_message, message)
        before = (len(await side.drive.store.read(cid)), await accepted_updates(side, cid))
        # Another update id, the same Message-ID: what a second reader of the same mailbox would send.
        with pytest.raises(starter.DecisionRefused, match="already kept"):
            await starter.send(side.drive.client, cid, ComplaintWorkflow.log_message,
                               message.model_copy(update={"text": "Halo lagi."}), idempotency_key="another")
    assert (len(await side.drive.store.read(cid)), await accepted_updates(side, cid)) == before
    await side.drive.send(cid, ComplaintWorkflow.withdraw)


@pytest.mark.parametrize("message_id", ["not-an-id", "<no at sign>", "<a@b>\r\nBcc: x@y", "<" + "a" * 300 + "@b>"])
def test_a_message_id_that_is_not_one_is_refused_naming_the_field(message_id: str) -> None:
    with pytest.raises(ValueError, match="message_id"):
        cmd.LogMessage.model_validate({"sender": "customer", "channel": "email", "text": "x",
                                       "message_id": message_id})
