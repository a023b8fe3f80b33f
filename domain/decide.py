"""Decisions: given a complaint's state and a command (or the clock), which events follow.

Pure functions. A command that does not fit the state raises :class:`Refused` naming the stage; the
workflow's update validators call :func:`check` so a refused command leaves no trace in history.
Anything these functions need from outside (deadlines from a calendar, a remedy quote, a follow-up date,
a fulfilment receipt) is passed in, already computed by an activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain import commands as cmd
from domain import events as ev
from domain import texts
from domain.complaint import Complaint
from domain.intake import ComplaintIntake
from domain.personal import is_sealed
from domain.vocabulary import (
    CustomerChoice,
    DeadlineKind,
    Outcome,
    Rung,
    Stage,
    Verdict,
    churn_category,
)

#: How often an unsatisfied customer's complaint goes back to validation before a supervisor takes it.
MAX_REOPENS = 2
SUPERVISOR = "supervisor"
#: Clocks disagree a little; a message "from the future" by more than this is a mistake.
CLOCK_SKEW = timedelta(minutes=5)

_OPEN = frozenset(Stage) - {Stage.received, Stage.closed}

ALLOWED: dict[type[cmd.Command], frozenset[Stage]] = {
    cmd.Assess: frozenset({Stage.awaiting_assessment}),
    cmd.ChooseRemedy: frozenset({Stage.awaiting_remedy_choice}),
    cmd.ChooseOption: frozenset({Stage.awaiting_option_choice}),
    cmd.MoveOffline: _OPEN,
    cmd.LogMessage: _OPEN,
    cmd.RecordFollowUp: frozenset({Stage.awaiting_follow_up}),
    # A remedy being fulfilled is a promise in flight: it completes (or escalates) before anyone walks away.
    cmd.RecordChurn: _OPEN - {Stage.fulfilling_remedy},
    cmd.Withdraw: _OPEN - {Stage.fulfilling_remedy},
    # A manual escalation hands the complaint to a supervisor (stage escalated), who closes it; not while a
    # remedy is being fulfilled (that completes, or escalates by itself).
    cmd.Escalate: _OPEN - {Stage.escalated, Stage.fulfilling_remedy},
    cmd.ExtendDeadline: _OPEN,
    cmd.Close: frozenset({Stage.escalated}),
    cmd.ApologiseForConduct: _OPEN,
}


class Refused(ValueError):
    """A command that does not fit the complaint as it stands."""

    def __init__(self, stage: Stage, reason: str) -> None:
        super().__init__(f"refused at stage {stage.value}: {reason}")
        self.stage = stage
        self.reason = reason


@dataclass(frozen=True)
class SlaSchedule:
    """Deadlines as an activity computed them at intake."""

    policy: str
    calendar: str
    deadlines: list[ev.Deadline]


def _refuse(state: Complaint, reason: str) -> Refused:
    return Refused(state.stage, reason)


def check(state: Complaint, command: cmd.Command, now: datetime, *, clock: bool = False) -> None:
    """Raise :class:`Refused` unless ``command`` fits ``state`` at ``now``. With ``clock``, also unless it fits
    the time: an offer that has expired or a deadline that has passed refuses what would have been in time,
    even before the timer that records the default or the breach has fired."""
    allowed = ALLOWED[type(command)]
    if state.stage not in allowed:
        name = type(command).__name__
        expected = ", ".join(sorted(s.value for s in allowed))
        raise _refuse(state, f"{name} is accepted only at: {expected}")
    if clock:
        _check_clock(state, command, now)
    match command:
        case cmd.ChooseRemedy(option_id=option_id):
            assert state.offer is not None
            if state.offer.option(option_id) is None:
                offered = ", ".join(o.id for o in state.offer.options)
                raise _refuse(state, f"option {option_id!r} was not offered (offered: {offered})")
        case cmd.ChooseOption():
            if state.choice is not None:
                raise _refuse(state, f"the customer already chose {state.choice.value}")
        case cmd.MoveOffline(rung=rung, meeting_at=meeting_at):
            if Rung(rung).height <= state.rung.height:
                raise _refuse(state, f"the complaint is already on {state.rung.value}; moving to {rung} is not a "
                                     "step up the ladder (public, email, phone, meeting)")
            if meeting_at is not None and meeting_at <= now:
                raise _refuse(state, "meeting_at is in the past")
        case cmd.LogMessage(at=at, message_id=message_id):
            if at is not None and at > now + CLOCK_SKEW:
                raise _refuse(state, "the message's time is in the future")
            if message_id is not None and message_id in state.thread:
                raise _refuse(state, f"message {message_id} is already kept with this complaint")
        case cmd.ExtendDeadline(kind=kind):
            deadline = state.deadline(kind)
            if deadline is None:
                raise _refuse(state, f"there is no {kind.value} deadline")
            if deadline.extension is None:
                raise _refuse(state, f"the {kind.value} deadline's rule allows no extension ({deadline.rule})")
            if deadline.extended:
                raise _refuse(state, f"the {kind.value} deadline was already extended once")
            if not deadline.pending:
                raise _refuse(state, f"the {kind.value} deadline was already met")
            if deadline.breached:
                raise _refuse(state, f"the {kind.value} deadline has passed; an extension is given before it runs out")
        case cmd.RecordChurn():
            if state.churn is not None:
                raise _refuse(state, "churn is already recorded")
        case _:
            pass


def _check_clock(state: Complaint, command: cmd.Command, now: datetime) -> None:
    match command:
        case cmd.ChooseRemedy() if state.offer is not None and now >= state.offer.expires_at:
            raise _refuse(state, f"the offer expired at {state.offer.expires_at.isoformat()}; its default "
                                 f"({state.offer.default_option}) applies")
        case cmd.ChooseOption() if state.choice_offer is not None and now >= state.choice_offer.expires_at:
            raise _refuse(state, f"the options expired at {state.choice_offer.expires_at.isoformat()}; the default "
                                 f"({state.choice_offer.default_option.value}) applies")
        case cmd.RecordFollowUp() if state.follow_up is not None and now >= state.follow_up.answer_by:
            raise _refuse(state, f"the follow-up was to be answered by {state.follow_up.answer_by.isoformat()}")
        case cmd.ExtendDeadline(kind=kind):
            deadline = state.deadline(kind)
            if deadline is not None and deadline.pending and not deadline.extended and now >= deadline.due_at:
                raise _refuse(state, f"the {kind.value} deadline passed at {deadline.due_at.isoformat()}; an "
                                     "extension is given before it runs out")
        case _:
            pass


#: Text from outside (a provider's error message) is bounded before it reaches an event.
MAX_OUTSIDE_TEXT = 500


def outside_text(text: str, limit: int = MAX_OUTSIDE_TEXT) -> str:
    """Printable, single-spaced, at most ``limit`` characters: what jsonb and a reader can take."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "\u2026"


