"""Decisions as events, and state as their fold: the lifecycle's rules without any server.

Each story drives a complaint the way the workflow does: ``decide`` returns events, ``chain`` numbers and
links them, ``fold`` turns the records into state, and the next decision is taken against that state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import commands as cmd
from domain import decide
from domain import events as ev
from domain.chain import GENESIS, ChainHead, Draft, Recorded, chain, check_chain
from domain.complaint import Complaint, FoldError, evolve, fold
from domain.intake import ComplaintIntake
from domain.policies.remedies import Catalogue
from domain.vocabulary import (
    ChurnCategory,
    CustomerChoice,
    DeadlineKind,
    Outcome,
    RootCause,
    Rung,
    Stage,
    Verdict,
)
from tests.unit.samples import INTAKE

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ACK, ASSESSMENT, FINAL = DeadlineKind.acknowledgement, DeadlineKind.assessment, DeadlineKind.final_response

def intake(**changes: Any) -> ComplaintIntake:
    return ComplaintIntake.model_validate({**INTAKE, **changes})


def deadline(kind: DeadlineKind, days: float, *, extended_to: float | None = None,
             start: datetime = NOW) -> ev.Deadline:
    """A deadline ``days`` after ``start``, warned a day before; optionally extendable once."""
    due_at = start + timedelta(days=days)
    extension = None
    if extended_to is not None:
        extension = ev.Extension(due_at=start + timedelta(days=extended_to),
                                 warn_at=start + timedelta(days=extended_to - 1), rule="test: extended once")
    return ev.Deadline(kind=kind, due_at=due_at, warn_at=due_at - timedelta(days=1), rule=f"test: {days} days",
                       extension=extension)


SCHEDULE = decide.SlaSchedule("test", "test calendar", [
    deadline(ACK, 1), deadline(ASSESSMENT, 5), deadline(FINAL, 10, extended_to=20)])


def types(events: list[ev.Event]) -> list[str]:
    return [type(e).__name__ for e in events]


class Story:
    """A complaint driven through decide, chain and fold, as the workflow does it."""

    def __init__(self, schedule: decide.SlaSchedule | None = SCHEDULE, **changes: Any) -> None:
        self.intake = intake(**changes)
        self.now = NOW
        self.state: Complaint | None = None
        self.records: list[Recorded] = []
        self.received = self.record(decide.receive(self.intake, NOW, schedule))

    @property
    def s(self) -> Complaint:
        assert self.state is not None
        return self.state

    def record(self, events: list[ev.Event], actor: str = "system") -> list[str]:
        head = self.state.head if self.state else ChainHead()
        records = chain(head, self.intake.complaint_id, self.now, [Draft.of(e, actor) for e in events])
        self.state = fold(records, self.state)
        self.records += records
        return [r.type for r in records]

    def do(self, command: cmd.Command) -> list[str]:
        decision = {
            cmd.Assess: self._assess, cmd.ChooseRemedy: decide.choose_remedy, cmd.ChooseOption: decide.choose_option,
            cmd.RecordFollowUp: decide.record_follow_up, cmd.MoveOffline: decide.move_offline,
            cmd.Withdraw: decide.withdraw, cmd.ExtendDeadline: decide.extend_deadline,
            cmd.RecordChurn: decide.record_churn, cmd.Close: decide.close, cmd.LogMessage: decide.log_message,
            cmd.Escalate: decide.escalate, cmd.ApologiseForConduct: decide.apologise_for_conduct,
        }[type(command)]
        return self.record(decision(self.s, command, self.now), command.by or "agent:ana")  # type: ignore[operator]

    def _assess(self, state: Complaint, command: cmd.Assess, now: datetime) -> list[ev.Event]:
        return decide.assess(state, command, now, quote(state, command))

    def tick(self, now: datetime) -> list[str]:
        """The clock: whatever is due at ``now``, recorded at ``now``."""
        self.now = now
        return self.record(decide.due(self.s, now))

    def fulfil(self) -> None:
        self.record(decide.remedy_fulfilled(self.s, "RM-1"))
        self.follow_up()

    def follow_up(self) -> None:
        self.record(decide.schedule_follow_up(self.s, self.now + timedelta(days=3), self.now + timedelta(days=8)))


def quote(state: Complaint, command: cmd.Assess) -> tuple[list[ev.RemedyOption], str] | None:
    if command.verdict is Verdict.invalid:
        return None
    return Catalogue().quote(kinds=command.remedies, default=command.default_remedy,
                             subject_kind=state.subject_kind, subject_title=state.subject_title,
                             value=state.subject_value, severity=state.severity, jurisdiction=state.jurisdiction)


VALID = cmd.Assess(verdict="valid", root_cause="third_party", findings="The courier held the parcel.")
PARTIAL = cmd.Assess(verdict="partially_valid", root_cause="product", findings="Late, but outside the promise.",
                     sop_reference="Delivery SOP 4.2")
INVALID = cmd.Assess(verdict="invalid", root_cause="customer_misunderstanding", findings="The rules were followed.",
                     sop_reference="Delivery SOP 4.2")
EXTEND = cmd.ExtendDeadline(reason="Waiting for the courier's investigation.",
                            notice="We need ten more working days to finish looking into this.")


def refusal(state: Complaint, command: cmd.Command, now: datetime = NOW) -> decide.Refused:
    with pytest.raises(decide.Refused) as refused:
        decide.check(state, command, now)
    assert str(refused.value) == f"refused at stage {refused.value.stage.value}: {refused.value.reason}"
    return refused.value


# --- receiving --------------------------------------------------------------------------------------------------


def test_a_social_complaint_is_acknowledged_and_asked_to_move_to_email() -> None:
    story = Story()
    assert story.received == ["ComplaintReceived", "SlaDeadlinesSet", "ComplaintAcknowledged", "ContactMoveRequested"]
    moved = ev.parse_event("ContactMoveRequested", 1, story.records[-1].payload)
    assert isinstance(moved, ev.ContactMoveRequested)
    assert (moved.from_rung, moved.to_rung) == (Rung.public, Rung.email) and "email" in moved.text
    assert (story.s.stage, story.s.rung, story.s.requested_rung) == (Stage.awaiting_assessment, Rung.public, Rung.email)


def test_a_received_complaint_is_acknowledged_at_once_and_in_time() -> None:
    story = Story()
    acknowledgement = story.s.deadline(ACK)
    assert acknowledgement is not None and acknowledgement.met_at == NOW and acknowledgement.met_in_time is True
    assert story.s.acknowledged_at == NOW and story.s.received_at == NOW and story.s.policy == "test"
    assert [d.pending for d in story.s.deadlines] == [False, True, True]


def test_the_acknowledgement_tells_the_customer_when_to_expect_the_answer() -> None:
    events = decide.receive(intake(), NOW, SCHEDULE)
    [acknowledged] = [e for e in events if isinstance(e, ev.ComplaintAcknowledged)]
    assert "C-1001" in acknowledged.text and "'Late delivery'" in acknowledged.text
    assert "We will respond by 04 December 2026." in acknowledged.text


def test_without_a_schedule_there_are_no_deadlines_and_no_promised_date() -> None:
    story = Story(schedule=None)
    assert story.received == ["ComplaintReceived", "ComplaintAcknowledged", "ContactMoveRequested"]
    assert story.s.deadlines == [] and story.s.policy is None
    assert "respond by" not in decide.receive(intake(), NOW, None)[1].text  # type: ignore[attr-defined]


@pytest.mark.parametrize("channel", ["email", "web"])
def test_an_email_complaint_is_offered_a_call(channel: str) -> None:
    story = Story(channel=channel)
    assert story.received[-1] == "ContactMoveRequested"
    assert (story.s.rung, story.s.requested_rung) == (Rung.email, Rung.phone)


@pytest.mark.parametrize(("channel", "rung"), [("phone", Rung.phone), ("in_person", Rung.meeting)])
def test_a_phone_or_face_to_face_complaint_is_asked_nothing(channel: str, rung: Rung) -> None:
    story = Story(channel=channel)
    assert story.received == ["ComplaintReceived", "SlaDeadlinesSet", "ComplaintAcknowledged"]
    assert (story.s.rung, story.s.requested_rung) == (rung, None)


def test_a_backdated_receipt_past_its_acknowledgement_deadline_is_breached_and_escalated_before_it_is_acknowledged(
) -> None:
    received = NOW - timedelta(days=3)  # a letter opened days ago, typed in today
    schedule = decide.SlaSchedule("test", "test calendar", [
        deadline(ACK, 1, start=received), deadline(ASSESSMENT, 5, start=received), deadline(FINAL, 10, start=received)])
    story = Story(schedule=schedule, received_at=received.isoformat())
    assert story.received == ["ComplaintReceived", "SlaDeadlinesSet", "SlaBreached", "ComplaintEscalated",
                              "ComplaintAcknowledged", "ContactMoveRequested"]
    breach = ev.parse_event("SlaBreached", 1, story.records[2].payload)
    assert breach == ev.SlaBreached(kind=ACK, due_at=received + timedelta(days=1))
    acknowledgement = story.s.deadline(ACK)
    assert acknowledgement is not None and acknowledgement.breached and acknowledgement.met_in_time is False
    assert story.s.received_at == received and story.s.sla_breached
    # Escalated for a supervisor's attention, not handed over: the agent still assesses.
    assert [e.to for e in story.s.escalations] == ["supervisor"] and story.s.stage is Stage.awaiting_assessment


def test_a_backdated_receipt_still_within_its_acknowledgement_deadline_is_not_breached() -> None:
    received = NOW - timedelta(hours=12)
    schedule = decide.SlaSchedule("test", "t", [deadline(ACK, 1, start=received)])
    story = Story(schedule=schedule, received_at=received.isoformat())
    assert "SlaBreached" not in story.received and not story.s.sla_breached


# --- the contact ladder ---------------------------------------------------------------------------------------


def test_moving_to_email_is_recorded_and_a_call_is_offered_next() -> None:
    story = Story()
    assert story.do(cmd.MoveOffline(rung="email", detail="siti@example.com")) == ["ContactMovedOffline",
                                                                                 "ContactMoveRequested"]
    assert (story.s.rung, story.s.requested_rung) == (Rung.email, Rung.phone)


def test_a_meeting_is_booked_with_its_time() -> None:
    story = Story()
    at = NOW + timedelta(days=2)
    assert story.do(cmd.MoveOffline(rung="meeting", detail="Branch office", meeting_at=at)) == [
        "ContactMovedOffline", "MeetingScheduled"]
    assert (story.s.rung, story.s.meeting_at) == (Rung.meeting, at)


def test_moving_down_or_sideways_on_the_ladder_is_refused_naming_the_stage() -> None:
    story = Story()
    story.do(cmd.MoveOffline(rung="phone", detail="+62 812 555 0101"))
    for command in (cmd.MoveOffline(rung="email", detail="s@example.com"),
                    cmd.MoveOffline(rung="phone", detail="+62 812 555 0102")):
        refused = refusal(story.s, command)
        assert refused.stage is Stage.awaiting_assessment
        assert refused.reason.startswith("the complaint is already on phone") and "not a step up" in refused.reason


@pytest.mark.parametrize("offset", [timedelta(hours=-1), timedelta(0)])
def test_a_meeting_in_the_past_is_refused(offset: timedelta) -> None:
    refused = refusal(Story().s, cmd.MoveOffline(rung="meeting", detail="Branch", meeting_at=NOW + offset))
    assert (refused.stage, refused.reason) == (Stage.awaiting_assessment, "meeting_at is in the past")


def test_a_message_is_kept_with_when_it_was_said() -> None:
    story = Story()
    said = NOW - timedelta(hours=2)
    assert story.do(cmd.LogMessage(sender="customer", channel="email", text="Still nothing.", at=said)) == [
        "MessageLogged"]
    assert ev.parse_event("MessageLogged", 1, story.records[-1].payload).at == said  # type: ignore[attr-defined]
    assert story.s.messages == 1


def test_a_message_from_the_future_is_refused_beyond_clock_skew() -> None:
    state = Story().s
    decide.check(state, cmd.LogMessage(sender="agent", channel="email", text="t", at=NOW + decide.CLOCK_SKEW), NOW)
    refused = refusal(state, cmd.LogMessage(sender="agent", channel="email", text="t",
                                            at=NOW + decide.CLOCK_SKEW + timedelta(seconds=1)))
    assert refused.reason == "the message's time is in the future"


# --- assessment and the response ------------------------------------------------------------------------------


def test_a_valid_complaint_gets_an_apology_and_equivalent_remedies() -> None:
    story = Story()
    assert story.do(VALID) == ["ComplaintAssessed", "ApologyIssued", "RemedyOffered"]
    s = story.s
    assert (s.stage, s.verdict, s.root_cause, s.apologised, s.explained) == (
        Stage.awaiting_remedy_choice, Verdict.valid, RootCause.third_party, True, False)
    assert s.offer is not None and len(s.offer.options) >= 2 and s.offer.expires_at == NOW + timedelta(days=7)
    assert s.offer.option(s.offer.default_option) is not None


def test_the_response_meets_the_assessment_and_final_response_deadlines() -> None:
    story = Story()
    story.do(VALID)
    assert all(d.met_in_time for d in story.s.deadlines)
    assert story.s.responded_at == NOW and story.s.assessed_at == NOW


def test_a_partially_valid_complaint_gets_an_apology_an_explanation_and_remedies_in_that_order() -> None:
    story = Story()
    assert story.do(PARTIAL) == ["ComplaintAssessed", "ApologyIssued", "ExplanationGiven", "RemedyOffered"]
    assert story.s.apologised and story.s.explained and story.s.stage is Stage.awaiting_remedy_choice


def test_an_invalid_complaint_is_explained_and_offered_two_ways_forward_without_an_apology() -> None:
    story = Story()
    events = story.do(INVALID)
    assert events == ["ComplaintAssessed", "ExplanationGiven", "OptionsOffered"]
    assert "ApologyIssued" not in events and not story.s.apologised and story.s.offer is None
    offer = story.s.choice_offer
    assert offer is not None and offer.options == [CustomerChoice.stay, CustomerChoice.leave]
    assert offer.default_option is CustomerChoice.stay and story.s.stage is Stage.awaiting_option_choice


def test_an_apology_for_conduct_admits_nothing_about_an_invalid_complaint() -> None:
    story = Story()
    story.do(INVALID)
    assert story.do(cmd.ApologiseForConduct(text="We are sorry our agent was curt.")) == ["ConductApologyIssued"]
    assert (story.s.apologised, story.s.conduct_apologies, story.s.verdict) == (False, 1, Verdict.invalid)


def test_own_words_replace_the_standard_apology_and_explanation() -> None:
    state = Story().s
    events = decide.assess(state, cmd.Assess(verdict="partially_valid", root_cause="service", findings="f",
                                             apology="Sorry for the wait.", sop_reference="SOP 9",
                                             explanation="Deliveries to islands take five days."),
                           NOW, quote(state, VALID))
    assert [e.text for e in events if isinstance(e, ev.ApologyIssued | ev.ExplanationGiven)] == [
        "Sorry for the wait.", "Deliveries to islands take five days."]


def test_a_valid_verdict_cannot_be_decided_without_a_quote() -> None:
    with pytest.raises(ValueError, match="needs a remedy quote"):
        decide.assess(Story().s, VALID, NOW, None)


def test_assessing_twice_is_refused_naming_the_stage() -> None:
    story = Story()
    story.do(VALID)
    refused = refusal(story.s, VALID)
    assert refused.stage is Stage.awaiting_remedy_choice
    assert refused.reason == "Assess is accepted only at: awaiting_assessment"
    with pytest.raises(decide.Refused):  # the decision checks too, not only the validator
        decide.assess(story.s, VALID, NOW, quote(story.s, VALID))


def test_choosing_a_remedy_that_was_not_offered_is_refused() -> None:
    story = Story()
    story.do(VALID)
    refused = refusal(story.s, cmd.ChooseRemedy(option_id="Z"))
    assert (refused.stage, refused.reason) == (Stage.awaiting_remedy_choice,
                                               "option 'Z' was not offered (offered: A, B, C)")


def test_choosing_a_remedy_before_one_is_offered_is_refused() -> None:
    assert refusal(Story().s, cmd.ChooseRemedy(option_id="A")).stage is Stage.awaiting_assessment


# --- fulfilment, follow-up and closure -----------------------------------------------------------------------


def test_a_chosen_remedy_is_fulfilled_then_followed_up() -> None:
    story = Story()
    story.do(VALID)
    assert story.do(cmd.ChooseRemedy(option_id="B")) == ["RemedyChosen"]
    assert (story.s.stage, story.s.remedy_option) == (Stage.fulfilling_remedy, "B")
    work = decide.next_work(story.s)
    assert isinstance(work, decide.FulfilRemedy) and work.option.id == "B"
    assert story.record(decide.remedy_fulfilled(story.s, "RM-1")) == ["RemedyFulfilled"]
    assert story.s.remedy_reference == "RM-1" and decide.next_work(story.s) == decide.ScheduleFollowUp()
    assert story.record(decide.schedule_follow_up(story.s, NOW + timedelta(days=3), NOW + timedelta(days=8))) == [
        "FollowUpScheduled"]
    assert story.s.stage is Stage.awaiting_follow_up and decide.next_work(story.s) is None


def test_nothing_is_to_be_done_by_the_system_while_people_decide() -> None:
    story = Story()
    assert decide.next_work(story.s) is None
    story.do(VALID)
    assert decide.next_work(story.s) is None


def test_a_remedy_that_cannot_be_fulfilled_goes_to_a_supervisor() -> None:
    story = Story()
    story.do(VALID)
    story.do(cmd.ChooseRemedy(option_id="A"))
    assert story.record(decide.remedy_failed(story.s, "provider refused")) == ["RemedyFulfilmentFailed",
                                                                               "ComplaintEscalated"]
    assert story.s.stage is Stage.escalated and story.s.remedy_failed and decide.next_work(story.s) is None
    assert story.do(cmd.Close(outcome="resolved", note="Refunded by hand.")) == ["ComplaintClosed"]
    assert story.s.outcome is Outcome.resolved


def test_a_customer_who_stays_under_the_rules_is_followed_up() -> None:
    story = Story()
    story.do(INVALID)
    assert story.do(cmd.ChooseOption(option="stay")) == ["OptionChosen"]
    assert decide.next_work(story.s) == decide.ScheduleFollowUp()


@pytest.mark.parametrize("satisfaction", [3, 4, 5])
def test_a_satisfied_customer_closes_the_complaint_as_resolved(satisfaction: int) -> None:
    story = Story()
    story.do(VALID)
    story.do(cmd.ChooseRemedy(option_id="A"))
    story.fulfil()
    assert story.do(cmd.RecordFollowUp(satisfaction=satisfaction)) == ["FollowUpRecorded", "ComplaintClosed"]
    assert (story.s.stage, story.s.outcome, story.s.satisfaction, story.s.is_open) == (
        Stage.closed, Outcome.resolved, satisfaction, False)
    assert story.s.closed_at == NOW and story.s.root_cause is RootCause.third_party


@pytest.mark.parametrize("satisfaction", [1, 2])
def test_an_unsatisfied_customer_sends_the_complaint_back_to_assessment(satisfaction: int) -> None:
    story = Story()
    story.do(VALID)
    story.do(cmd.ChooseRemedy(option_id="A"))
    story.fulfil()
    assert story.do(cmd.RecordFollowUp(satisfaction=satisfaction)) == ["FollowUpRecorded", "ComplaintReopened"]
    s = story.s
    assert (s.stage, s.reopen_count, s.satisfaction) == (Stage.awaiting_assessment, 1, satisfaction)
    assert (s.offer, s.remedy_option, s.remedy_reference, s.follow_up) == (None, None, None, None)
    assert story.do(VALID) == ["ComplaintAssessed", "ApologyIssued", "RemedyOffered"]
    assert story.s.assessments == 2


def test_after_the_last_reopening_an_unsatisfied_customer_goes_to_a_supervisor() -> None:
    story = Story()
    for reopened in range(1, decide.MAX_REOPENS + 1):
        story.do(INVALID)
        story.do(cmd.ChooseOption(option="stay"))
        story.follow_up()
        assert story.do(cmd.RecordFollowUp(satisfaction=2)) == ["FollowUpRecorded", "ComplaintReopened"]
        assert story.s.reopen_count == reopened
    story.do(INVALID)
    story.do(cmd.ChooseOption(option="stay"))
    story.follow_up()
    assert story.do(cmd.RecordFollowUp(satisfaction=1)) == ["FollowUpRecorded", "ComplaintEscalated"]
    escalated = ev.parse_event("ComplaintEscalated", 1, story.records[-1].payload)
    assert isinstance(escalated, ev.ComplaintEscalated) and escalated.awaits_supervisor
    assert escalated.to == "supervisor" and f"after {decide.MAX_REOPENS} reopenings" in escalated.reason
    assert story.s.stage is Stage.escalated and story.s.reopen_count == decide.MAX_REOPENS == 2
    assert story.do(cmd.Close(outcome="unresolved", note="Explained by phone; the customer disagrees.")) == [
        "ComplaintClosed"]
    assert (story.s.outcome, story.s.is_open) == (Outcome.unresolved, False)


def test_a_follow_up_recorded_at_the_wrong_stage_is_refused() -> None:
    refused = refusal(Story().s, cmd.RecordFollowUp(satisfaction=5))
    assert refused.stage is Stage.awaiting_assessment
    assert refused.reason == "RecordFollowUp is accepted only at: awaiting_follow_up"


def test_only_an_escalated_complaint_is_closed_by_a_supervisor() -> None:
    refused = refusal(Story().s, cmd.Close(outcome="resolved", note="n"))
    assert refused.reason == "Close is accepted only at: escalated"


def test_an_escalation_by_an_agent_hands_the_complaint_to_a_supervisor_who_closes_it() -> None:
    story = Story()
    assert story.do(cmd.Escalate(to="supervisor:budi", reason="VIP customer.")) == ["ComplaintEscalated"]
    assert story.s.stage is Stage.escalated and [e.to for e in story.s.escalations] == ["supervisor:budi"]
    assert story.do(cmd.Close(outcome="resolved", note="Called the customer.")) == ["ComplaintClosed"]
    assert story.s.stage is Stage.closed


def test_no_escalation_while_a_remedy_is_being_fulfilled_or_once_escalated() -> None:
    story = Story()
    story.do(cmd.Escalate(to="supervisor", reason="VIP customer."))
    with pytest.raises(decide.Refused, match="Escalate is accepted only at"):
        decide.check(story.s, cmd.Escalate(to="supervisor", reason="again"), story.now)


def test_a_decision_past_its_time_is_refused_by_the_clock_before_the_timer_records_it() -> None:
    story = Story()
    story.do(VALID)
    assert story.s.offer is not None
    late = story.s.offer.expires_at
    choose = cmd.ChooseRemedy(option_id="A")
    decide.check(story.s, choose, late)  # by the flags alone it still fits: the default is not recorded yet
    with pytest.raises(decide.Refused, match=r"the offer expired at .* its default .* applies"):
        decide.check(story.s, choose, late, clock=True)
    decide.check(story.s, choose, late - timedelta(microseconds=1), clock=True)


def test_outside_text_is_bounded_and_printable() -> None:
    assert decide.outside_text("refund\x00 gateway\n\ttimed   out") == "refund gateway timed out"
    assert len(decide.outside_text("x" * 10_000)) == decide.MAX_OUTSIDE_TEXT


# --- leaving, churn and withdrawal ------------------------------------------------------------------------------


def test_leaving_without_penalty_records_churn_with_its_cause_and_closes() -> None:
    story = Story()
    story.do(INVALID)
    assert story.do(cmd.ChooseOption(option="leave")) == ["OptionChosen", "CustomerChurned", "ComplaintClosed"]
    assert (story.s.churn, story.s.outcome, story.s.choice) == (ChurnCategory.service, Outcome.customer_left,
                                                                CustomerChoice.leave)


def test_churn_after_a_product_fault_teaches_product_and_before_assessment_the_subject_decides() -> None:
    story = Story()
    story.do(PARTIAL)  # root cause: product
    story.do(cmd.RecordChurn(reason="Bought elsewhere."))
    assert story.s.churn is ChurnCategory.product
    early = Story(subject={"kind": "product", "title": "Kettle"})
    early.do(cmd.RecordChurn(reason="Bought elsewhere."))
    assert early.s.churn is ChurnCategory.product


def test_churn_is_recorded_once() -> None:
    story = Story()
    assert story.do(cmd.RecordChurn(reason="Cancelled the account.")) == ["CustomerChurned", "ComplaintClosed"]
    refused = refusal(story.s, cmd.RecordChurn(reason="Again."))
    assert refused.stage is Stage.closed and refused.reason.startswith("RecordChurn is accepted only at:")


def test_choosing_twice_is_refused() -> None:
    story = Story()
    story.do(INVALID)
    story.do(cmd.ChooseOption(option="stay"))
    assert refusal(story.s, cmd.ChooseOption(option="leave")).reason == "the customer already chose stay"


def test_a_complaint_can_be_withdrawn_while_it_waits() -> None:
    story = Story()
    assert story.do(cmd.Withdraw(reason="Parcel arrived.")) == ["ComplaintWithdrawn", "ComplaintClosed"]
    assert (story.s.outcome, story.s.stage) == (Outcome.withdrawn, Stage.closed)


def test_a_promise_in_flight_completes_before_anyone_walks_away() -> None:
    story = Story()
    story.do(VALID)
    story.do(cmd.ChooseRemedy(option_id="A"))
    for command in (cmd.Withdraw(), cmd.RecordChurn(reason="Leaving.")):
        refused = refusal(story.s, command)
        assert refused.stage is Stage.fulfilling_remedy and "fulfilling_remedy" not in refused.reason


def test_a_closed_complaint_refuses_every_command() -> None:
    story = Story()
    story.do(cmd.Withdraw())
    for command in (VALID, cmd.Withdraw(), EXTEND, cmd.LogMessage(sender="agent", channel="email", text="t"),
                    cmd.Escalate(to="x", reason="r"), cmd.MoveOffline(rung="phone", detail="+62 812 555 0101")):
        assert refusal(story.s, command).stage is Stage.closed


# --- deadlines: extension ---------------------------------------------------------------------------------------


def test_an_extension_moves_the_final_response_to_the_date_its_rule_allows() -> None:
    story = Story()
    assert story.do(EXTEND) == ["SlaExtended"]
    final = story.s.deadline(FINAL)
    assert final is not None and final.extended and not final.warned
    assert (final.due_at, final.warn_at) == (NOW + timedelta(days=20), NOW + timedelta(days=19))
    extended = ev.parse_event("SlaExtended", 1, story.records[-1].payload)
    assert extended.previous_due_at == NOW + timedelta(days=10)  # type: ignore[attr-defined]


def test_an_extension_is_refused_where_the_rule_allows_none() -> None:
    refused = refusal(Story().s, cmd.ExtendDeadline(kind="assessment", reason="r", notice="n"))
    assert refused.reason == "the assessment deadline's rule allows no extension (test: 5 days)"


def test_an_extension_is_refused_where_there_is_no_such_deadline() -> None:
    assert refusal(Story(schedule=None).s, EXTEND).reason == "there is no final_response deadline"


def test_an_extension_is_given_only_once() -> None:
    story = Story()
    story.do(EXTEND)
    assert refusal(story.s, EXTEND).reason == "the final_response deadline was already extended once"


def test_an_extension_is_refused_once_the_deadline_has_passed() -> None:
    story = Story()
    story.tick(NOW + timedelta(days=10))
    assert story.s.deadline(FINAL).breached  # type: ignore[union-attr]
    refused = refusal(story.s, EXTEND, story.now)
    assert refused.reason == "the final_response deadline has passed; an extension is given before it runs out"


def test_an_extension_is_refused_once_the_deadline_was_met() -> None:
    story = Story()
    story.do(INVALID)
    assert refusal(story.s, EXTEND).reason == "the final_response deadline was already met"


# --- the clock -------------------------------------------------------------------------------------------------


def test_the_clock_next_wakes_at_the_earliest_warning() -> None:
    state = Story().s
    assert decide.next_wakeup(state) == NOW + timedelta(days=4)  # the assessment's warning
    assert decide.due(state, NOW + timedelta(days=4) - timedelta(microseconds=1)) == []


def test_the_clock_warns_then_breaches_then_escalates() -> None:
    story = Story()
    assert story.tick(NOW + timedelta(days=4)) == ["SlaWarningRaised"]
    assessment = story.s.deadline(ASSESSMENT)
    assert assessment is not None and assessment.warned and not assessment.breached
    assert decide.next_wakeup(story.s) == NOW + timedelta(days=5)  # warned: now its due time
    assert decide.due(story.s, NOW + timedelta(days=4, hours=1)) == []  # warned once only
    assert story.tick(NOW + timedelta(days=5)) == ["SlaBreached", "ComplaintEscalated"]
    assert story.s.sla_breached and story.s.stage is Stage.awaiting_assessment
    assert decide.next_wakeup(story.s) == NOW + timedelta(days=9)  # the final response's warning
    assert story.s.next_deadline is not None and story.s.next_deadline.kind is FINAL


def test_a_late_clock_breaches_without_warning_and_warns_what_is_only_near() -> None:
    events = decide.due(Story().s, NOW + timedelta(days=9))
    assert types(events) == ["SlaBreached", "ComplaintEscalated", "SlaWarningRaised"]
    assert [e.kind for e in events if isinstance(e, ev.SlaBreached | ev.SlaWarningRaised)] == [
        ASSESSMENT, FINAL]


def test_a_breached_deadline_is_not_breached_again() -> None:
    story = Story()
    story.tick(NOW + timedelta(days=5))
    assert decide.due(story.s, NOW + timedelta(days=6)) == []


def test_an_unanswered_offer_applies_its_default_remedy() -> None:
    story = Story()
    story.do(VALID)
    assert story.s.offer is not None
    expiry, default = story.s.offer.expires_at, story.s.offer.default_option
    assert decide.next_wakeup(story.s) == expiry
    assert decide.due(story.s, expiry - timedelta(seconds=1)) == []
    assert decide.due(story.s, expiry) == [ev.RemedyDefaulted(option_id=default)]
    story.tick(expiry)
    assert (story.s.stage, story.s.remedy_option, story.s.remedy_defaulted) == (Stage.fulfilling_remedy, default, True)
    work = decide.next_work(story.s)
    assert isinstance(work, decide.FulfilRemedy) and work.option.id == default


def test_an_unanswered_choice_keeps_the_customer_under_the_agreed_rules() -> None:
    story = Story()
    story.do(INVALID)
    assert story.s.choice_offer is not None
    expiry = story.s.choice_offer.expires_at
    assert decide.next_wakeup(story.s) == expiry
    assert decide.due(story.s, expiry) == [ev.OptionDefaulted(option=CustomerChoice.stay)]
    story.tick(expiry)
    assert story.s.choice is CustomerChoice.stay and decide.next_work(story.s) == decide.ScheduleFollowUp()
    assert decide.next_wakeup(story.s) is None and decide.due(story.s, expiry + timedelta(days=30)) == []


def test_an_unanswered_follow_up_closes_the_complaint_unconfirmed() -> None:
    story = Story()
    story.do(VALID)
    story.do(cmd.ChooseRemedy(option_id="A"))
    story.fulfil()
    assert story.s.follow_up is not None
    answer_by = story.s.follow_up.answer_by
    assert decide.next_wakeup(story.s) == answer_by
    assert decide.due(story.s, answer_by - timedelta(seconds=1)) == []
    assert story.tick(answer_by) == ["ComplaintClosed"]
    assert (story.s.outcome, story.s.satisfaction, story.s.closed_at) == (Outcome.unconfirmed, None, answer_by)


def test_a_closed_complaint_has_nothing_due_and_no_wakeup() -> None:
    story = Story()
    story.do(cmd.Withdraw())
    assert decide.due(story.s, NOW + timedelta(days=365)) == [] and decide.next_wakeup(story.s) is None


# --- the fold ---------------------------------------------------------------------------------------------------


def full_story() -> Story:
    story = Story()
    story.do(cmd.MoveOffline(rung="email", detail="siti@example.com"))
    story.do(cmd.LogMessage(sender="customer", channel="email", text="Where is my parcel?"))
    story.tick(NOW + timedelta(days=4))
    story.do(VALID)
    story.do(cmd.ChooseRemedy(option_id="C"))
    story.fulfil()
    story.do(cmd.RecordFollowUp(satisfaction=4, comment="Thanks."))
    return story


def test_the_log_read_back_folds_to_the_workflows_state_field_for_field() -> None:
    story = full_story()
    read_back = [Recorded.model_validate_json(r.model_dump_json()) for r in story.records]
    assert fold(read_back) == story.s
    assert check_chain("C-1001", read_back) == (story.s.head, [])
    assert story.s.head.sequence == len(story.records)


def test_folding_in_pieces_reaches_the_same_state_as_folding_at_once() -> None:
    story = full_story()
    middle = len(story.records) // 2
    assert fold(story.records[middle:], fold(story.records[:middle])) == fold(story.records) == story.s


def test_each_step_of_the_fold_is_what_pydantics_model_copy_gives() -> None:
    """The fold copies a state as ``model_copy(update=)`` does, without its generic copying: same fields, same
    fields marked set, a new object each step (the one before it unchanged), and it serialises the same."""
    from domain.complaint import _changed, evolve
    from domain.events import replaced

    state = None
    for record in full_story().records:
        before = state
        state = evolve(state, record)
        if before is None:
            continue
        changes = {k: v for k, v in state.__dict__.items() if before.__dict__.get(k) is not v}
        copied = before.model_copy(update=changes)
        assert _changed(before, changes) == copied == state and state is not before
        assert state.model_fields_set == copied.model_fields_set
        assert state.model_dump_json() == copied.model_dump_json()
        for deadline in state.deadlines:  # and the deadlines' steps (meet, with_deadline) copy as model_copy does
            change = {"met_at": record.occurred_at, "breached": True}
            assert replaced(deadline, change) == deadline.model_copy(update=change)
            assert replaced(deadline, change).model_fields_set == deadline.model_copy(update=change).model_fields_set


def test_folding_in_place_gives_at_every_step_what_the_copying_fold_gives_and_changes_nothing_handed_out() -> None:
    """The report's fold (Folding) changes its own states in place; what it hands out is what ``evolve`` gives,
    field for field, and is left alone as folding goes on; a state it adopts is not changed by folding it."""
    from domain.complaint import Folding, evolve

    records = full_story().records
    folding, state, handed = Folding(), None, []
    for record in records:
        state = evolve(state, record)
        folding.add(record.row())
        out = folding.state(record.complaint_id)
        assert out == state and out.model_fields_set == state.model_fields_set
        assert out.model_dump_json() == state.model_dump_json()
        handed.append((out, out.model_dump_json()))
    assert all(out.model_dump_json() == dumped for out, dumped in handed)

    middle = fold(records[: len(records) // 2])
    dumped = middle.model_dump_json()
    resumed = Folding()
    resumed.adopt(middle)
    for record in records[len(records) // 2:]:
        resumed.add(record.row())
    assert resumed.state("C-1001") == state and middle.model_dump_json() == dumped
    resumed.drop("C-1001")
    assert "C-1001" not in resumed and len(resumed) == 0


@pytest.mark.parametrize("broken", ["another complaint", "a gap", "a broken link", "applied twice"])
def test_folding_in_place_refuses_what_the_copying_fold_refuses(broken: str) -> None:
    from domain.complaint import Folding, evolve

    story = Story()
    state = story.s
    record = {"another complaint": another(state, WITHDRAWN, complaint_id="C-OTHER"),
              "a gap": another(state, WITHDRAWN, head=state.head.model_copy(update={"sequence": 5})),
              "a broken link": another(state, WITHDRAWN, head=ChainHead(sequence=4, hash="f" * 64)),
              "applied twice": story.records[-1]}[broken]
    folding = Folding()
    for earlier in story.records:
        folding.add(earlier.row())
    with pytest.raises(FoldError) as copying:
        evolve(state, record)
    if broken == "another complaint":  # Folding keys states by complaint: it is another one's first row
        with pytest.raises(FoldError, match="starts with ComplaintReceived #1"):
            folding.add(record.row())
    else:
        with pytest.raises(FoldError) as in_place:
            folding.add(record.row())
        assert str(in_place.value) == str(copying.value)
    assert folding.state("C-1001") == state


def test_the_folded_state_holds_no_personal_data() -> None:
    dumped = full_story().s.model_dump_json()
    for personal in ("Siti", "siti", "Rahmawati", "Pesanan", "courier", "Where is my parcel", "Thanks."):
        assert personal not in dumped


def another(state: Complaint, event: ev.Event, *, complaint_id: str | None = None,
            head: ChainHead | None = None) -> Recorded:
    [record] = chain(head or state.head, complaint_id or state.complaint_id, NOW, [Draft.of(event, "system")])
    return record


WITHDRAWN = ev.ComplaintWithdrawn(reason=None)


def test_a_fold_refuses_a_record_of_another_complaint() -> None:
    state = Story().s
    with pytest.raises(FoldError, match="record for C-OTHER applied to C-1001"):
        evolve(state, another(state, WITHDRAWN, complaint_id="C-OTHER"))


def test_a_fold_refuses_a_gap_in_the_sequence() -> None:
    state = Story().s
    skipping = another(state, WITHDRAWN, head=state.head.model_copy(update={"sequence": state.head.sequence + 1}))
    with pytest.raises(FoldError, match="C-1001: expected #5, got #6"):
        evolve(state, skipping)


def test_a_fold_refuses_a_record_applied_twice() -> None:
    story = Story()
    with pytest.raises(FoldError, match="expected #5, got #4"):
        evolve(story.s, story.records[-1])


def test_a_fold_refuses_a_broken_link() -> None:
    state = Story().s
    forged = another(state, WITHDRAWN, head=ChainHead(sequence=state.head.sequence, hash="f" * 64))
    with pytest.raises(FoldError, match="#5: prev_hash does not match the head"):
        evolve(state, forged)


def test_a_complaint_starts_with_its_receipt_at_sequence_one() -> None:
    with pytest.raises(FoldError, match="starts with ComplaintReceived #1"):
        fold(chain(ChainHead(), "C-1", NOW, [Draft.of(WITHDRAWN, "system")]))
    receipt = Story().records[0]
    with pytest.raises(FoldError, match="starts with ComplaintReceived #1"):
        evolve(None, receipt.model_copy(update={"sequence": 2}))


def test_a_second_receipt_cannot_follow_the_first() -> None:
    story = Story()
    received = ev.parse_event("ComplaintReceived", 1, story.records[0].payload)
    with pytest.raises(FoldError, match="ComplaintReceived cannot follow the first event"):
        evolve(story.s, another(story.s, received))


def test_a_fold_refuses_an_unknown_event_type() -> None:
    state = Story().s
    [unknown] = chain(state.head, state.complaint_id, NOW, [Draft(type="ComplaintTeleported", schema_version=1,
                                                                  actor="x", payload={})])
    with pytest.raises(ValueError, match="unknown event type 'ComplaintTeleported'"):
        evolve(state, unknown)


def test_a_fold_refuses_a_first_record_that_does_not_start_at_genesis() -> None:
    receipt = Story().records[0]
    assert receipt.prev_hash == GENESIS
    with pytest.raises(FoldError):
        evolve(None, receipt.model_copy(update={"prev_hash": "f" * 64}))
