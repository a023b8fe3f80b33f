-- One data key per customer, wrapped with the master key (COMPLAINTS_MASTER_KEY) so a dump of the database
-- alone opens nothing. Personal fields in event payloads are sealed with these keys; erasing a customer
-- destroys their keys (wrapped_key becomes NULL), and with them every personal field, while the events,
-- whose hashes cover the sealed text, still verify.
CREATE TABLE IF NOT EXISTS complaint_customer_keys (
    key_id      text        PRIMARY KEY,
    customer_id text        NOT NULL,
    wrapped_key bytea,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    erased_at   timestamptz,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);

-- At most one live key per customer, so two workers sealing for a new customer at once agree on one.
CREATE UNIQUE INDEX IF NOT EXISTS complaint_customer_keys_live
    ON complaint_customer_keys (customer_id) WHERE erased_at IS NULL;

-- A destroyed key stays destroyed.
CREATE OR REPLACE FUNCTION complaint_customer_keys_stay_erased() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.erased_at IS NOT NULL THEN
        RAISE EXCEPTION 'key % of customer % was destroyed and cannot come back', OLD.key_id, OLD.customer_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.wrapped_key IS NOT NULL OR NEW.erased_at IS NULL THEN
        RAISE EXCEPTION 'a customer key can only be destroyed, not changed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER complaint_customer_keys_only_erase
    BEFORE UPDATE ON complaint_customer_keys
    FOR EACH ROW EXECUTE FUNCTION complaint_customer_keys_stay_erased();
