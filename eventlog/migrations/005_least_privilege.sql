-- Least privilege: the application role writes nothing directly. Each write goes through a function owned by
-- the schema owner (SECURITY DEFINER, with a fixed search_path so no object of the caller's can stand in for
-- ours), and EXECUTE on each is granted to the one role that needs it (eventlog/migrate.py):
--   append_complaint_events      the application role (the workers): the chain check and the ordering lock
--   complaint_customer_key       the application role: a customer's key, created once on first use
--   record_complaint_checkpoint  the sealer role (complaints seal)
--   erase_complaint_customer     the eraser role (complaints erase-customer): one customer, recorded
-- PUBLIC may execute none of them (PostgreSQL grants EXECUTE on new functions to PUBLIC by default).

ALTER FUNCTION append_complaint_events(text, integer[], text[], integer[], timestamptz[], text[], jsonb[], text[],
                                       text[], text, text)
    SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE ALL ON FUNCTION append_complaint_events(text, integer[], text[], integer[], timestamptz[], text[], jsonb[],
                                               text[], text[], text, text) FROM PUBLIC;

-- A customer's live data key, created on first use: two workers racing agree on one (the unique index).
CREATE OR REPLACE FUNCTION complaint_customer_key(p_customer_id text, p_key_id text, p_wrapped_key bytea)
RETURNS TABLE (key_id text, wrapped_key bytea)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_customer_id IS NULL OR length(p_customer_id) = 0 OR p_wrapped_key IS NULL THEN
        RAISE EXCEPTION 'a customer key needs a customer id and a wrapped key' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO complaint_customer_keys AS k (key_id, customer_id, wrapped_key)
    VALUES (p_key_id, p_customer_id, p_wrapped_key)
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT k.key_id, k.wrapped_key FROM complaint_customer_keys k
                  WHERE k.customer_id = p_customer_id AND k.erased_at IS NULL;
END
$$;
REVOKE ALL ON FUNCTION complaint_customer_key(text, text, bytea) FROM PUBLIC;

-- Erasures, themselves on the record: who asked, on what legal basis, which database user ran it, when, and
-- how many keys were destroyed. Written in the transaction that destroys the key; append-only.
CREATE TABLE IF NOT EXISTS complaint_erasures (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id    text        NOT NULL,
    requested_by   text        NOT NULL CHECK (length(btrim(requested_by)) > 0),
    legal_basis    text        NOT NULL CHECK (length(btrim(legal_basis)) > 0),
    database_user  text        NOT NULL,
    erased_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    keys_destroyed integer     NOT NULL
);

CREATE OR REPLACE TRIGGER complaint_erasures_append_only
    BEFORE UPDATE OR DELETE ON complaint_erasures
    FOR EACH ROW EXECUTE FUNCTION complaint_events_refuse_change();

CREATE OR REPLACE TRIGGER complaint_erasures_no_truncate
    BEFORE TRUNCATE ON complaint_erasures
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_events_refuse_change();

-- Crypto-shredding of one customer per call, with its record. Erasing an already erased customer destroys
-- nothing more, and is recorded all the same (the request was made).
CREATE OR REPLACE FUNCTION erase_complaint_customer(p_customer_id text, p_requested_by text, p_legal_basis text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    destroyed integer;
BEGIN
    IF p_customer_id IS NULL OR length(btrim(p_customer_id)) = 0 THEN
        RAISE EXCEPTION 'erasure names one customer' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_requested_by IS NULL OR length(btrim(p_requested_by)) = 0
       OR p_legal_basis IS NULL OR length(btrim(p_legal_basis)) = 0 THEN
        RAISE EXCEPTION 'erasure is recorded with who asked for it and its legal basis'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE complaint_customer_keys SET wrapped_key = NULL, erased_at = clock_timestamp()
     WHERE customer_id = p_customer_id AND erased_at IS NULL;
    GET DIAGNOSTICS destroyed = ROW_COUNT;
    INSERT INTO complaint_erasures (customer_id, requested_by, legal_basis, database_user, keys_destroyed)
    VALUES (p_customer_id, p_requested_by, p_legal_basis, session_user, destroyed);
    RETURN destroyed;
END
$$;
REVOKE ALL ON FUNCTION erase_complaint_customer(text, text, text) FROM PUBLIC;

-- Checkpoints in the C2SP tlog-checkpoint signed-note shape: the note as signed is kept beside the fields
-- (rows sealed before this migration have none, and are checked as they were signed).
ALTER TABLE complaint_checkpoints ADD COLUMN IF NOT EXISTS note text;

-- Store a checkpoint. No ON CONFLICT: a row already at that position (planted, or sealed before) is an error
-- the sealer sees, never a row it would print as its own.
CREATE OR REPLACE FUNCTION record_complaint_checkpoint(
    p_position bigint, p_events bigint, p_complaints integer, p_root text, p_sealed_at timestamptz,
    p_public_key text, p_signature text, p_note text
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO complaint_checkpoints (position, events, complaints, root, sealed_at, public_key, signature, note)
    VALUES (p_position, p_events, p_complaints, p_root, p_sealed_at, p_public_key, p_signature, p_note);
END
$$;
REVOKE ALL ON FUNCTION record_complaint_checkpoint(bigint, bigint, integer, text, timestamptz, text, text, text)
    FROM PUBLIC;
