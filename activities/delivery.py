"""Delivering what the process owes the customer: the complaint's log, opened with the customer's key, gives
the words (name, title, the agent's own apology, the remedies as quoted); the message templates give the
language; a channel adapter carries it. Where no adapter can reach the customer (no email address: a phone,
social or in-person complaint), the rendered message is handed to an agent.

Nothing personal is logged here: the report goes back to the workflow, which records it in a sealed event."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import messages as msg
from activities import templates
from activities.channels import ChannelAdapter, DeliveryDeferred, DeliveryRefused, Outbound, message_id
from activities.eventlog import unavailable
from customer import links as page_links
from domain import events as ev
from domain import texts
from domain.complaint import Complaint, fold
from domain.intake import default_language
from domain.personal import ERASED, SealedFieldError
from domain.vocabulary import DeadlineKind, Rung, Verdict
from eventlog import EventLogUnavailable, EventStore
from eventlog.connect import CONNECTION_ERRORS
from eventlog.keys import CustomerKeyring
from logs import get_logger

log = get_logger(__name__)


class Delivery:
    """``channel`` carries email (the SMTP adapter by default); ``links``, when set, is the customer's page
    (its base URL, and the key that signs links to it): an apology, an explanation and a follow-up link to
    the page where the customer answers them (customer/links.py)."""

    def __init__(self, store: EventStore, keyring: CustomerKeyring, channel: ChannelAdapter, mail_domain: str,
                 links: tuple[str, bytes] | None = None) -> None:
        self.store = store
        self.keyring = keyring
        self.channel = channel
        self.mail_domain = mail_domain
        self.links = links

    @activity.defn(name=msg.DELIVER_MESSAGE)
    async def deliver_message(self, request: msg.DeliveryRequest) -> msg.DeliveryReport:
        try:
            records = await self.store.read(request.complaint_id)
            story = await self.keyring.open_events(request.complaint_id, records)
        except EventLogUnavailable as error:  # waited out, in one line, as an append waits it out
            raise unavailable(activity.info().attempt, error) from None
        except CONNECTION_ERRORS as error:
            raise unavailable(activity.info().attempt, error) from None
        except SealedFieldError as error:
            raise ApplicationError(str(error), type="SealedFieldError", non_retryable=True) from None
        state = fold(records)
        if state is None:
            raise ApplicationError(f"complaint {request.complaint_id} is not in the log", type="NotFound",
                                   non_retryable=True)
        language = templates.language_for(request.language, default_language(state.jurisdiction))
        try:
            variables = self._variables(request.template, state, story, request.about)
            if self.links is not None:
                variables["page_url"] = page_links.for_message(request.template, records, *self.links)
            rendered = templates.render(request.template, language, variables)
        except templates.RenderError as error:  # the same inputs would fail the same way: a person must look
            raise ApplicationError(str(error), type="RenderError", non_retryable=True) from None
        address = _email_address(story)
        if address is None:
            return msg.DeliveryReport(outcome="handed_to_agent", channel=state.rung.value, language=rendered.language,
                                      subject=rendered.subject, body=rendered.body)
        outbound = Outbound(complaint_id=state.complaint_id,
                            message_id=message_id(state.complaint_id, request.key, self.mail_domain), to=address,
                            subject=rendered.subject, body=rendered.body, language=rendered.language,
                            in_reply_to=request.thread[-1] if request.thread else None, references=request.thread)
        try:
            delivered = await self.channel.send(outbound)
        except DeliveryRefused as refused:
            log.warning("message refused", complaint_id=state.complaint_id, template=request.template)
            raise ApplicationError(str(refused), type="DeliveryRefused", non_retryable=True) from None
        except DeliveryDeferred as deferred:
            log.info("message deferred", complaint_id=state.complaint_id, template=request.template,
                     attempt=activity.info().attempt)
            raise ApplicationError(str(deferred), type="DeliveryDeferred") from None
        log.info("message sent", complaint_id=state.complaint_id, template=request.template, language=language)
        return msg.DeliveryReport(outcome="sent", channel=self.channel.name, language=rendered.language,
                                  subject=rendered.subject, body=rendered.body, recipient=address,
                                  message_id=outbound.message_id, provider_id=delivered.provider_id)

    def _variables(self, template: str, state: Complaint, story: list[ev.Event], about: str | None
                   ) -> dict[str, Any]:
        received = _last(story, ev.ComplaintReceived)
        assert received is not None

        def local(moment: datetime) -> datetime:
            return moment.astimezone(state.local_zone)

        common: dict[str, Any] = {"customer_name": received.customer_name, "complaint_id": state.complaint_id,
                                  "subject_title": received.subject_title, "page_url": None}
        match template:
            case "acknowledgement":
                final = state.deadline(DeadlineKind.final_response)
                return {**common, "channel": state.channel.value,
                        "respond_by": local(final.due_at) if final is not None else None}
            case "move_request":
                asked = _last(story, ev.ContactMoveRequested)
                return {**common, "to_rung": about or (asked.to_rung if asked else Rung.email).value}
            case "apology":
                apology, offered = _last(story, ev.ApologyIssued), _last(story, ev.RemedyOffered)
                assert offered is not None
                own = texts.own_apology(apology.text, received.subject_title) if apology is not None else None
                # Partially valid: the part where the agreement was followed is explained in the same message.
                explained, assessed = _last(story, ev.ExplanationGiven), _last(story, ev.ComplaintAssessed)
                explanation = None
                if explained is not None and assessed is not None and state.verdict is Verdict.partially_valid:
                    explanation = {"sop_reference": explained.sop_reference, "clause": _readable(assessed.clause),
                                   "text": texts.own_explanation(explained.text, explained.sop_reference,
                                                                 assessed.clause)}
                return {**common, "apology_text": own,
                        "options": [{"id": o.id, "kind": o.kind.value, "description": o.description,
                                     "value": {"amount_minor": o.value.amount_minor, "currency": o.value.currency}}
                                    for o in offered.options],
                        "default_option": offered.default_option, "expires_at": local(offered.expires_at),
                        "explanation": explanation}
            case "explanation":
                explained, assessed = _last(story, ev.ExplanationGiven), _last(story, ev.ComplaintAssessed)
                offer = state.choice_offer
                assert explained is not None and assessed is not None and offer is not None
                return {**common, "sop_reference": explained.sop_reference, "clause": _readable(assessed.clause),
                        "explanation_text": texts.own_explanation(explained.text, explained.sop_reference,
                                                                  assessed.clause),
                        "default_option": offer.default_option.value, "expires_at": local(offer.expires_at)}
            case "follow_up":
                assert state.follow_up is not None
                return {**common, "answer_by": local(state.follow_up.answer_by)}
            case "extension_notice":
                extended = _last(story, ev.SlaExtended)
                assert extended is not None
                return {**common, "notice": extended.notice, "due_at": local(extended.due_at)}
        raise ApplicationError(f"no message template {template!r}", type="UnknownTemplate", non_retryable=True)


E = TypeVar("E", bound=ev.Event)


def _last(story: list[ev.Event], kind: type[E]) -> E | None:
    return next((e for e in reversed(story) if isinstance(e, kind)), None)


def _readable(value: str | None) -> str | None:
    return None if value in (None, ERASED) else value


def _email_address(story: list[ev.Event]) -> str | None:
    """Where the customer reads email: the address they moved the conversation to last, else the intake's."""
    for event in reversed(story):
        if isinstance(event, ev.ContactMovedOffline) and event.rung is Rung.email and event.detail != ERASED:
            return event.detail
    received = _last(story, ev.ComplaintReceived)
    email = received.contact_email if received else None
    return email if email not in (None, ERASED) else None