# --- intake ---------------------------------------------------------------------------------------------


def receive(intake: ComplaintIntake, now: datetime, schedule: SlaSchedule | None, *,
            converse: bool = False) -> list[ev.Event]:
    """Received, deadlines set, acknowledged at once; a public or email complaint is asked to move on. With
    ``converse``, the conversation is opened in the customer's language: what they are told is sent."""
    received_at = intake.received_at or now
    found: list[ev.Event] = [
        ev.ComplaintReceived(
            customer_id=intake.customer.id,
            customer_name=intake.customer.name,
            contact_email=intake.contact.email,
            contact_phone=intake.contact.phone,
            contact_handle=intake.contact.handle,
            channel=intake.channel,
            subject_kind=intake.subject.kind,
            subject_title=intake.subject.title,
            subject_reference=intake.subject.reference,
            subject_value=intake.subject.value,
            description=intake.description,
            severity=intake.severity,
            jurisdiction=intake.jurisdiction,
            occurred_at=intake.occurred_at,
            received_at=received_at,
        )
    ]
    if converse:
        found.append(ev.ConversationOpened(language=intake.answer_in))
    respond_by = None
    if schedule is not None:
        found.append(ev.SlaDeadlinesSet(policy=schedule.policy, calendar=schedule.calendar,
                                        deadlines=schedule.deadlines))
        for deadline in schedule.deadlines:
            if deadline.kind is DeadlineKind.final_response:
                respond_by = deadline.due_at
            if deadline.kind is DeadlineKind.acknowledgement and deadline.due_at < now:
                found += _breach(deadline.kind, deadline.due_at)
    found.append(ev.ComplaintAcknowledged(
        channel=intake.channel,
        text=texts.acknowledgement(intake.complaint_id, intake.subject.title, respond_by),
    ))
    found += _ask_to_move_on(Rung.of(intake.channel))
    return found


def _ask_to_move_on(rung: Rung) -> list[ev.Event]:
    """Public asks for a private contact, email offers a call (source 002). A meeting is booked, not asked."""
    if rung in (Rung.public, Rung.email):
        up = rung.next()
        assert up is not None
        return [ev.ContactMoveRequested(from_rung=rung, to_rung=up, text=texts.contact_request(up))]
    return []


