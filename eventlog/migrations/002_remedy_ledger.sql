-- Remedies to fulfil, one row per (complaint, option): the default remedy provider writes here, and the
-- business's voucher, refund or dispatch systems execute what it holds. The key makes fulfilment
-- idempotent: asking twice returns the first row's reference.
CREATE TABLE IF NOT EXISTS complaint_remedy_fulfilments (
    complaint_id text        NOT NULL,
    option_id    text        NOT NULL,
    kind         text        NOT NULL,
    amount_minor bigint      NOT NULL CHECK (amount_minor >= 0),
    currency     char(3)     NOT NULL,
    description  text        NOT NULL,
    reference    text        NOT NULL UNIQUE,
    ordered_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (complaint_id, option_id)
);
