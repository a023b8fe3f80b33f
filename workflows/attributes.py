"""Search attributes an operator filters by in the Temporal UI and `complaints list`.

Customer is an id, never a name: search attributes are not encrypted by the payload codec."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

COMPLAINT_STATUS = SearchAttributeKey.for_keyword("ComplaintStatus")
COMPLAINT_CHANNEL = SearchAttributeKey.for_keyword("ComplaintChannel")
COMPLAINT_SEVERITY = SearchAttributeKey.for_keyword("ComplaintSeverity")
COMPLAINT_VERDICT = SearchAttributeKey.for_keyword("ComplaintVerdict")
COMPLAINT_ROOT_CAUSE = SearchAttributeKey.for_keyword("ComplaintRootCause")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
JURISDICTION = SearchAttributeKey.for_keyword("Jurisdiction")
SLA_DUE_AT = SearchAttributeKey.for_datetime("SlaDueAt")
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")
#: Messages wait for an agent to deliver them by hand (no channel reaches the customer).
AWAITING_AGENT = SearchAttributeKey.for_bool("AwaitingAgent")

SEARCH_ATTRIBUTES = (
    COMPLAINT_STATUS,
    COMPLAINT_CHANNEL,
    COMPLAINT_SEVERITY,
    COMPLAINT_VERDICT,
    COMPLAINT_ROOT_CAUSE,
    CUSTOMER_ID,
    JURISDICTION,
    SLA_DUE_AT,
    SLA_BREACHED,
    AWAITING_AGENT,
)
