"""Decisions as events, and state as their fold: the lifecycle's rules without any server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from domain import commands as cmd
from domain import decide
from domain import events as ev
from domain.chain import ChainHead, Draft, chain
from domain.complaint import Complaint, FoldError, evolve, fold
from domain.intake import ComplaintIntake
from domain.policies.remedies import Catalogue
from domain.vocabulary import CustomerChoice, DeadlineKind, Outcome, Rung, Stage

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def intake(example: str = "late-delivery.json", **changes: Any) -> ComplaintIntake:
    return ComplaintIntake.model_validate({**json.loads((EXAMPLES / example).read_text()), **changes})


def deadlines(ack: int = 1, assess: int = 5, final: int = 10) -> decide.SlaSchedule:
    def at(days: int) -> ev.Deadline:
        return ev.Deadline(kind=DeadlineKind.acknowledgement, due_at=NOW + timedelta(days=days),
                           warn_at=NOW + timedelta(days=days - 1), rule="test")

    final_deadline = at(final).model_copy(update={
        "kind": DeadlineKind.final_response,
        "extension": ev.Extension(due_at=NOW + timedelta(days=final + 10), warn_at=NOW + timedelta(days=final + 9),
                                  rule="test +10")})
    return decide.SlaSchedule("test", "none", [at(ack), at(assess).model_copy(
        update={"kind": DeadlineKind.assessment}), final_deadline])


class Story:
    """A complaint driven through decide, chain and fold, as the workflow does it."""

    def __init__(self, example: str = "late-delivery.json", **changes: Any) -> None:
        self.intake = intake(example, **changes)
        self.now = NOW
        self.state: Complaint | None = None
        self.types: list[str] = []
        self.record(decide.receive(self.intake, NOW, deadlines()))

    def record(self, events: list[ev.Event]) -> list[str]:
        head = self.state.head if self.state else ChainHead()
        records = chain(head, self.intake.complaint_id, self.now, [Draft.of(e, "system") for e in events])
        self.state = fold(records, self.state)
        self.types += [r.type for r in records]
        return [r.type for r in records]

    @property
    def s(self) -> Complaint:
        assert self.state is not None
        return self.state

    def do(self, command: cmd.Command) -> list[str]:
        decision = {cmd.Assess: self._assess, cmd.ChooseRemedy: decide.choose_remedy,
                    cmd.ChooseOption: decide.choose_option, cmd.RecordFollowUp: decide.record_follow_up,
                    cmd.MoveOffline: decide.move_offline, cmd.Withdraw: decide.withdraw,
                    cmd.ExtendDeadline: decide.extend_deadline, cmd.RecordChurn: decide.record_churn,
                    cmd.Close: decide.close, cmd.LogMessage: decide.log_message}[type(command)]
        return self.record(decision(self.s, command, self.now))  # type: ignore[operator]

    def _assess(self, state: Complaint, command: cmd.Assess, now: datetime) -> list[ev.Event]:
        quote = Catalogue().quote(kinds=command.remedies, default=command.default_remedy,
                                  subject_kind=state.subject_kind, subject_title=state.subject_title,
                                  value=state.subject_value, severity=state.severity, jurisdiction=state.jurisdiction)
        return decide.assess(state, command, now, quote if command.verdict.value != "invalid" else None)

    def fulfil(self) -> None:
        assert isinstance(decide.next_work(self.s), decide.FulfilRemedy)
        self.record(decide.remedy_fulfilled(self.s, "RM-1"))
        assert isinstance(decide.next_work(self.s), decide.ScheduleFollowUp)
        self.record(decide.schedule_follow_up(self.s, NOW + timedelta(days=3), NOW + timedelta(days=8)))


VALID = cmd.Assess(verdict="valid", root_cause="third_party", findings="Courier held it.")
INVALID = cmd.Assess(verdict="invalid", root_cause="customer_misunderstanding", findings="Rules followed.",
                     sop_reference="SOP 1")


def test_a_social_complaint_is_acknowledged_and_asked_to_move_to_email() -> None:
    story = Story()
    assert story.types == ["ComplaintReceived", "SlaDeadlinesSet", "ComplaintAcknowledged", "ContactMoveRequested"]
    assert (story.s.stage, story.s.rung, story.s.requested_rung) == (Stage.awaiting_assessment, Rung.public, Rung.email)
    assert story.s.deadline(DeadlineKind.acknowledgement).met_in_time  # type: ignore[union-attr]


def test_an_email_complaint_is_offered_a_call_and_a_phone_complaint_nothing() -> None:
    assert Story("faulty-kettle.json").s.requested_rung is Rung.phone
    assert Story("roaming-charges.json").types[-1] == "ComplaintAcknowledged"


def test_a_complaint_entered_after_its_acknowledgement_deadline_is_breached_at_once() -> None:
    late = intake(received_at=(NOW - timedelta(days=9)).isoformat())
    events = decide.receive(late, NOW, decide.SlaSchedule("t", "t", [ev.Deadline(
        kind=DeadlineKind.acknowledgement, due_at=NOW - timedelta(days=8), warn_at=NOW - timedelta(days=9),
        rule="t")]))
    assert [type(e).__name__ for e in events][2:5] == ["SlaBreached", "ComplaintEscalated", "ComplaintAcknowledged"]


def test_moving_up_the_ladder_and_never_down() -> None:
    story = Story()
    assert story.do(cmd.MoveOffline(rung="email", detail="s@example.com")) == ["ContactMovedOffline",
                                                                              "ContactMoveRequested"]
    with pytest.raises(decide.Refused, match="not a step up"):
        decide.check(story.s, cmd.MoveOffline(rung="email", detail="t@example.com"), NOW)
    with pytest.raises(decide.Refused, match="in the past"):
        decide.check(story.s, cmd.MoveOffline(rung="meeting", detail="Branch", meeting_at=NOW - timedelta(hours=1)),
                     NOW)
    assert story.do(cmd.MoveOffline(rung="meeting", detail="Branch", meeting_at=NOW + timedelta(days=2))) == [
        "ContactMovedOffline", "MeetingScheduled"]


def test_a_meeting_without_a_date_is_refused_by_the_command_itself() -> None:
    with pytest.raises(ValueError, match="meeting_at is required"):
        cmd.MoveOffline(rung="meeting", detail="Branch")


def test_a_valid_complaint_gets_a_short_apology_and_equivalent_remedies() -> None:
    story = Story()
    assert story.do(VALID) == ["ComplaintAssessed", "ApologyIssued", "RemedyOffered"]
    assert story.s.stage is Stage.awaiting_remedy_choice and len(story.s.offer.options) >= 2  # type: ignore[union-attr]
    assert story.s.deadline(DeadlineKind.final_response).met_in_time  # type: ignore[union-attr]


def test_an_invalid_complaint_is_explained_without_an_apology() -> None:
    story = Story()
    assert story.do(INVALID) == ["ComplaintAssessed", "ExplanationGiven", "OptionsOffered"]
    assert not story.s.apologised and story.s.stage is Stage.awaiting_option_choice


def test_a_partially_valid_complaint_gets_both() -> None:
    story = Story()
    partial = cmd.Assess(verdict="partially_valid", root_cause="product", findings="Both.", sop_reference="M 4")
    assert story.do(partial) == ["ComplaintAssessed", "ApologyIssued", "ExplanationGiven", "RemedyOffered"]


def test_assessing_twice_or_choosing_what_was_not_offered_is_refused_naming_the_stage() -> None:
    story = Story()
    story.do(VALID)
    with pytest.raises(decide.Refused, match="stage awaiting_remedy_choice"):
        decide.check(story.s, VALID, NOW)
    with pytest.raises(decide.Refused, match="option 'Z' was not offered"):
        decide.check(story.s, cmd.ChooseRemedy(option_id="Z"), NOW)


def test_a_chosen_remedy_is_fulfilled_then_followed_up_then_closed_when_satisfied() -> None:
    story = Story()
    story.do(VALID)
    story.do(cmd.ChooseRemedy(option_id="B"))
    assert story.s.stage is Stage.fulfilling_remedy
    with pytest.raises(decide.Refused):
        decide.check(story.s, cmd.Withdraw(), NOW)  # a promise in flight completes first
    story.fulfil()
    assert story.s.stage is Stage.awaiting_follow_up
    assert story.do(cmd.RecordFollowUp(satisfaction=4)) == ["FollowUpRecorded", "ComplaintClosed"]
    assert (story.s.outcome, story.s.satisfaction, story.s.is_open) == (Outcome.resolved, 4, False)


def test_an_unsatisfied_customer_reopens_twice_then_a_supervisor_takes_it() -> None:
    story = Story()
    for reopened in (1, 2):
        story.do(INVALID)
        story.do(cmd.ChooseOption(option="stay"))
        story.record(decide.schedule_follow_up(story.s, NOW, NOW + timedelta(days=5)))
        assert story.do(cmd.RecordFollowUp(satisfaction=2)) == ["FollowUpRecorded", "ComplaintReopened"]
        assert story.s.reopen_count == reopened and story.s.stage is Stage.awaiting_assessment
    story.do(INVALID)
    story.do(cmd.ChooseOption(option="stay"))
    story.record(decide.schedule_follow_up(story.s, NOW, NOW + timedelta(days=5)))
    assert story.do(cmd.RecordFollowUp(satisfaction=1)) == ["FollowUpRecorded", "ComplaintEscalated"]
    assert story.s.stage is Stage.escalated
    assert story.do(cmd.Close(outcome="unresolved", note="Explained by phone.")) == ["ComplaintClosed"]


def test_leaving_without_penalty_records_churn_with_its_cause() -> None:
    story = Story("gym-contract.json")
    story.do(INVALID)
    assert story.do(cmd.ChooseOption(option="leave")) == ["OptionChosen", "CustomerChurned", "ComplaintClosed"]
    assert story.s.churn is not None and story.s.churn.value == "service"
    assert story.s.outcome is Outcome.customer_left


def test_the_clock_warns_then_breaches_then_escalates() -> None:
    story = Story()
    warn = story.s.deadline(DeadlineKind.assessment).warn_at  # type: ignore[union-attr]
    assert decide.next_wakeup(story.s) == story.s.deadline(DeadlineKind.assessment).warn_at  # type: ignore[union-attr]
    assert [type(e).__name__ for e in decide.due(story.s, warn)] == ["SlaWarningRaised"]
    story.record(decide.due(story.s, warn))
    breached = [type(e).__name__ for e in decide.due(story.s, warn + timedelta(days=1))]
    assert breached == ["SlaBreached", "ComplaintEscalated"]


def test_an_extension_is_allowed_once_and_only_before_the_deadline_passes() -> None:
    story = Story()
    ask = cmd.ExtendDeadline(reason="Courier investigation.", notice="We need ten more working days.")
    assert story.do(ask) == ["SlaExtended"]
    assert story.s.deadline(DeadlineKind.final_response).extended  # type: ignore[union-attr]
    with pytest.raises(decide.Refused, match="already extended"):
        decide.check(story.s, ask, NOW)
    with pytest.raises(decide.Refused, match="allows no extension"):
        decide.check(story.s, cmd.ExtendDeadline(kind="assessment", reason="r", notice="n"), NOW)


def test_an_expired_offer_applies_its_default_and_an_unanswered_follow_up_closes_unconfirmed() -> None:
    story = Story()
    story.do(VALID)
    expiry = story.s.offer.expires_at  # type: ignore[union-attr]
    assert [type(e).__name__ for e in decide.due(story.s, expiry) if not isinstance(e, ev.SlaWarningRaised)] == [
        "RemedyDefaulted"]
    story.record([ev.RemedyDefaulted(option_id=story.s.offer.default_option)])  # type: ignore[union-attr]
    story.fulfil()
    late = story.s.follow_up.answer_by  # type: ignore[union-attr]
    closing = [e for e in decide.due(story.s, late) if isinstance(e, ev.ComplaintClosed)]
    assert [c.outcome for c in closing] == [Outcome.unconfirmed]


def test_an_unanswered_invalid_complaint_stays_under_the_rules_by_default() -> None:
    story = Story()
    story.do(INVALID)
    expiry = story.s.choice_offer.expires_at  # type: ignore[union-attr]
    events = [e for e in decide.due(story.s, expiry) if isinstance(e, ev.OptionDefaulted)]
    assert [e.option for e in events] == [CustomerChoice.stay]


def test_a_fold_refuses_records_that_do_not_follow() -> None:
    story = Story()
    other = Story(complaint_id="C-OTHER")
    with pytest.raises(FoldError, match="applied to"):
        evolve(story.s, chain(other.s.head, "C-OTHER", NOW, [Draft(type="MessageLogged", schema_version=1,
               actor="x", payload={"sender": "agent", "channel": "email", "text": "t", "at": NOW.isoformat()})])[0])
    skipping = chain(story.s.head.model_copy(update={"sequence": story.s.head.sequence + 1}), story.s.complaint_id,
                     NOW, [Draft(type="ComplaintWithdrawn", schema_version=1, actor="x", payload={"reason": None})])
    with pytest.raises(FoldError, match="expected #"):
        evolve(story.s, skipping[0])
    forged = chain(ChainHead(sequence=story.s.head.sequence, hash="f" * 64), story.s.complaint_id, NOW,
                   [Draft(type="ComplaintWithdrawn", schema_version=1, actor="x", payload={"reason": None})])
    with pytest.raises(FoldError, match="prev_hash"):
        evolve(story.s, forged[0])


def test_a_complaint_starts_with_its_receipt() -> None:
    [record] = chain(ChainHead(), "C-1", NOW, [Draft(type="MessageLogged", schema_version=1, actor="x",
                     payload={"sender": "agent", "channel": "email", "text": "t", "at": NOW.isoformat()})])
    with pytest.raises(FoldError, match="starts with ComplaintReceived"):
        fold([record])
