"""The remedy catalogue (quotes) and the remedy provider (fulfilment)."""

from __future__ import annotations

import secrets

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import messages as msg
from activities.eventlog import unavailable
from domain.policies.remedies import Catalogue
from eventlog.connect import CONNECTION_ERRORS
from logs import get_logger

log = get_logger(__name__)


@activity.defn(name=msg.QUOTE_REMEDIES)
async def quote_remedies(request: msg.QuoteRequest) -> msg.Quote:
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
    """The default remedy provider: orders the remedy in the ledger table, once per (complaint, option)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name=msg.FULFIL_REMEDY)
    async def fulfil_remedy(self, request: msg.FulfilmentRequest) -> msg.FulfilmentReceipt:
        option = request.option
        reference = f"RM-{secrets.token_hex(6).upper()}"
        try:
            stored = await self._order(request, reference)
        except CONNECTION_ERRORS as error:
            raise unavailable(activity.info().attempt, error) from None
        log.info("remedy ordered", option=option.id, kind=option.kind.value, reference=stored)
        return msg.FulfilmentReceipt(reference=stored)

    async def _order(self, request: msg.FulfilmentRequest, reference: str) -> str:
        option = request.option
        async with self.pool.acquire() as conn:
            stored = await conn.fetchval(
                """
                WITH new AS (
                    INSERT INTO complaint_remedy_fulfilments
                        (complaint_id, option_id, kind, amount_minor, currency, description, reference)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (complaint_id, option_id) DO NOTHING
                    RETURNING reference
                )
                SELECT reference FROM new
                UNION ALL
                SELECT reference FROM complaint_remedy_fulfilments WHERE complaint_id = $1 AND option_id = $2
                LIMIT 1
                """,
                request.complaint_id, option.id, option.kind.value, option.value.amount_minor,
                option.value.currency, option.description, reference,
            )
            if stored is None:  # a concurrent attempt inserted it after this statement's snapshot
                stored = await conn.fetchval(
                    "SELECT reference FROM complaint_remedy_fulfilments WHERE complaint_id = $1 AND option_id = $2",
                    request.complaint_id, option.id,
                )
        return str(stored)