def _breach(kind: DeadlineKind, due_at: datetime) -> list[ev.Event]:
    return [
        ev.SlaBreached(kind=kind, due_at=due_at),
        ev.ComplaintEscalated(to=SUPERVISOR, reason=f"the {kind.value} deadline was breached",
                              awaits_supervisor=False),
    ]


# --- the conversation -------------------------------------------------------------------------------------


def move_offline(state: Complaint, command: cmd.MoveOffline, now: datetime) -> list[ev.Event]:
    check(state, command, now)
    rung = Rung(command.rung)
    found: list[ev.Event] = [ev.ContactMovedOffline(rung=rung, detail=command.detail)]
    if rung is Rung.meeting:
        assert command.meeting_at is not None
        found.append(ev.MeetingScheduled(at=command.meeting_at, location=command.detail))
    if rung is Rung.email:
        found += _ask_to_move_on(rung)
    return found


def log_message(state: Complaint, command: cmd.LogMessage, now: datetime) -> list[ev.Event]:
    check(state, command, now)
    return [ev.MessageLogged(sender=command.sender, channel=command.channel, text=command.text,
                             at=command.at or now, message_id=command.message_id, in_reply_to=command.in_reply_to)]


# --- validation and the response -------------------------------------------------------------------------


def assess(
    state: Complaint,
    command: cmd.Assess,
    now: datetime,
    quote: tuple[list[ev.RemedyOption], str] | None,
    *,
    title: str | None = None,
) -> list[ev.Event]:
    """Valid: a short apology and equivalent remedies. Invalid: the rules explained, and two ways forward.
    Partially valid: apology and remedies for our part, explanation for the rest."""
    check(state, command, now)
    verdict = command.verdict
    found: list[ev.Event] = [ev.ComplaintAssessed(verdict=verdict, root_cause=command.root_cause,
                                                  findings=command.findings, clause=command.clause)]
    expires_at = now + timedelta(days=command.offer_days)
    if verdict in (Verdict.valid, Verdict.partially_valid):
        # The title as the customer wrote it (the state holds it sealed): from the quote's activity.
        subject = title if title is not None else (None if is_sealed(state.subject_title) else state.subject_title)
        found.append(ev.ApologyIssued(text=command.apology or texts.apology(subject)))
    if verdict in (Verdict.invalid, Verdict.partially_valid):
        assert command.sop_reference is not None
        found.append(ev.ExplanationGiven(
            sop_reference=command.sop_reference,
            text=command.explanation or texts.explanation(command.sop_reference, command.clause),
        ))
    if verdict in (Verdict.valid, Verdict.partially_valid):
        if quote is None:
            raise ValueError("a valid or partially valid verdict needs a remedy quote")
        options, default_id = quote
        found.append(ev.RemedyOffered(options=options, default_option=default_id, expires_at=expires_at))
    if verdict is Verdict.invalid:
        found.append(ev.OptionsOffered(options=[CustomerChoice.stay, CustomerChoice.leave],
                                       default_option=CustomerChoice.stay, expires_at=expires_at))
    return found


def apologise_for_conduct(state: Complaint, command: cmd.ApologiseForConduct, now: datetime) -> list[ev.Event]:
    check(state, command, now)
    return [ev.ConductApologyIssued(text=command.text)]


def choose_remedy(state: Complaint, command: cmd.ChooseRemedy, now: datetime) -> list[ev.Event]:
    check(state, command, now)
    return [ev.RemedyChosen(option_id=command.option_id)]


def message_sent(state: Complaint, work: SendMessage, *, channel: str, language: str, recipient: str, subject: str,
                 body: str, message_id: str, provider_id: str) -> list[ev.Event]:
    return [ev.MessageSent(key=work.key, template=work.template, channel=channel, language=language,
                           recipient=recipient, subject=subject, body=body, message_id=message_id,
                           provider_id=outside_text(provider_id) or message_id)]


def message_handed_to_agent(state: Complaint, work: SendMessage, *, channel: str, language: str, subject: str,
                            body: str) -> list[ev.Event]:
    return [ev.MessageHandedToAgent(key=work.key, template=work.template, channel=channel, language=language,
                                    subject=subject, body=body)]


