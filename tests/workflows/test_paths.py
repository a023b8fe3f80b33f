"""Every path of the lifecycle on the time-skipping server with the real event store: the exact events in
order, the final state, fold(log) == the workflow's state, and a verified chain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.vocabulary import DeadlineKind, Outcome, Stage
from eventlog import PostgresEventStore
from tests.workflows.driver import Driver
from workflows.complaint import ComplaintWorkflow

INTAKE = ["ComplaintReceived", "SlaDeadlinesSet", "ComplaintAcknowledged"]
ASK_EMAIL = ["ContactMoveRequested"]
VALID = ["ComplaintAssessed", "ApologyIssued", "RemedyOffered"]
FOLLOW_UP = ["FollowUpScheduled"]
SATISFIED = ["FollowUpRecorded", "ComplaintClosed"]

Data = Callable[..., dict[str, Any]]


@pytest.fixture
def drive(time_skipping: WorkflowEnvironment, store: PostgresEventStore, worker: Worker, task_queue: str) -> Driver:
    return Driver(time_skipping.client, store, task_queue)


def valid(**extra: Any) -> dict[str, Any]:
    return {"verdict": "valid", "root_cause": "third_party", "by": "agent:ana",
            "findings": "The courier held the parcel for a week.", **extra}


def invalid(**extra: Any) -> dict[str, Any]:
    return {"verdict": "invalid", "root_cause": "customer_misunderstanding", "by": "agent:ana",
            "findings": "The freeze started from the next cycle, as agreed.", "sop_reference": "SOP 6.1", **extra}



async def test_valid_complaint_with_a_chosen_remedy_is_closed_resolved(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data())
    await drive.send(cid, ComplaintWorkflow.move_offline, rung="email", detail="siti@example.co.id")
    await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="email", text="Paket belum sampai.")
    offered = await drive.send(cid, ComplaintWorkflow.assess, **valid())
    assert offered.stage is Stage.awaiting_remedy_choice
    assert offered.offer is not None and len(offered.offer.options) >= 2
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="B")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=5, comment="Terima kasih.")
    final = await drive.finished(cid)

    assert await drive.types(cid) == [
        *INTAKE, *ASK_EMAIL, "ContactMovedOffline", "ContactMoveRequested", "MessageLogged", *VALID,
        "RemedyChosen", "RemedyFulfilled", *FOLLOW_UP, *SATISFIED,
    ]
    assert (final.stage, final.outcome, final.satisfaction, final.remedy_option) == (
        Stage.closed, Outcome.resolved, 5, "B")
    assert final.remedy_reference and final.remedy_reference.startswith("RM-")
    assert all(d.met_in_time for d in final.deadlines)
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "valid_remedy_chosen")


async def test_an_unanswered_offer_applies_its_default_option(drive: Driver, intake_data: Data,
                                                              time_skipping: WorkflowEnvironment) -> None:
    cid = await drive.submit(intake_data())
    offered = await drive.send(cid, ComplaintWorkflow.assess, **valid(offer_days=3))
    assert offered.offer is not None
    await time_skipping.sleep(timedelta(days=4))
    state = await drive.stage(cid, Stage.awaiting_follow_up)
    assert state.remedy_defaulted and state.remedy_option == offered.offer.default_option
    assert (await drive.types(cid))[-4:] == ["RemedyOffered", "RemedyDefaulted", "RemedyFulfilled",
                                             "FollowUpScheduled"]
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=4)
    assert (await drive.finished(cid)).outcome is Outcome.resolved
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "valid_offer_expired")


async def test_partially_valid_gets_apology_remedy_and_explanation(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data("faulty-kettle.json"))
    state = await drive.send(cid, ComplaintWorkflow.assess, verdict="partially_valid", root_cause="product",
                             findings="Switch fault, and no filter used.", sop_reference="Manual section 4",
                             remedies=["repair", "replacement"])
    assert state.apologised and state.explained and state.stage is Stage.awaiting_remedy_choice
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=3)
    await drive.finished(cid)
    assert await drive.types(cid) == [
        *INTAKE, "ContactMoveRequested", "ComplaintAssessed", "ApologyIssued", "ExplanationGiven", "RemedyOffered",
        "RemedyChosen", "RemedyFulfilled", *FOLLOW_UP, *SATISFIED,
    ]
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "partially_valid")


async def test_invalid_complaint_explained_and_the_customer_stays(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data("roaming-charges.json"))
    state = await drive.send(cid, ComplaintWorkflow.assess, **invalid())
    assert state.stage is Stage.awaiting_option_choice and not state.apologised
    await drive.send(cid, ComplaintWorkflow.choose_option, option="stay")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=4)
    final = await drive.finished(cid)
    types = await drive.types(cid)
    assert types == [*INTAKE, "ComplaintAssessed", "ExplanationGiven", "OptionsOffered", "OptionChosen",
                     *FOLLOW_UP, *SATISFIED]
    assert "ApologyIssued" not in types
    assert final.outcome is Outcome.resolved and final.churn is None
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "invalid_stays")


async def test_invalid_complaint_and_the_customer_leaves_is_churn(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data("gym-contract.json"))
    await drive.send(cid, ComplaintWorkflow.apologise_for_conduct, text="Maaf atas nada staf kami.")
    await drive.send(cid, ComplaintWorkflow.assess, **invalid())
    await drive.send(cid, ComplaintWorkflow.choose_option, option="leave", reason="Berhenti tanpa penalti.")
    final = await drive.finished(cid)
    assert await drive.types(cid) == [
        *INTAKE, "ContactMoveRequested", "ConductApologyIssued", "ComplaintAssessed", "ExplanationGiven",
        "OptionsOffered", "OptionChosen", "CustomerChurned", "ComplaintClosed",
    ]
    assert final.outcome is Outcome.customer_left and final.churn is not None and final.churn.value == "service"
    assert not final.apologised and final.conduct_apologies == 1
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "invalid_leaves")


async def test_an_unsatisfied_customer_reopens_the_complaint_then_is_satisfied(drive: Driver,
                                                                              intake_data: Data) -> None:
    cid = await drive.submit(intake_data("roaming-charges.json"))
    await drive.send(cid, ComplaintWorkflow.assess, **invalid())
    await drive.send(cid, ComplaintWorkflow.choose_option, option="stay")
    await drive.stage(cid, Stage.awaiting_follow_up)
    reopened = await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=2, comment="Still unfair.")
    assert reopened.stage is Stage.awaiting_assessment and reopened.reopen_count == 1
    await drive.send(cid, ComplaintWorkflow.assess, **valid(root_cause="communication"))
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=4)
    final = await drive.finished(cid)
    types = await drive.types(cid)
    assert types.count("ComplaintReopened") == 1 and types[-2:] == SATISFIED
    assert final.outcome is Outcome.resolved and final.root_cause is not None
    assert final.root_cause.value == "communication" and final.assessments == 2
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "reopened_then_satisfied")


async def test_unsatisfied_after_two_reopenings_goes_to_a_supervisor(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data("roaming-charges.json"))
    for _ in range(3):
        await drive.send(cid, ComplaintWorkflow.assess, **invalid())
        await drive.send(cid, ComplaintWorkflow.choose_option, option="stay")
        await drive.stage(cid, Stage.awaiting_follow_up)
        state = await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=1)
    assert state.stage is Stage.escalated and state.reopen_count == 2
    assert [p for p in await drive.opened(cid) if "awaits_supervisor" in p][-1]["to"] == "supervisor"
    await drive.send(cid, ComplaintWorkflow.close, outcome="unresolved",
                     note="Explained again by phone; customer disagrees.", by="supervisor:budi")
    final = await drive.finished(cid)
    types = await drive.types(cid)
    assert types.count("ComplaintReopened") == 2
    assert types[-3:] == ["FollowUpRecorded", "ComplaintEscalated", "ComplaintClosed"]
    assert final.outcome is Outcome.unresolved
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "reopened_twice_escalated")


@pytest.mark.parametrize("stage", ["awaiting_assessment", "awaiting_remedy_choice", "awaiting_follow_up"])
async def test_the_customer_may_withdraw_at_any_open_stage(drive: Driver, intake_data: Data, stage: str) -> None:
    cid = await drive.submit(intake_data())
    if stage != "awaiting_assessment":
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
    if stage == "awaiting_follow_up":
        await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
        await drive.stage(cid, Stage.awaiting_follow_up)
    assert (await drive.state(cid)).stage.value == stage
    await drive.send(cid, ComplaintWorkflow.withdraw, reason="Sorted it out myself.")
    final = await drive.finished(cid)
    assert (await drive.types(cid))[-2:] == ["ComplaintWithdrawn", "ComplaintClosed"]
    assert final.outcome is Outcome.withdrawn
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, f"withdrawn_{stage}")


async def test_deadlines_warn_then_breach_and_escalate(drive: Driver, intake_data: Data,
                                                        time_skipping: WorkflowEnvironment) -> None:
    cid = await drive.submit(intake_data("roaming-charges.json"))  # US: 15 calendar days, warned 2 days before
    state = await drive.state(cid)
    final_deadline = state.deadline(DeadlineKind.final_response)
    assert final_deadline is not None
    until_warning = final_deadline.warn_at - await time_skipping.get_current_time() + timedelta(minutes=1)
    await time_skipping.sleep(until_warning)
    warned = await drive.wait(cid, lambda s: any(d.warned for d in s.deadlines if d.kind.value == "final_response"))
    assert not warned.sla_breached
    await time_skipping.sleep(timedelta(days=3))
    breached = await drive.wait(cid, lambda s: s.sla_breached)
    assert breached.escalations
    assert "breached" in [p for p in await drive.opened(cid) if "awaits_supervisor" in p][-1]["reason"]
    assert breached.stage is Stage.awaiting_assessment  # the work goes on, now under a supervisor's eye
    types = await drive.types(cid)
    assert "SlaWarningRaised" in types and "SlaBreached" in types and "ComplaintEscalated" in types
    assert types.index("SlaWarningRaised") < types.index("SlaBreached")
    await drive.send(cid, ComplaintWorkflow.withdraw)
    await drive.finished(cid)
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "sla_warning_and_breach")


async def test_an_extension_moves_the_deadline_once(drive: Driver, intake_data: Data,
                                                    time_skipping: WorkflowEnvironment) -> None:
    cid = await drive.submit(intake_data())  # Indonesia, written: 10 working days, +10 once with notice
    before = (await drive.state(cid)).deadline(DeadlineKind.final_response)
    extended = await drive.send(cid, ComplaintWorkflow.extend_deadline, reason="Courier investigation pending.",
                                notice="Kami memerlukan waktu tambahan 10 hari kerja untuk menyelidiki.")
    after = next(d for d in extended.deadlines if d.kind.value == "final_response")
    assert before is not None and after.extended and after.due_at > before.due_at
    assert before.extension is not None and after.due_at == before.extension.due_at
    # Check a second extension is refused, and the original due date passes without a breach.
    with pytest.raises(Exception, match="already extended"):
        await drive.send(cid, ComplaintWorkflow.extend_deadline, reason="Again.", notice="Again.")
    await time_skipping.sleep(before.due_at - await time_skipping.get_current_time() + timedelta(hours=1))
    state = await drive.state(cid)
    assert not any(d.breached for d in state.deadlines if d.kind.value == "final_response")
    await drive.send(cid, ComplaintWorkflow.assess, **valid())
    await drive.send(cid, ComplaintWorkflow.withdraw)
    await drive.finished(cid)
    assert "SlaExtended" in await drive.types(cid)
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "deadline_extended")


async def test_an_unanswered_follow_up_closes_the_complaint_unconfirmed(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data())
    await drive.send(cid, ComplaintWorkflow.assess, **valid())
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
    await drive.stage(cid, Stage.awaiting_follow_up)
    final = await drive.finished(cid)  # the server skips to the follow-up's answer deadline
    assert final.outcome is Outcome.unconfirmed and final.satisfaction is None
    assert (await drive.types(cid))[-2:] == ["FollowUpScheduled", "ComplaintClosed"]
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "follow_up_unanswered")


async def test_a_late_entered_complaint_is_breached_and_escalated_at_once(drive: Driver, intake_data: Data) -> None:
    now = datetime.now(UTC)
    cid = await drive.submit(intake_data(occurred_at=(now - timedelta(days=31)).isoformat(),
                                         received_at=(now - timedelta(days=30)).isoformat()))
    state = await drive.wait(cid, lambda s: all(d.breached for d in s.deadlines))
    kinds = {d.kind.value for d in state.deadlines if d.breached}
    assert kinds == {"acknowledgement", "assessment", "final_response"}
    assert len(state.escalations) == 3
    await drive.send(cid, ComplaintWorkflow.withdraw)
    await drive.finished(cid)
    await drive.witnesses_agree(cid)
