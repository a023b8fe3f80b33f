"""The workflow's doors, tried by the forgeries they must refuse (a real Temporal server, a real PostgreSQL):
forged state and run options in the input, a workflow id that is not the complaint's, a complaint started
again, a caller with no credential or a bad one or the wrong role, personal data sent in plaintext. Each is
refused with a typed error, and nothing reaches the log, the remedy provider, or (for a decision) history."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

import starter
from activities import messages as msg
from activities.admission import Admission
from codec import data_converter
from domain.chain import ChainHead
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from identity.client import CredentialInterceptor, acting_as
from identity.tokens import IssuerKey, TrustedIssuers
from settings import workflow_id
from tests.principals import ISSUER, SuitePrincipals, token
from tests.workflows.driver import Driver, command
from tests.workflows.test_paths import valid
from worker import build_worker
from workflows.complaint import ComplaintWorkflow
from workflows.start import ComplaintWorkflowOptions

Data = Callable[..., dict[str, Any]]
ordered: list[msg.FulfilmentRequest] = []


@activity.defn(name=msg.FULFIL_REMEDY)
async def recording_provider(request: msg.FulfilmentRequest) -> msg.FulfilmentReceipt:
    ordered.append(request)
    return msg.FulfilmentReceipt(reference=f"R-{len(ordered)}")


@pytest.fixture
async def drive(dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, task_queue: str
                ) -> AsyncIterator[Driver]:
    ordered.clear()
    async with build_worker(dev_server.client, app_pool, task_queue, remedy_provider=recording_provider,
                            run_options=msg.RunOptions(refused_run_ttl_seconds=2)):
        yield Driver(dev_server.client, store, task_queue)


async def bare_client(drive: Driver, *, codec: bool = True, principals: bool = False) -> Client:
    """A client as an outsider makes it: the codec or not, a credential or not."""
    return await Client.connect(
        drive.client.service_client.config.target_host,
        data_converter=drive.client.data_converter if codec else data_converter(None),
        interceptors=[CredentialInterceptor(), SuitePrincipals()] if principals else [],
    )


async def refused_start(client: Client, drive: Driver, wid: str, arg: Any) -> ApplicationError:
    handle = await client.start_workflow("ComplaintWorkflow", arg, id=wid, task_queue=drive.task_queue)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def closed_state(drive: Driver, intake_data: Data) -> dict[str, Any]:
    cid = await drive.submit(intake_data())
    await drive.send(cid, ComplaintWorkflow.withdraw, reason="changed my mind")
    return (await drive.finished(cid)).model_dump(mode="json")


# --- the input is the intake alone ----------------------------------------------------------------------------


async def test_a_start_handing_in_a_closed_state_is_refused_and_writes_nothing(drive: Driver, intake_data: Data
                                                                               ) -> None:
    forged = await closed_state(drive, intake_data)
    data = intake_data()
    forged.update(complaint_id=data["complaint_id"], customer_id=data["customer"]["id"])
    cause = await refused_start(drive.client, drive, workflow_id(data["complaint_id"]),
                                {"intake": data, "options": {"resume": forged}})
    assert cause.type == "InputRefused" and "intake alone" in cause.message
    assert await drive.store.read(data["complaint_id"]) == []


async def test_a_forged_fulfilment_state_orders_nothing_from_the_provider(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data())
    await drive.send(cid, ComplaintWorkflow.assess, **valid())
    offered = (await drive.state(cid)).model_dump(mode="json")
    data = intake_data()
    offered["offer"]["options"][0]["value"] = {"amount_minor": 10**12, "currency": "IDR"}
    offered.update(complaint_id=data["complaint_id"], customer_id=data["customer"]["id"], stage="fulfilling_remedy",
                   remedy_option=offered["offer"]["options"][0]["id"])
    cause = await refused_start(drive.client, drive, workflow_id(data["complaint_id"]),
                                {"intake": data, "options": {"resume": offered}})
    assert cause.type in ("InputRefused", "InvalidInput"), cause.type
    await asyncio.sleep(1)
    assert ordered == [] and await drive.store.read(data["complaint_id"]) == []


@pytest.mark.parametrize("options", [{"fulfilment_attempts": 2**31}, {"max_history_events": 100},
                                     {"local_appends": True}, {"local_quotes": True}], ids=lambda o: next(iter(o)))
async def test_run_options_from_a_caller_are_refused(drive: Driver, intake_data: Data, options: dict[str, Any]
                                                     ) -> None:
    data = intake_data()
    cause = await refused_start(drive.client, drive, workflow_id(data["complaint_id"]),
                                {"intake": data, "options": options})
    # An option a start may carry (from before the perimeter) is refused by the perimeter; one it never could
    # (a worker's alone, as local_quotes) already by the input's schema.
    known = next(iter(options)) in ComplaintWorkflowOptions.model_fields
    assert cause.type == ("InputRefused" if known else "InvalidInput")
    assert await drive.store.read(data["complaint_id"]) == []


async def test_another_complaints_state_cannot_be_written_into_its_chain(drive: Driver, intake_data: Data) -> None:
    victim = await drive.submit(intake_data())
    before = await drive.store.read(victim)
    state = (await drive.state(victim)).model_dump(mode="json")
    victim_intake = {**intake_data(), "complaint_id": victim}
    # The victim's id and head, started under the forger's own workflow id: refused, the chain untouched.
    cause = await refused_start(drive.client, drive, "complaint-FORGER-1",
                                {"intake": victim_intake, "options": {"resume": state}})
    assert cause.type == "WrongWorkflowId"
    assert await drive.store.read(victim) == before
    # And the victim's own next decision goes through as if nothing happened.
    assessed = await drive.send(victim, ComplaintWorkflow.assess, **valid())
    assert assessed.stage is Stage.awaiting_remedy_choice


async def test_an_intake_under_another_complaints_workflow_id_is_refused(drive: Driver, intake_data: Data) -> None:
    x, y = intake_data(), intake_data()
    cause = await refused_start(drive.client, drive, workflow_id(y["complaint_id"]), x)
    assert cause.type == "WrongWorkflowId" and workflow_id(x["complaint_id"]) in cause.message
    assert await drive.store.read(x["complaint_id"]) == [] and await drive.store.read(y["complaint_id"]) == []


async def test_a_closed_complaint_started_again_is_refused_as_existing(drive: Driver, intake_data: Data) -> None:
    data = intake_data()
    await drive.submit(data)
    await drive.send(data["complaint_id"], ComplaintWorkflow.withdraw)
    await drive.finished(data["complaint_id"])
    before = await drive.store.read(data["complaint_id"])
    # The temporal CLI's default id reuse policy allows a new run after close; the log does not.
    cause = await refused_start(drive.client, drive, workflow_id(data["complaint_id"]), data)
    assert cause.type == "ComplaintExists" and data["complaint_id"] in cause.message
    assert await drive.store.read(data["complaint_id"]) == before


# --- every intake and decision by an authenticated principal -------------------------------------------------------


async def test_a_start_without_a_credential_or_with_the_wrong_role_writes_nothing(drive: Driver, intake_data: Data
                                                                                  ) -> None:
    outsider = await bare_client(drive)
    data = intake_data()
    cause = await refused_start(outsider, drive, workflow_id(data["complaint_id"]), data)
    assert cause.type == "Unauthenticated" and "no credential" in cause.message
    for role, kind in (("customer", "Forbidden"), ("auditor", "Forbidden")):
        data = intake_data()
        with acting_as(token(role, data["customer"]["id"])):
            cause = await refused_start(drive.client, drive, workflow_id(data["complaint_id"]), data)
        assert cause.type == kind and "submit" in cause.message
        assert await drive.store.read(data["complaint_id"]) == []
    data = intake_data()
    with acting_as(token("intake", "crm", at=datetime.now(UTC) - timedelta(hours=3))):
        cause = await refused_start(drive.client, drive, workflow_id(data["complaint_id"]), data)
    assert cause.type == "Unauthenticated" and "expired" in cause.message
    assert await drive.store.read(data["complaint_id"]) == []


def _tampered(good: str) -> str:
    import base64

    head, body, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["role"] = "supervisor"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


BAD_CREDENTIALS: list[tuple[str, Callable[[], str], str]] = [
    ("expired", lambda: token("agent", at=datetime.now(UTC) - timedelta(hours=2)), "expired"),
    ("not yet valid", lambda: token("agent", at=datetime.now(UTC) + timedelta(hours=2)), "not valid before"),
    ("tampered payload", lambda: _tampered(token("agent")), "signature"),
    ("wrong signature", lambda: IssuerKey(ISSUER.issuer, IssuerKey.generate("x").private, ISSUER.kid).issue(
        "ana", "supervisor"), "signature"),
    ("unknown issuer", lambda: IssuerKey.generate("https://evil.example").issue("ana", "supervisor"), "not trusted"),
    ("system claimed", lambda: token("system", "workflow"), "system"),
    ("garbage", lambda: "not-a-token", "well-formed"),
]


@pytest.mark.parametrize("name,make,reason", BAD_CREDENTIALS, ids=[b[0] for b in BAD_CREDENTIALS])
async def test_a_decision_with_a_bad_credential_leaves_no_trace(drive: Driver, intake_data: Data, name: str,
                                                                make: Callable[[], str], reason: str) -> None:
    cid = await drive.submit(intake_data())
    events, history = await drive.store.read(cid), await drive.history_length(cid)
    with acting_as(make()), pytest.raises(starter.DecisionRefused) as refused:
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
    assert refused.value.kind == "Unauthenticated" and reason in str(refused.value), str(refused.value)
    assert await drive.store.read(cid) == events and await drive.history_length(cid) == history


async def test_a_decision_without_any_credential_leaves_no_trace(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data())
    history = await drive.history_length(cid)
    outsider = await bare_client(drive)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await outsider.get_workflow_handle(workflow_id(cid)).execute_update(
            ComplaintWorkflow.withdraw, command(ComplaintWorkflow.withdraw, reason="as nobody"))
    assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.type == "Unauthenticated"
    assert await drive.history_length(cid) == history


async def test_roles_decide_only_what_they_may_and_the_log_names_them(drive: Driver, intake_data: Data) -> None:
    data = intake_data()
    cid, customer = await drive.submit(data), data["customer"]["id"]
    history = await drive.history_length(cid)
    forbidden = [
        (token("customer", customer), ComplaintWorkflow.assess, valid(), "agent or supervisor"),
        (token("auditor", "aud"), ComplaintWorkflow.withdraw, {}, "customer or agent or supervisor"),
        (token("agent", "ana"), ComplaintWorkflow.close, {"outcome": "resolved", "note": "n"}, "supervisor"),
        (token("customer", "someone-else"), ComplaintWorkflow.withdraw, {}, "not this complaint's customer"),
        (token("agent", "ana"), ComplaintWorkflow.escalate,
         {"to": "supervisor", "reason": "r", "by": "supervisor:budi"}, "'by' names 'supervisor:budi'"),
        (token("agent", "ana"), ComplaintWorkflow.withdraw, {"by": "system"}, "'by' names 'system'"),
        (token("customer", customer), ComplaintWorkflow.log_message,
         {"sender": "agent", "channel": "email", "text": "fake"}, "customer's own messages"),
    ]
    for credential, update, fields, reason in forbidden:
        with acting_as(credential), pytest.raises(starter.DecisionRefused) as refused:
            await drive.send(cid, update, **fields)
        assert refused.value.kind == "Forbidden" and reason in str(refused.value), (
            starter.update_name(update), str(refused.value))
    assert await drive.history_length(cid) == history
    with acting_as(token("customer", customer)):
        await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="email", text="Still waiting.")
    with acting_as(token("agent", "ana")):
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
        await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
    actors = {r.type: r.actor for r in await drive.store.read(cid)}
    assert actors["ComplaintReceived"].startswith("intake:suite-backend;iss=https://id.complaints.test;cred=")
    assert actors["MessageLogged"].startswith(f"customer:{customer};iss=")
    assert actors["ComplaintAssessed"].startswith("agent:ana;iss=")
    assert actors["RemedyChosen"].startswith("agent:ana;") and actors["RemedyChosen"].endswith(
        f";for=customer:{customer}")
    assert all(len(a.split("cred=")[1][:64]) == 64 for a in actors.values() if "cred=" in a)


# --- personal data never stays in Temporal in plaintext ----------------------------------------------------------


async def test_a_plaintext_start_is_refused_and_deleted_from_temporal(drive: Driver, intake_data: Data) -> None:
    plain = await bare_client(drive, codec=False, principals=True)
    data = intake_data()
    wid = workflow_id(data["complaint_id"])
    handle = await plain.start_workflow("ComplaintWorkflow", data, id=wid, task_queue=drive.task_queue)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "PlaintextRefused" and "codec" in failure.value.cause.message
    assert await drive.store.read(data["complaint_id"]) == []
    deadline = time.monotonic() + 60
    while True:  # the refused run is deleted once its caller has had time to read why (2 s here)
        try:
            await plain.get_workflow_handle(wid, run_id=handle.result_run_id).describe()
        except RPCError as error:
            assert error.status == RPCStatusCode.NOT_FOUND
            break
        assert time.monotonic() < deadline, "the refused run was not deleted"
        await asyncio.sleep(0.5)


async def test_a_plaintext_decision_is_refused_and_leaves_no_trace(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data())
    history = await drive.history_length(cid)
    plain = await bare_client(drive, codec=False, principals=True)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await plain.get_workflow_handle(workflow_id(cid)).execute_update(ComplaintWorkflow.log_message, command(
            ComplaintWorkflow.log_message, sender="customer", channel="email", text="my card number is ..."))
    assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.type == "PlaintextRefused"
    assert await drive.history_length(cid) == history


# --- a continuation's carried state is checked against the log -------------------------------------------------


async def test_carried_state_that_is_not_the_logs_head_is_refused(drive: Driver, intake_data: Data,
                                                                  store: PostgresEventStore) -> None:
    cid = await drive.submit(intake_data())
    head = (await drive.state(cid)).head
    admission = Admission(store, TrustedIssuers.of(ISSUER), msg.RunOptions())
    request = msg.AdmitRequest(complaint_id=cid, customer_id="c", at=datetime.now(UTC), carried_head=head)
    assert (await ActivityEnvironment().run(admission.admit, request)).refusal is None
    stale = request.model_copy(update={"carried_head": ChainHead(sequence=head.sequence - 1, hash=head.hash)})
    refusal = (await ActivityEnvironment().run(admission.admit, stale)).refusal
    assert refusal is not None and refusal.type == "CarriedStateRefused"
