"""The remedy catalogue (quotes) and the remedy provider (fulfilment)."""

from __future__ import annotations

import json
import secrets

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import messages as msg
from activities.eventlog import unavailable
from domain.personal import SEALED_PREFIX, SealedFieldError, is_sealed, ledger_place, place
from domain.policies.remedies import Catalogue
from eventlog.connect import CONNECTION_ERRORS
from eventlog.keys import CustomerErased, CustomerKeyring, master_key
from logs import get_logger

log = get_logger(__name__)


class RemedyCatalogue:
    """Quotes for a complaint whose subject title is sealed in the log: opened here, with the customer's
    key, so the remedies (and the apology) name what the customer wrote, and never a sealed token."""

    def __init__(self, pool: asyncpg.Pool, keyring: CustomerKeyring | None = None) -> None:
        self.pool = pool
        self.keyring = keyring or CustomerKeyring(pool, master_key())

    async def _title(self, request: msg.QuoteRequest) -> str:
        title = request.subject_title
        if not is_sealed(title) or request.complaint_id is None:
            return title
        try:
            opener = await self.keyring.opener([title.removeprefix(SEALED_PREFIX).partition(":")[0]])
            opened = opener.open(title, place(request.complaint_id, 1, "ComplaintReceived", "subject_title"))
        except CONNECTION_ERRORS as error:
            raise unavailable(activity.info().attempt, error) from None
        except SealedFieldError as error:
            raise ApplicationError(str(error), type="SealedFieldError", non_retryable=True) from None
        return opened if opened is not None else "your complaint"  # the customer was erased

    @activity.defn(name=msg.QUOTE_REMEDIES)
    async def quote_remedies(self, request: msg.QuoteRequest) -> msg.Quote:
        title = await self._title(request)
        quote = await quote_remedies(request.model_copy(update={"subject_title": title}))
        return quote.model_copy(update={"subject_title": title})


async def quote_remedies(request: msg.QuoteRequest) -> msg.Quote:
    """The catalogue's quote for a title in plaintext."""
    try:
        options, default_id = Catalogue().quote(
            kinds=request.kinds, default=request.default, subject_kind=request.subject_kind,
            subject_title=request.subject_title, value=request.value, severity=request.severity,
            jurisdiction=request.jurisdiction,
        )
    except (ValueError, LookupError) as error:
        # The same request would fail the same way again: fail the assessment (nothing is recorded) instead
        # of retrying while the complaint's decisions wait behind it.
        raise ApplicationError(f"no quote for this complaint: {error}", type="QuoteRefused",
                               non_retryable=True) from error
    return msg.Quote(options=options, default_option=default_id)


class RemedyLedger:
    """The default remedy provider: orders the remedy in the ledger table, once per (complaint, option).

    The description names what the complaint is about, so the ledger keeps it sealed with the customer's key
    at its own place (``domain.personal.ledger_place``): an erasure destroys it with the rest. The option
    arrives as the log holds it (its description sealed in the RemedyOffered event), and is opened here."""

    def __init__(self, pool: asyncpg.Pool, keyring: CustomerKeyring | None = None) -> None:
        self.pool = pool
        self._keyring = keyring

    @property
    def keyring(self) -> CustomerKeyring:
        if self._keyring is None:
            self._keyring = CustomerKeyring(self.pool, master_key())
        return self._keyring

    async def _sealed_description(self, conn: asyncpg.Connection, request: msg.FulfilmentRequest) -> str:
        option = request.option
        customer_id = await conn.fetchval("SELECT payload->>'customer_id' FROM complaint_events"
                                          " WHERE complaint_id = $1 AND sequence = 1", request.complaint_id)
        if customer_id is None:
            raise ApplicationError(f"complaint {request.complaint_id} is not in the event log", type="UnknownComplaint",
                                   non_retryable=True)
        text = option.description
        if is_sealed(text):
            opened: str | None = None
            offers = await conn.fetch("SELECT sequence, payload FROM complaint_events WHERE complaint_id = $1"
                                      " AND type = 'RemedyOffered' ORDER BY sequence DESC", request.complaint_id)
            for offer in offers:
                payload = json.loads(offer["payload"]) if isinstance(offer["payload"], str) else offer["payload"]
                for index, offered in enumerate(payload.get("options", [])):
                    if offered.get("id") == option.id and offered.get("description") == option.description:
                        opener = await self.keyring.opener([option.description.removeprefix(SEALED_PREFIX)
                                                            .partition(":")[0]])
                        opened = opener.open(option.description, place(request.complaint_id, offer["sequence"],
                                                                       "RemedyOffered", f"options.{index}.description"))
                        if opened is None:
                            raise CustomerErased(f"customer {customer_id} was erased")
                        break
                if opened is not None:
                    break
            if opened is None:
                raise ApplicationError(f"remedy {option.id}'s description is not one this complaint was offered",
                                       type="UnknownRemedy", non_retryable=True)
            text = opened
        key = await self.keyring.key_for(customer_id)
        return key.seal(text, ledger_place(request.complaint_id, request.offer_round, option.id))

    @activity.defn(name=msg.FULFIL_REMEDY)
    async def fulfil_remedy(self, request: msg.FulfilmentRequest) -> msg.FulfilmentReceipt:
        option = request.option
        reference = f"RM-{secrets.token_hex(6).upper()}"
        try:
            stored = await self._order(request, reference)
        except CONNECTION_ERRORS as error:
            raise unavailable(activity.info().attempt, error) from None
        except (CustomerErased, SealedFieldError) as error:
            raise ApplicationError(str(error), type=type(error).__name__, non_retryable=True) from None
        log.info("remedy ordered", option=option.id, kind=option.kind.value, reference=stored)
        return msg.FulfilmentReceipt(reference=stored)

    async def _order(self, request: msg.FulfilmentRequest, reference: str) -> str:
        option = request.option
        async with self.pool.acquire() as conn:
            description = await self._sealed_description(conn, request)
            stored = await conn.fetchval(
                """
                WITH new AS (
                    INSERT INTO complaint_remedy_fulfilments
                        (complaint_id, option_id, kind, amount_minor, currency, description, reference, offer_round)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                    ON CONFLICT (complaint_id, offer_round, option_id) DO NOTHING
                    RETURNING reference
                )
                SELECT reference FROM new
                UNION ALL
                SELECT reference FROM complaint_remedy_fulfilments
                 WHERE complaint_id = $1 AND option_id = $2 AND offer_round = $8
                LIMIT 1
                """,
                request.complaint_id, option.id, option.kind.value, option.value.amount_minor,
                option.value.currency, description, reference, request.offer_round,
            )
            if stored is None:  # a concurrent attempt inserted it after this statement's snapshot
                stored = await conn.fetchval(
                    "SELECT reference FROM complaint_remedy_fulfilments WHERE complaint_id = $1 AND option_id = $2"
                    " AND offer_round = $3", request.complaint_id, option.id, request.offer_round,
                )
        return str(stored)
