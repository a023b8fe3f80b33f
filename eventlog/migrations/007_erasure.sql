-- Erasure that holds (README, "Personal data"):
--   * a customer once erased gets no key again, so no personal data of theirs is sealed (or kept) after it
--     (complaint_customer_key refuses with SQLSTATE CE010);
--   * an erasure is refused while a complaint of the customer is open: its workflow would go on writing
--     about them (erase_complaint_customer refuses with SQLSTATE CE011, naming the open complaints);
--   * key creation and erasure of one customer never interleave (one advisory lock per customer);
--   * customer keys can be re-wrapped under a newer master key (rewrap_complaint_customer_key, granted to the
--     eraser role: the custodian of customer keys), the key itself unchanged; a destroyed key stays destroyed.
-- Signatures of the existing functions are unchanged, so their grants (005, eventlog/migrate.py) stay.

-- Whose complaint it is: the customer id is kept in plaintext in the first event's payload.
CREATE INDEX IF NOT EXISTS complaint_events_customer
    ON complaint_events ((payload->>'customer_id')) WHERE sequence = 1;
CREATE INDEX IF NOT EXISTS complaint_erasures_customer ON complaint_erasures (customer_id);

-- A customer's live data key, created on first use; never for a customer who was erased.
CREATE OR REPLACE FUNCTION complaint_customer_key(p_customer_id text, p_key_id text, p_wrapped_key bytea)
RETURNS TABLE (key_id text, wrapped_key bytea)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_customer_id IS NULL OR length(p_customer_id) = 0 OR p_wrapped_key IS NULL THEN
        RAISE EXCEPTION 'a customer key needs a customer id and a wrapped key' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('complaint-customer:' || p_customer_id, 8034511213));
    IF EXISTS (SELECT 1 FROM complaint_erasures e WHERE e.customer_id = p_customer_id) THEN
        RAISE EXCEPTION 'customer % was erased: no personal data of theirs is kept again', p_customer_id
            USING ERRCODE = 'CE010',
                  HINT = 'A returning customer is a new customer: give them a new customer id.';
    END IF;
    INSERT INTO complaint_customer_keys AS k (key_id, customer_id, wrapped_key)
    VALUES (p_key_id, p_customer_id, p_wrapped_key)
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT k.key_id, k.wrapped_key FROM complaint_customer_keys k
                  WHERE k.customer_id = p_customer_id AND k.erased_at IS NULL;
END
$$;
REVOKE ALL ON FUNCTION complaint_customer_key(text, text, bytea) FROM PUBLIC;

-- Crypto-shredding of one customer per call, with its record; refused while a complaint of theirs is open
-- (its last event is not ComplaintClosed). Erasing an already erased customer destroys nothing more, and is
-- recorded all the same (the request was made).
CREATE OR REPLACE FUNCTION erase_complaint_customer(p_customer_id text, p_requested_by text, p_legal_basis text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    destroyed integer;
    still_open text;
BEGIN
    IF p_customer_id IS NULL OR length(btrim(p_customer_id)) = 0 THEN
        RAISE EXCEPTION 'erasure names one customer' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_requested_by IS NULL OR length(btrim(p_requested_by)) = 0
       OR p_legal_basis IS NULL OR length(btrim(p_legal_basis)) = 0 THEN
        RAISE EXCEPTION 'erasure is recorded with who asked for it and its legal basis'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('complaint-customer:' || p_customer_id, 8034511213));
    -- The appends' lock (001): an append in flight commits before the log is read below.
    PERFORM pg_advisory_xact_lock(8034511211);
    SELECT string_agg(c.complaint_id, ', ' ORDER BY c.complaint_id) INTO still_open
      FROM complaint_events c
     WHERE c.sequence = 1 AND c.type = 'ComplaintReceived' AND c.payload->>'customer_id' = p_customer_id
       AND (SELECT e.type FROM complaint_events e WHERE e.complaint_id = c.complaint_id
             ORDER BY e.sequence DESC LIMIT 1) <> 'ComplaintClosed';
    IF still_open IS NOT NULL THEN
        RAISE EXCEPTION 'customer % has open complaints (%): withdraw or close them first, then erase',
            p_customer_id, still_open
            USING ERRCODE = 'CE011';
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

-- A destroyed key stays destroyed; a live key can be destroyed, or re-wrapped by the function below, and
-- nothing else about a key ever changes.
CREATE OR REPLACE FUNCTION complaint_customer_keys_stay_erased() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.erased_at IS NOT NULL THEN
        RAISE EXCEPTION 'key % of customer % was destroyed and cannot come back', OLD.key_id, OLD.customer_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.key_id IS DISTINCT FROM OLD.key_id OR NEW.customer_id IS DISTINCT FROM OLD.customer_id
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'a customer key can only be destroyed, not changed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.wrapped_key IS NULL AND NEW.erased_at IS NOT NULL THEN
        RETURN NEW;  -- destroyed
    END IF;
    IF NEW.wrapped_key IS NOT NULL AND NEW.erased_at IS NULL
       AND current_setting('complaints.rewrap_key', true) = OLD.key_id THEN
        RETURN NEW;  -- re-wrapped under a newer master key, by rewrap_complaint_customer_key
    END IF;
    RAISE EXCEPTION 'a customer key can only be destroyed, not changed' USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Master key rotation: store a live key wrapped anew, only if it is still wrapped as the caller read it
-- (so a key destroyed or re-wrapped meanwhile is left alone). The database cannot check that both wrap the
-- same key; `complaints rotate-master-key` unwraps both before it calls this.
CREATE OR REPLACE FUNCTION rewrap_complaint_customer_key(p_key_id text, p_old_wrapped bytea, p_new_wrapped bytea)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    changed integer;
BEGIN
    IF p_key_id IS NULL OR p_old_wrapped IS NULL OR p_new_wrapped IS NULL OR length(p_new_wrapped) < 60 THEN
        RAISE EXCEPTION 'a re-wrap names the key, its wrapping as read and a new wrapping'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('complaints.rewrap_key', p_key_id, true);
    UPDATE complaint_customer_keys SET wrapped_key = p_new_wrapped
     WHERE key_id = p_key_id AND erased_at IS NULL AND wrapped_key = p_old_wrapped;
    GET DIAGNOSTICS changed = ROW_COUNT;
    PERFORM set_config('complaints.rewrap_key', '', true);
    RETURN changed = 1;
END
$$;
REVOKE ALL ON FUNCTION rewrap_complaint_customer_key(text, bytea, bytea) FROM PUBLIC;