def message_failed(state: Complaint, work: SendMessage, reason: str) -> list[ev.Event]:
    """Refused, or not accepted within the retry budget: the customer has not heard from us, so a supervisor
    is told; the complaint goes on."""
    reason = outside_text(reason) or "no reason given"
    return [
        ev.MessageDeliveryFailed(key=work.key, template=work.template, channel="email", reason=reason),
        ev.ComplaintEscalated(to=SUPERVISOR, reason=f"the {work.template.replace('_', ' ')} could not be "
                                                   f"delivered: {reason}", awaits_supervisor=False),
    ]


def remedy_fulfilled(state: Complaint, reference: str) -> list[ev.Event]:
    assert state.remedy_option is not None
    return [ev.RemedyFulfilled(option_id=state.remedy_option, reference=reference)]


def remedy_failed(state: Complaint, reason: str) -> list[ev.Event]:
    """The retry budget is spent: a person must put it right."""
    assert state.remedy_option is not None
    reason = outside_text(reason) or "no reason given"
    return [
        ev.RemedyFulfilmentFailed(option_id=state.remedy_option, reason=reason),
        ev.ComplaintEscalated(to=SUPERVISOR, reason=f"remedy {state.remedy_option} could not be fulfilled: {reason}",
                              awaits_supervisor=True),
    ]


def choose_option(state: Complaint, command: cmd.ChooseOption, now: datetime) -> list[ev.Event]:
    check(state, command, now)
    found: list[ev.Event] = [ev.OptionChosen(option=command.option)]
    if command.option is CustomerChoice.leave:
        found += _leave(state, command.reason or "chose to leave without penalty")
    return found


# --- follow-up, closure, churn --------------------------------------------------------------------------


def schedule_follow_up(state: Complaint, at: datetime, answer_by: datetime) -> list[ev.Event]:
    return [ev.FollowUpScheduled(at=at, answer_by=answer_by)]


def record_follow_up(state: Complaint, command: cmd.RecordFollowUp, now: datetime) -> list[ev.Event]:
    """Satisfied (3+): closed. Unsatisfied: back to validation, at most twice; then a supervisor."""
    check(state, command, now)
    found: list[ev.Event] = [ev.FollowUpRecorded(satisfaction=command.satisfaction, comment=command.comment)]
    if command.satisfaction >= 3:
        found.append(ev.ComplaintClosed(outcome=Outcome.resolved, root_cause=state.root_cause,
                                        satisfaction=command.satisfaction))
    elif state.reopen_count < MAX_REOPENS:
        found.append(ev.ComplaintReopened(reopen_count=state.reopen_count + 1,
                                          reason=f"customer unsatisfied ({command.satisfaction}/5)"))
    else:
        found.append(ev.ComplaintEscalated(
            to=SUPERVISOR, awaits_supervisor=True,
            reason=f"customer still unsatisfied ({command.satisfaction}/5) after {MAX_REOPENS} reopenings",
        ))
    return found


def _leave(state: Complaint, reason: str) -> list[ev.Event]:
    return [
        ev.CustomerChurned(reason=reason, root_cause=state.root_cause,
                           category=churn_category(state.root_cause, state.subject_kind)),
        ev.ComplaintClosed(outcome=Outcome.customer_left, root_cause=state.root_cause,
                           satisfaction=state.satisfaction),
    ]


def record_churn(state: Complaint, command: cmd.RecordChurn, now: datetime) -> list[ev.Event]:
    check(state, command, now)
    return _leave(state, command.reason)


def withdraw(state: Complaint, command: cmd.Withdraw, now: datetime) -> list[ev.Event]:
    check(state, command, now)
    return [
        ev.ComplaintWithdrawn(reason=command.reason),
        ev.ComplaintClosed(outcome=Outcome.withdrawn, root_cause=state.root_cause, satisfaction=state.satisfaction),
    ]


def escalate(state: Complaint, command: cmd.Escalate, now: datetime) -> list[ev.Event]:
    """A person escalates: the complaint waits for a supervisor (stage escalated), who closes it."""
    check(state, command, now)
    return [ev.ComplaintEscalated(to=command.to, reason=command.reason, awaits_supervisor=True)]


def close(state: Complaint, command: cmd.Close, now: datetime) -> list[ev.Event]:
    check(state, command, now)
    return [ev.ComplaintClosed(outcome=Outcome(command.outcome), root_cause=state.root_cause,
                               satisfaction=state.satisfaction, note=command.note)]


