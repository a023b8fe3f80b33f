"""ComplaintWorkflow: one complaint's whole life, durable, with every step in the event log first.

The process reads top to bottom in :meth:`ComplaintWorkflow.run`: record the complaint and acknowledge
it, then let people decide (updates) and the clock act (timers) until it is closed. Every change goes the
same way: ``decide`` (pure) gives events, an activity appends them to PostgreSQL, and only the records
the log stored are folded into the state. So the state never runs ahead of the log, and an update
returns only once its events are durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast, get_type_hints

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities import messages as msg
    from domain import commands as cmd
    from domain import decide
    from domain.chain import ChainHead, Draft
    from domain.complaint import Complaint, fold
    from domain.events import Event, RemedyOption
    from domain.intake import ComplaintIntake, check_timing
    from domain.principals import SUBMIT, SYSTEM, Forbidden, authorise, required_roles
    from domain.summary import details
    from domain.vocabulary import Verdict
    from settings import workflow_id
    from workflows import attributes as sa
    from workflows import metrics
    from workflows.forget import ForgetRefusedRun
    from workflows.perimeter import current_principal, start_credential
    from workflows.start import ComplaintRun, ComplaintStart, ComplaintWorkflowOptions

#: Runs that carry this marker check their perimeter: the workflow id, the input (the intake alone), the
#: start's credential and the log's head, and record the authenticated principal of every decision. Histories
#: recorded before it replay as they ran.
TRUST_BOUNDARY = "trust-boundary-1"
#: Runs that carry this marker check the clock in decisions (an expired offer, a passed deadline) and record
#: what is due first; carry only the state across continue-as-new; and stop retrying what cannot succeed.
REAL_OPERATIONS = "real-operations-1"
#: Runs that carry this marker open the conversation in the customer's language: what the process tells the
#: customer is rendered from templates and sent (or handed to an agent), each as an event.
CUSTOMER_CHANNEL = "customer-channel-1"
#: Runs that carry this marker publish whether an agent has messages to deliver by hand (AwaitingAgent), for
#: `complaints list --awaiting agent` and the UI's search.
AWAITING_AGENT = "awaiting-agent-1"
#: New runs carry this one marker for all four above (each marker also costs an upsert of the change-version
#: search attribute, and a cached run keeps the SDK's machine for each command). Runs recorded before it carry
#: the four, one by one, and replay as they ran.
ALL_OF_2026_12 = "all-of-2026-12"
#: Runs that carry this marker, continuing as new with decisions folded from a lost workflow task, first wait for
#: those decisions' updates to be sent again (as a closing run does): the next run could not answer them as recorded.
#: Called only then, so it is recorded only then.
ANSWER_RESENT_BEFORE_CONTINUING = "answer-resent-before-continuing-1"
# Appends wait out a database outage: a complaint must not fail because PostgreSQL restarted.
APPEND_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                           maximum_interval=timedelta(seconds=30))
# Calendars are computed, not fetched: what fails ten times is a fault to see, not an outage to wait out.
CALENDAR_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                             maximum_attempts=10)


#: How long a run, closing or continuing as new, waits for the updates whose decisions it folded from a lost
#: workflow task (see ComplaintWorkflow._record) to be sent again, to answer them as recorded (a caller whose call
#: failed when Temporal went down sends it again within seconds of its return); one never sent again holds it no
#: longer.
ANSWER_RESENT_WITHIN = timedelta(minutes=1)

C = TypeVar("C", bound=cmd.Command)
W = TypeVar("W")
Handler = Callable[[W, C], Awaitable[Complaint]]


def decision(handler: Handler[W, C]) -> workflow.UpdateMethodMultiParam[[W, C], Complaint]:
    """A decision's update, registered from its command model: the name is the model's in ``cmd.COMMANDS``
    (the JSON contract; the method must carry the same name, so typed references and names agree), the
    description its docstring, and the validator the same for all (:meth:`ComplaintWorkflow._check`: who
    may decide, and whether it fits the stage and the clock) so nothing refused reaches history."""
    model = get_type_hints(handler)["command"]
    name = next((n for n, m in cmd.COMMANDS.items() if m is model), None)
    if name != handler.__name__:
        raise TypeError(f"{handler.__name__} handles {model.__name__}, whose update (cmd.COMMANDS) is {name!r}")
    description = (model.__doc__ or "").strip().split("\n\n")[0] or None
    # What the plain @workflow.update gives an async method: typed so that clients' execute_update(...) is.
    update = cast("workflow.UpdateMethodMultiParam[[W, C], Complaint]",
                  workflow.update(name=name, description=description)(handler))

    def validate(self: Any, command: C) -> None:
        self._check(command)

    # The SDK requires a validator's parameters to be its update's, annotations included.
    validate.__signature__ = inspect.signature(handler).replace(return_annotation=None)  # type: ignore[attr-defined]
    update.validator(validate)
    return update


@workflow.defn(name="ComplaintWorkflow")
class ComplaintWorkflow:
    @workflow.init
    def __init__(self, start: ComplaintStart) -> None:
        run = start.as_run()
        # Until the run is admitted: no state, and options that nobody handed in.
        self._options: msg.RunOptions | ComplaintWorkflowOptions = msg.RunOptions()
        self._state: Complaint | None = None
        self._intake = run.intake
        self._customer_id = run.intake.customer.id if run.intake else (run.options.resume.customer_id
                                                                        if run.options.resume else "")
        self._complaint_id = run.intake.complaint_id if run.intake else (run.options.resume.complaint_id
                                                                          if run.options.resume else "")
        self._authenticated = False
        self._converse = False
        self._awaiting_agent = False
        self._operations = False
        self._intake_actor = SYSTEM
        # One decision at a time: a handler that awaits an activity holds this, so two updates can never
        # chain events on the same head (which the log would refuse as divergent).
        self._lock = asyncio.Lock()
        self._changed = False
        self._published: dict[str, object] = {}
        # REAL_OPERATIONS runs do their work (fulfilment, follow-up dates, reopened deadlines) in a task of
        # its own, so the clock's timers go on firing while an activity is in flight.
        self._working = False
        self._sending = False  # a message to the customer is being delivered (beside other work, never blocking it)
        self._message_in_flight: asyncio.Task[None] | None = None
        self._work_failure: BaseException | None = None
        self._work_in_flight: asyncio.Task[None] | None = None
        # ALL_OF_2026_12 runs keep one timer per instant the clock must wake at, while it stays the next one.
        self._alarms = False
        self._alarm: asyncio.Task[None] | None = None
        self._alarm_at: datetime | None = None
        #: Updates whose decision this run recorded in a workflow task Temporal then lost (the log kept it, and
        #: the run folded it back, see _record): sent again under the same id, each is answered as recorded.
        self._recorded_before: set[str] = set()

    # --- the process ----------------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: ComplaintStart) -> Complaint:
        if workflow.patched(ALL_OF_2026_12):
            self._authenticated = self._operations = self._converse = self._awaiting_agent = True
            self._alarms = True
            await self._admit(start)
        elif workflow.patched(TRUST_BOUNDARY):
            self._authenticated = True
            self._operations = workflow.patched(REAL_OPERATIONS)
            self._converse = self._operations and workflow.patched(CUSTOMER_CHANNEL)
            self._awaiting_agent = self._converse and workflow.patched(AWAITING_AGENT)
            await self._admit(start)
        else:  # a history from before the perimeter: options and state as its input gave them
            self._options = start.as_run().options
            self._state = start.as_run().options.resume
        if self._state is None:
            assert self._intake is not None, "a fresh start has its intake"
            await self._receive(self._intake)
        while True:
            await self._act_on_clock_and_work()
            state = self._current()
            if not state.is_open:
                break
            if self._history_is_long():
                if self._recorded_before and workflow.patched(ANSWER_RESENT_BEFORE_CONTINUING):
                    await self._answer_resent_updates()
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked()
                                              and not self._working and not self._sending)
                workflow.logger.info("continuing as new", extra=self._log_fields())
                intake = None if self._operations else self._intake  # personal data does not cross runs
                if self._authenticated:  # only the state crosses; the next run checks it against the log
                    options = ComplaintWorkflowOptions(resume=self._current())
                else:
                    options = start.as_run().options.model_copy(update={"resume": self._current()})
                workflow.continue_as_new(ComplaintStart(ComplaintRun(intake=intake, options=options)))
            await self._sleep_until_something_changes()
        self._silence_alarm()
        await self._answer_resent_updates()
        # Let any update still in flight finish and reply before the run completes.
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._working
                                      and not self._sending)
        return self._current()

    async def _answer_resent_updates(self) -> None:
        """Decisions folded from a lost task (see _record): wait, a while, for their updates to be sent again, to
        answer them as recorded before the run ends (a next run, or none, could not)."""
        if self._recorded_before:
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(lambda: not self._recorded_before, timeout=ANSWER_RESENT_WITHIN)

    async def _admit(self, start: ComplaintStart) -> None:
        """The perimeter, before anything is written: the workflow id is the complaint's, the input is the
        intake alone (state only from this workflow's own continue-as-new, and only if it is the log's
        head), the start's credential may submit, and the log does not hold the complaint already."""
        info = workflow.info()
        expected = workflow_id(self._complaint_id)
        if info.workflow_id != expected:
            await self._refuse("WrongWorkflowId", f"workflow id {info.workflow_id!r} does not belong to complaint "
                               f"{self._complaint_id!r}: start it as {expected!r}", start.plaintext)
        carried = start.as_run().options.resume if start.continuation else None
        if start.continuation and (info.continued_run_id is None or carried is None):
            await self._refuse("InputRefused", "the workflow's input is the complaint's intake alone: run options "
                               "and state are worker configuration, never a caller's", start.plaintext)
        if carried is not None and carried.complaint_id != self._complaint_id:
            await self._refuse("CarriedStateRefused", "the state carried over is another complaint's",
                               start.plaintext)
        admission = await workflow.execute_local_activity(
            msg.admit,
            msg.AdmitRequest(complaint_id=self._complaint_id, customer_id=self._customer_id, at=workflow.now(),
                             credential=None if carried else start_credential(),
                             carried_head=carried.head if carried else None, plaintext=start.plaintext),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=APPEND_RETRY,
        )
        if admission.refusal:
            # Each refusal's details have one documented shape (domain/errors.py): a start's Forbidden names the
            # roles that may submit, as an update's names the roles that may decide.
            refusal_details = ({"required_roles": required_roles(SUBMIT)} if admission.refusal.type == "Forbidden"
                               else None)
            await self._refuse(admission.refusal.type, admission.refusal.message, start.plaintext,
                               admission.options.refused_run_ttl_seconds, refusal_details)
        self._options = admission.options
        self._state = carried
        self._intake_actor = admission.actor or SYSTEM
        if carried is not None:
            workflow.set_current_details(details(carried))  # the UI shows the complaint from the run's start

    async def _refuse(self, kind: str, message: str, plaintext: bool,
                      forget_after: int = msg.RunOptions().refused_run_ttl_seconds,
                      refusal_details: Mapping[str, object] | None = None) -> None:
        """End the run, having written nothing. One whose input held plaintext personal data is deleted from
        Temporal after its caller has had time to read why (by an abandoned child that outlives it)."""
        workflow.logger.warning("run refused", extra={"refusal": kind})
        if plaintext:
            info = workflow.info()
            await workflow.start_child_workflow(
                ForgetRefusedRun.run,
                msg.ForgetRun(workflow_id=info.workflow_id, run_id=info.run_id, after_seconds=forget_after),
                id=f"forget-{info.workflow_id}-{info.run_id}",
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        raise ApplicationError(message, *([refusal_details] if refusal_details is not None else []), type=kind,
                               non_retryable=True)

    async def _receive(self, intake: ComplaintIntake) -> None:
        """Intake: record the complaint with its deadlines, acknowledge it, ask it to move to a private channel."""
        now = workflow.now()
        problems = check_timing(intake, now)
        if problems:
            raise ApplicationError(
                "invalid complaint: " + "; ".join(str(p) for p in problems),
                {"errors": [{"field": p.field, "reason": p.reason} for p in problems]},  # FieldErrorDetails
                type="InvalidComplaint",
                non_retryable=True,
            )
        async with self._lock:
            schedule = await workflow.execute_activity(
                msg.compute_deadlines,
                msg.DeadlineRequest(jurisdiction=intake.jurisdiction, channel=intake.channel,
                                    subject_kind=intake.subject.kind, received_at=intake.received_at or now),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=CALENDAR_RETRY,
            )
            sla = decide.SlaSchedule(policy=schedule.policy, calendar=schedule.calendar,
                                     deadlines=schedule.deadlines)
            await self._record(decide.receive(intake, now, sla, converse=self._converse), SYSTEM,
                               first_actor=self._intake_actor)
        workflow.logger.info("complaint received", extra=self._log_fields())

    async def _act_on_clock_and_work(self) -> None:
        """Whatever is due now: warnings, breaches, expired offers, then fulfilment and follow-up planning."""
        if self._work_failure is not None:
            raise self._work_failure  # an activity that can never succeed ends the run, visibly
        while True:
            work, message = await self._record_due_then_next_work()
            if message is not None:  # a mail relay away for minutes holds up no fulfilment, and no clock
                self._message_in_flight = asyncio.create_task(self._send(message))
            if work is None:
                return
            if self._operations:
                # In a task of its own, so that timers keep firing (warnings, breaches, expiries) while its
                # activity is in flight; the main loop sleeps until it is done or a timer is due.
                # Kept, so the task is not garbage-collected while it runs.
                self._work_in_flight = asyncio.create_task(self._perform(work))
                return
            # Outside the lock: a fulfilment may take minutes of retries, and messages can still be logged
            # meanwhile. Its outcome is then decided against the state as it is by then.
            await self._perform(work)

    async def _record_due_then_next_work(self) -> tuple[decide.Work | None, decide.SendMessage | None]:
        """Under the lock: record what the clock says is due, until nothing is; then the next piece of work and
        the next message owed to start, if any (none of either while one is in flight)."""
        while True:
            async with self._lock:
                state = self._current()
                due = decide.due(state, workflow.now())
                if due:
                    await self._record(due, SYSTEM)
                    continue
                work = None if self._working else decide.next_work(state)
                message = None if self._sending else decide.next_message(state, workflow.now())
                # Set only when starting: a call while one is in flight must not clear its flag (which would
                # start the same work again beside it).
                self._working = self._working or work is not None
                self._sending = self._sending or message is not None
                return work, message

    async def _perform(self, work: decide.Work) -> None:
        try:
            outcome = await self._do(work)
            async with self._lock:
                # Decided against the state as it is by then (messages, breaches may have come meanwhile).
                while decide.wanted(self._current(), work):
                    if await self._record(outcome(self._current()), SYSTEM):
                        break
        except Exception as error:
            if not self._operations:
                raise  # as runs before REAL_OPERATIONS did: the failure ends the run where it happens
            self._work_failure = error  # surfaced by the main loop: a task's exception would otherwise be lost
        finally:
            self._working = False
            if self._operations:
                self._changed = True  # wake the main loop: the work is done (or failed)

    async def _send(self, message: decide.SendMessage) -> None:
        try:
            outcome = await self._deliver(message)
            async with self._lock:
                while decide.wanted(self._current(), message):
                    if await self._record(outcome(self._current()), SYSTEM):
                        break
        except Exception as error:  # noqa: BLE001 - surfaced by the main loop, as a failed fulfilment is
            self._work_failure = error
        finally:
            self._sending = False
            self._changed = True

    async def _do(self, work: decide.Work) -> Callable[[Complaint], list[Event]]:
        """Run the activity a piece of work needs; return how its result becomes events."""
        state = self._current()
        if isinstance(work, decide.FulfilRemedy):
            try:
                receipt = await workflow.execute_activity(
                    msg.fulfil_remedy,
                    msg.FulfilmentRequest(complaint_id=state.complaint_id, option=work.option,
                                          offer_round=state.reopen_count),
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                                             maximum_interval=timedelta(minutes=1),
                                             maximum_attempts=self._options.fulfilment_attempts),
                )
            except ActivityError as error:
                reason = str(error.cause) if error.cause else str(error)
                workflow.logger.warning("remedy fulfilment failed", extra={**self._log_fields(), "reason": reason})
                return lambda current: decide.remedy_failed(current, reason)
            return lambda current: decide.remedy_fulfilled(current, receipt.reference)
        if isinstance(work, decide.ScheduleFollowUp):
            dates = await workflow.execute_activity(
                msg.plan_follow_up,
                msg.FollowUpRequest(jurisdiction=state.jurisdiction, responded_at=workflow.now()),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=CALENDAR_RETRY,
            )
            return lambda current: decide.schedule_follow_up(current, dates.at, dates.answer_by)
        raise TypeError(f"unknown work {work!r}")

    async def _deliver(self, work: decide.SendMessage) -> Callable[[Complaint], list[Event]]:
        """A message owed to the customer: rendered and sent by an activity (retried with backoff; a refusal is
        final); what was sent, handed over or refused becomes an event."""
        state = self._current()
        assert isinstance(self._options, msg.RunOptions), "only runs with the customer channel send messages"
        try:
            report = await workflow.execute_activity(
                msg.deliver_message,
                msg.DeliveryRequest(complaint_id=state.complaint_id, key=work.key, template=work.template,
                                    language=state.language or "en", thread=state.thread, about=work.about),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                                         maximum_interval=timedelta(minutes=1),
                                         maximum_attempts=self._options.delivery_attempts,
                                         non_retryable_error_types=["DeliveryRefused"]),
            )
        except ActivityError as error:
            reason = str(error.cause) if error.cause else str(error)
            workflow.logger.warning("message not delivered", extra={**self._log_fields(), "template": work.template})
            return lambda current: decide.message_failed(current, work, reason)
        if report.outcome == "handed_to_agent":
            return lambda current: decide.message_handed_to_agent(
                current, work, channel=report.channel, language=report.language, subject=report.subject,
                body=report.body)
        return lambda current: decide.message_sent(
            current, work, channel=report.channel, language=report.language, recipient=report.recipient,
            subject=report.subject, body=report.body, message_id=report.message_id, provider_id=report.provider_id)

    async def _sleep_until_something_changes(self) -> None:
        state = self._current()
        wakeup = decide.next_wakeup(state)
        owed = None if self._sending else decide.next_message_at(state)  # one in flight wakes the loop when done
        if owed is not None:
            wakeup = min(wakeup, owed) if wakeup is not None else owed
        timeout = max(wakeup - workflow.now(), timedelta(0)) if wakeup else None
        if self._alarms:
            await self._changed_or_alarm(wakeup, timeout)
            return
        try:
            await workflow.wait_condition(lambda: self._changed or self._history_is_long(), timeout=timeout)
        except TimeoutError:
            pass
        self._changed = False

    async def _changed_or_alarm(self, wakeup: datetime | None, timeout: timedelta | None) -> None:
        """Until something changes, or the clock's next instant comes. Its timer is kept across changes that
        leave that instant the next one (cancelling and starting it again at every decision cost two history
        events each time, and the SDK keeps a state machine for every timer a run ever started)."""
        if wakeup != self._alarm_at:
            self._silence_alarm()
            if timeout is not None and timeout > timedelta(0):
                self._alarm, self._alarm_at = asyncio.create_task(workflow.sleep(timeout)), wakeup
        alarm = self._alarm
        if timeout is not None and alarm is None:  # due now: as a wait of no time, which starts no timer
            self._changed = False
            return
        await workflow.wait_condition(lambda: self._changed or self._history_is_long()
                                      or (alarm is not None and alarm.done()))
        if alarm is not None and alarm.done():
            self._alarm = self._alarm_at = None
        self._changed = False

    def _silence_alarm(self) -> None:
        if self._alarm is not None and not self._alarm.done():
            self._alarm.cancel()
        self._alarm = self._alarm_at = None

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (info.is_continue_as_new_suggested()
                or info.get_current_history_length() >= self._options.max_history_events)

    # --- recording ------------------------------------------------------------------------------------

    async def _record(self, events: list[Event], actor: str, *, first_actor: str | None = None,
                      update_id: str | None = None) -> bool:
        """Append to the log, then fold what the log stored. The caller holds the lock. ``first_actor``
        made the first event (the intake's submitter), the rest follow from it; ``update_id`` names the update
        that decided them (None: the workflow's own decision).

        False when the log held, at this place, another batch this very run appended from the same head, in a
        workflow task Temporal then lost (a local append commits before its task completes; after the loss the
        run decides again, and its inputs may come in another order). The log keeps what it stored: that batch
        is folded instead, and the caller decides again on top of it (its own events were not recorded)."""
        state = self._state
        append = workflow.execute_local_activity if self._options.local_appends else workflow.execute_activity
        appended = await append(
            msg.append_events,
            msg.AppendEvents(
                complaint_id=state.complaint_id if state else self._complaint_id,
                customer_id=self._customer_id,
                head=state.head if state else ChainHead(),
                occurred_at=workflow.now(),
                drafts=[Draft.of(event, first_actor if first_actor and i == 0 else actor)
                        for i, event in enumerate(events)],
                update_id=update_id,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=APPEND_RETRY,
        )
        self._state = fold(appended.records, state)
        self._changed = True
        metrics.recorded(appended.records, state, self._current())
        self._publish()
        if appended.decided_before:
            workflow.logger.warning("the log held a decision of this run's lost workflow task: folded",
                                    extra={**self._log_fields(), "by_update": appended.decided_by_update is not None})
            if appended.decided_by_update is not None:
                self._recorded_before.add(appended.decided_by_update)
        return not appended.decided_before

    def _current(self) -> Complaint:
        assert self._state is not None, "the complaint is not recorded yet"
        return self._state

    def _publish(self) -> None:
        """Search attributes (only those that changed, to keep history short) and the UI's details."""
        state = self._current()
        upcoming = state.next_deadline
        values: list[tuple[SearchAttributeKey[Any], Any]] = [
            (sa.COMPLAINT_STATUS, state.stage.value),
            (sa.COMPLAINT_CHANNEL, state.channel.value),
            (sa.COMPLAINT_SEVERITY, state.severity.value),
            (sa.COMPLAINT_VERDICT, state.verdict.value if state.verdict else None),
            (sa.COMPLAINT_ROOT_CAUSE, state.root_cause.value if state.root_cause else None),
            (sa.CUSTOMER_ID, state.customer_id),
            (sa.JURISDICTION, state.jurisdiction.value),
            (sa.SLA_DUE_AT, upcoming.due_at if upcoming and state.is_open else None),
            (sa.SLA_BREACHED, state.sla_breached),
        ]
        if self._awaiting_agent:
            values.append((sa.AWAITING_AGENT, bool(state.agent_tasks) and state.is_open))
        updates = []
        for key, value in values:
            name = key.name
            if self._published.get(name, ...) == value:
                continue
            self._published[name] = value
            updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(details(state))

    # --- queries --------------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> Complaint | None:
        """The folded complaint, with its chain head (None only before the intake is recorded)."""
        return self._state

    # --- decisions by people (updates) -----------------------------------------------------------------

    def _actor(self, command: cmd.Command) -> str:
        """Who makes this decision: the authenticated principal, if its role may (else ``Forbidden``, naming
        the roles that may). The principal is the update's own (see workflows.perimeter)."""
        principal = current_principal()
        if principal is None:
            if self._authenticated:
                raise ApplicationError("no credential", type="Unauthenticated", non_retryable=True)
            return command.by or "operator"  # a history from before principals: as it was recorded
        update = workflow.current_update_info()
        assert update is not None, "a decision is made in an update"
        action = update.name
        customer_id = self._state.customer_id if self._state else self._customer_id
        sender = getattr(command, "sender", None)
        try:
            return authorise(principal, action, customer_id=customer_id, by=command.by,
                             sender=sender.value if sender else None)
        except Forbidden as refused:
            raise ApplicationError(str(refused), {"required_roles": refused.required}, type="Forbidden",
                                   non_retryable=True) from None

    def _check(self, command: cmd.Command, clock: bool = True) -> None:
        """Validators: refuse who may not decide, and what does not fit the stage or the clock (an offer past
        its expiry, a deadline past its time, even before the timer has fired), before anything reaches
        history. Handlers check again (the clock only where the run has REAL_OPERATIONS)."""
        self._actor(command)
        if self._state is None:
            return  # the intake is being recorded; the handler waits for it and checks again
        if self._update_id() in self._recorded_before:
            return  # decided already, in a workflow task Temporal lost: the handler answers it as recorded
        try:
            decide.check(self._state, command, workflow.now(), clock=clock)
        except decide.Refused as refused:
            raise ApplicationError(str(refused), {"stage": refused.stage.value, "reason": refused.reason},
                                   type="ComplaintRefused", non_retryable=True) from None

    async def _decide(self, command: C, decision: Callable[[Complaint, C, datetime], list[Event]],
                      then: Callable[[], Awaitable[None]] | None = None) -> Complaint:
        actor = self._actor(command)
        await workflow.wait_condition(lambda: self._state is not None)
        async with self._lock:
            await self._record_due()
            if self._answered_before():
                return self._current()
            # Again: another update, or the clock, may have moved the complaint on since validation.
            self._check(command, clock=self._operations)
            if not await self._record_decision(command, lambda state: decision(state, command, workflow.now()),
                                               actor):
                return self._current()
            if then is not None:
                await then()
        workflow.logger.info("decision recorded", extra=self._log_fields())
        return self._current()

    async def _record_decision(self, command: cmd.Command, decided: Callable[[Complaint], list[Event]],
                               actor: str) -> bool:
        """Record an update's decision (checked by the caller, who holds the lock). Where the log held a lost
        task's batch instead, decided (and checked) again on what the log holds now; False when that batch was
        this update's own, answered as recorded."""
        while not await self._record(decided(self._current()), actor, update_id=self._update_id()):
            if self._answered_before():
                return False
            self._check(command, clock=self._operations)
        return True

    def _update_id(self) -> str | None:
        update = workflow.current_update_info()
        return update.id if update is not None else None

    def _answered_before(self) -> bool:
        """Whether this update's decision is in the log already, from a workflow task Temporal lost (its caller
        sent it again under the same id): it is answered with the complaint as it stands."""
        update_id = self._update_id()
        if update_id is None or update_id not in self._recorded_before:
            return False
        self._recorded_before.discard(update_id)  # answered (Temporal answers any later repeat from history)
        workflow.logger.info("decision recorded before, in a workflow task Temporal lost", extra=self._log_fields())
        return True

    async def _record_due(self) -> None:
        """What the clock says is due (a default, a breach) is recorded before a decision. The caller holds
        the lock."""
        if self._operations:
            due = decide.due(self._current(), workflow.now())
            if due and not await self._record(due, SYSTEM):
                await self._record_due()  # the log held a lost task's batch instead: what is due now

    def _log_fields(self) -> dict[str, object]:
        state = self._current()
        return {"complaint_id": state.complaint_id, "stage": state.stage.value, "sequence": state.head.sequence}

    @decision
    async def assess(self, command: cmd.Assess) -> Complaint:
        actor = self._actor(command)
        await workflow.wait_condition(lambda: self._state is not None)
        quote = None
        if self._operations:  # asked for outside the lock: a slow catalogue must not hold up the clock
            quote = await self._quote(command)
        async with self._lock:
            await self._record_due()
            if self._answered_before():
                return self._current()
            self._check(command, clock=self._operations)
            if not self._operations:
                quote = await self._quote(command)
            title = quote[2] if quote else None
            if not await self._record_decision(command, lambda state: decide.assess(
                    state, command, workflow.now(), quote[:2] if quote else None, title=title), actor):
                return self._current()
        workflow.logger.info("complaint assessed", extra={**self._log_fields(), "verdict": command.verdict.value})
        return self._current()

    async def _quote(self, command: cmd.Assess) -> tuple[list[RemedyOption], str, str | None] | None:
        """The remedies to offer (a valid or partially valid verdict), priced by the catalogue's activity."""
        if command.verdict is Verdict.invalid:
            return None
        state = self._current()
        local = isinstance(self._options, msg.RunOptions) and self._options.local_quotes
        quote = workflow.execute_local_activity if local else workflow.execute_activity
        offered = await quote(
            msg.quote_remedies,
            msg.QuoteRequest(kinds=command.remedies, default=command.default_remedy,
                             subject_kind=state.subject_kind, subject_title=state.subject_title,
                             value=state.subject_value, severity=state.severity, jurisdiction=state.jurisdiction,
                             complaint_id=state.complaint_id if self._operations else None),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=CALENDAR_RETRY,
        )
        return offered.options, offered.default_option, offered.subject_title

    @decision
    async def choose_remedy(self, command: cmd.ChooseRemedy) -> Complaint:
        return await self._decide(command, decide.choose_remedy)

    @decision
    async def choose_option(self, command: cmd.ChooseOption) -> Complaint:
        return await self._decide(command, decide.choose_option)

    @decision
    async def move_offline(self, command: cmd.MoveOffline) -> Complaint:
        return await self._decide(command, decide.move_offline)

    @decision
    async def log_message(self, command: cmd.LogMessage) -> Complaint:
        return await self._decide(command, decide.log_message)

    @decision
    async def record_follow_up(self, command: cmd.RecordFollowUp) -> Complaint:
        # Under the same lock, before any other decision: a reopened complaint has deadlines again.
        return await self._decide(command, decide.record_follow_up,
                                  then=self._reset_deadlines if self._operations else None)

    async def _reset_deadlines(self) -> None:
        """A reopened complaint's deadlines, counted as its jurisdiction's rule says (in an activity: the
        calendar), recorded by the workflow. The caller holds the lock."""
        state = self._current()
        if not (state.is_open and state.reopen_count > state.deadlines_round):
            return
        schedule = await workflow.execute_activity(
            msg.compute_deadlines,
            msg.DeadlineRequest(jurisdiction=state.jurisdiction, channel=state.channel,
                                subject_kind=state.subject_kind, received_at=state.received_at,
                                reopened_at=workflow.now()),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=CALENDAR_RETRY,
        )
        sla = decide.SlaSchedule(policy=schedule.policy, calendar=schedule.calendar, deadlines=schedule.deadlines)
        if not await self._record(decide.reset_deadlines(state, state.reopen_count, sla), SYSTEM):
            await self._reset_deadlines()  # the log held a lost task's batch instead: counted again if still owed

    @decision
    async def record_churn(self, command: cmd.RecordChurn) -> Complaint:
        return await self._decide(command, decide.record_churn)

    @decision
    async def withdraw(self, command: cmd.Withdraw) -> Complaint:
        return await self._decide(command, decide.withdraw)

    @decision
    async def escalate(self, command: cmd.Escalate) -> Complaint:
        return await self._decide(command, decide.escalate)

    @decision
    async def extend_deadline(self, command: cmd.ExtendDeadline) -> Complaint:
        return await self._decide(command, decide.extend_deadline)

    @decision
    async def close(self, command: cmd.Close) -> Complaint:
        return await self._decide(command, decide.close)

    @decision
    async def apologise_for_conduct(self, command: cmd.ApologiseForConduct) -> Complaint:
        return await self._decide(command, decide.apologise_for_conduct)

