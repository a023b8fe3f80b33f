-- The complaint event log: append-only, hash-chained, one row per event.

CREATE TABLE IF NOT EXISTS complaint_events (
    complaint_id   text        NOT NULL,
    sequence       integer     NOT NULL CHECK (sequence > 0),
    type           text        NOT NULL,
    schema_version integer     NOT NULL CHECK (schema_version > 0),
    occurred_at    timestamptz NOT NULL,
    actor          text        NOT NULL,
    payload        jsonb       NOT NULL,
    prev_hash      char(64)    NOT NULL,
    hash           char(64)    NOT NULL,
    -- Global order for catch-up readers (reports, projections). See append_complaint_events on why
    -- positions become visible in order.
    position       bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    workflow_id    text        NOT NULL,
    run_id         text        NOT NULL,
    PRIMARY KEY (complaint_id, sequence)
);

CREATE OR REPLACE FUNCTION complaint_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'complaint_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Events are facts: record a new event instead of changing an old one.';
END
$$;

CREATE OR REPLACE TRIGGER complaint_events_append_only
    BEFORE UPDATE OR DELETE ON complaint_events
    FOR EACH ROW EXECUTE FUNCTION complaint_events_refuse_change();

CREATE OR REPLACE TRIGGER complaint_events_no_truncate
    BEFORE TRUNCATE ON complaint_events
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_events_refuse_change();

-- Append a chained batch for one complaint, idempotently.
--   * Rows already stored at the same (complaint_id, sequence) with the same hash: a retry, written again
--     as nothing. With another hash: divergent history (SQLSTATE CE001), and nothing of the batch is kept.
--   * The batch must continue the stored chain: its first prev_hash is the hash stored just before it
--     (SQLSTATE CE002 otherwise), so no gap can be written.
-- Why the advisory lock: an identity value is taken when a row is inserted but becomes visible when its
-- transaction commits, so two concurrent appends could commit positions out of order, and a catch-up
-- reader that has passed position N would never see a smaller one committed later. Serialising appends
-- for the instant of insert-and-commit makes positions visible in order (the eventsourcing library locks
-- its table for the same reason). Appends are short; the lock is held for microseconds of work.
CREATE OR REPLACE FUNCTION append_complaint_events(
    p_complaint_id text,
    p_sequences    integer[],
    p_types        text[],
    p_versions     integer[],
    p_occurred_at  timestamptz[],
    p_actors       text[],
    p_payloads     jsonb[],
    p_prev_hashes  text[],
    p_hashes       text[],
    p_workflow_id  text,
    p_run_id       text
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written      integer;
    first_seq    integer := p_sequences[1];
    stored_prev  text;
    divergent_at integer;
BEGIN
    PERFORM pg_advisory_xact_lock(8034511211);

    IF first_seq > 1 THEN
        SELECT hash INTO stored_prev FROM complaint_events
         WHERE complaint_id = p_complaint_id AND sequence = first_seq - 1;
        IF stored_prev IS NULL THEN
            RAISE EXCEPTION 'complaint % has no event #% to follow', p_complaint_id, first_seq - 1
                USING ERRCODE = 'CE002';
        END IF;
        IF stored_prev <> p_prev_hashes[1] THEN
            RAISE EXCEPTION 'event #% of complaint % does not follow the stored chain', first_seq, p_complaint_id
                USING ERRCODE = 'CE002';
        END IF;
    END IF;

    INSERT INTO complaint_events (complaint_id, sequence, type, schema_version, occurred_at, actor, payload,
                                  prev_hash, hash, workflow_id, run_id)
    SELECT p_complaint_id, n.sequence, n.type, n.version, n.occurred_at, n.actor, n.payload,
           n.prev_hash, n.hash, p_workflow_id, p_run_id
      FROM unnest(p_sequences, p_types, p_versions, p_occurred_at, p_actors, p_payloads, p_prev_hashes, p_hashes)
           AS n(sequence, type, version, occurred_at, actor, payload, prev_hash, hash)
    ON CONFLICT (complaint_id, sequence) DO NOTHING;
    GET DIAGNOSTICS written = ROW_COUNT;

    IF written < cardinality(p_sequences) THEN
        SELECT e.sequence INTO divergent_at
          FROM complaint_events e
          JOIN unnest(p_sequences, p_hashes) AS n(sequence, hash) ON e.sequence = n.sequence
         WHERE e.complaint_id = p_complaint_id AND e.hash <> n.hash
         ORDER BY e.sequence LIMIT 1;
        IF divergent_at IS NOT NULL THEN
            RAISE EXCEPTION 'divergent history: complaint % already has a different event #%',
                p_complaint_id, divergent_at
                USING ERRCODE = 'CE001';
        END IF;
    END IF;
    RETURN written;
END
$$;

CREATE INDEX IF NOT EXISTS complaint_events_type ON complaint_events (type);
