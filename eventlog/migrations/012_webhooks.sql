-- Signed webhooks for backends (webhooks/): each subscription names a URL, the event types it wants (none:
-- every type), the secret its deliveries are signed with, and whether it may see personal fields opened. Its
-- deliveries follow the log as the consumer `webhook:<id>` (010). A delivery that fails past its retry budget
-- is parked here, with every later event of the same complaint behind it (a complaint's events arrive in
-- order), until `complaints webhook replay` delivers them.
CREATE TABLE IF NOT EXISTS complaint_webhooks (
    id          text        PRIMARY KEY,
    url         text        NOT NULL CHECK (url ~ '^https?://'),
    events      text[]      NOT NULL DEFAULT '{}',
    secret      text        NOT NULL,
    personal    boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS complaint_webhook_parked (
    webhook_id    text        NOT NULL REFERENCES complaint_webhooks (id) ON DELETE CASCADE,
    position      bigint      NOT NULL,
    complaint_id  text        NOT NULL,
    attempts      integer     NOT NULL,
    last_error    text        NOT NULL,
    parked_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (webhook_id, position)
);

-- Replaying from a position moves a webhook's consumer back: only a webhook's, never another consumer's.
CREATE OR REPLACE FUNCTION rewind_complaint_webhook(p_webhook_id text, p_tx bigint, p_position bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM complaint_webhooks WHERE id = p_webhook_id) THEN
        RAISE EXCEPTION 'no webhook %', p_webhook_id USING ERRCODE = 'CE030';
    END IF;
    INSERT INTO complaint_consumers (name, tx, position) VALUES ('webhook:' || p_webhook_id, p_tx, p_position)
    ON CONFLICT (name) DO UPDATE SET tx = excluded.tx, position = excluded.position, updated_at = clock_timestamp();
    DELETE FROM complaint_webhook_parked WHERE webhook_id = p_webhook_id;
END
$$;
REVOKE ALL ON FUNCTION rewind_complaint_webhook(text, bigint, bigint) FROM PUBLIC;