def extend_deadline(state: Complaint, command: cmd.ExtendDeadline, now: datetime) -> list[ev.Event]:
    check(state, command, now)
    deadline = state.deadline(command.kind)
    assert deadline is not None and deadline.extension is not None
    return [ev.SlaExtended(kind=command.kind, previous_due_at=deadline.due_at, due_at=deadline.extension.due_at,
                           warn_at=deadline.extension.warn_at, reason=command.reason, notice=command.notice)]


# --- the clock ------------------------------------------------------------------------------------------


def due(state: Complaint, now: datetime) -> list[ev.Event]:
    """What the clock says must happen now: warnings, breaches, expired offers, a follow-up unanswered."""
    found: list[ev.Event] = []
    if not state.is_open:
        return found
    for deadline in state.deadlines:
        if not deadline.pending or deadline.breached:
            continue
        if now >= deadline.due_at:
            found += _breach(deadline.kind, deadline.due_at)
        elif now >= deadline.warn_at and not deadline.warned:
            found.append(ev.SlaWarningRaised(kind=deadline.kind, due_at=deadline.due_at))
    if state.stage is Stage.awaiting_remedy_choice and state.offer and now >= state.offer.expires_at:
        found.append(ev.RemedyDefaulted(option_id=state.offer.default_option))
    offer = state.choice_offer
    if state.stage is Stage.awaiting_option_choice and offer and state.choice is None and now >= offer.expires_at:
        found.append(ev.OptionDefaulted(option=offer.default_option))
    if state.stage is Stage.awaiting_follow_up and state.follow_up and now >= state.follow_up.answer_by:
        found.append(ev.ComplaintClosed(outcome=Outcome.unconfirmed, root_cause=state.root_cause, satisfaction=None,
                                        note="no answer to the follow-up by its deadline"))
    return found


def next_wakeup(state: Complaint) -> datetime | None:
    """When the clock next has something to say (see :func:`due`)."""
    if not state.is_open:
        return None
    times = [d.due_at if d.warned else d.warn_at for d in state.deadlines if d.pending and not d.breached]
    if state.stage is Stage.awaiting_remedy_choice and state.offer:
        times.append(state.offer.expires_at)
    if state.stage is Stage.awaiting_option_choice and state.choice_offer and state.choice is None:
        times.append(state.choice_offer.expires_at)
    if state.stage is Stage.awaiting_follow_up and state.follow_up:
        times.append(state.follow_up.answer_by)
    return min(times, default=None)


def next_message_at(state: Complaint) -> datetime | None:
    """When the next message owed is due (the workflow wakes for it when none is being sent)."""
    return min((o.due_at for o in state.outbox), default=None) if state.is_open else None


class Work:
    """Something the system must do through an activity before the complaint can move on."""


@dataclass(frozen=True)
class FulfilRemedy(Work):
    option: ev.RemedyOption


@dataclass(frozen=True)
class ScheduleFollowUp(Work):
    pass


@dataclass(frozen=True)
class SendMessage(Work):
    """Deliver a message the process owes the customer (rendered in their language in the activity)."""

    key: str
    template: str
    about: str | None = None


def reset_deadlines(state: Complaint, reopen_count: int, schedule: SlaSchedule) -> list[ev.Event]:
    return [ev.SlaDeadlinesReset(reopen_count=reopen_count, policy=schedule.policy, calendar=schedule.calendar,
                                 deadlines=schedule.deadlines)]


def wanted(state: Complaint, work: Work) -> bool:
    """Whether ``work``, finished, is still to be recorded: its message still owed (sent is sent, even if the
    complaint closed meanwhile), or it is still the next step."""
    if isinstance(work, SendMessage):
        return any(o.key == work.key for o in state.outbox)
    return next_work(state) == work


def next_message(state: Complaint, now: datetime) -> SendMessage | None:
    """The oldest message owed to the customer that is due by ``now`` (a follow-up waits for its day)."""
    due = [o for o in state.outbox if o.due_at <= now] if state.is_open else []
    return SendMessage(key=due[0].key, template=due[0].template, about=due[0].about) if due else None


def next_work(state: Complaint) -> Work | None:
    """After a remedy is chosen: fulfil it. After the response is complete: schedule the follow-up."""
    if state.stage is Stage.fulfilling_remedy and state.offer and state.remedy_option:
        if state.remedy_reference is None and not state.remedy_failed:
            option = state.offer.option(state.remedy_option)
            assert option is not None
            return FulfilRemedy(option)
        if state.remedy_reference is not None:
            return ScheduleFollowUp()
    if state.stage is Stage.awaiting_option_choice and state.choice is CustomerChoice.stay:
        return ScheduleFollowUp()
    return None
