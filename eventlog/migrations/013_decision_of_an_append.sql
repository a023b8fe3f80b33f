-- The decision an append records: the update whose handler decided the batch (NULL for the workflow's own
-- decisions: the clock, an activity's outcome). Not part of the chain (it names a request, not what happened),
-- it lets a run that lost the workflow task of a local append answer that update when it is sent again.
--
-- Why: with local appends, an append commits before the workflow task that made it completes. When Temporal
-- loses that task (the server killed), the run decides again from what Temporal kept, and its inputs may now
-- come in another order: it may decide something else at the same place. The log keeps what it stored; the
-- run folds that batch (its own, from the same head) and decides again on top of it, and the update that had
-- decided it, sent again by its caller under the same id, is answered as recorded (activities/eventlog.py,
-- workflows/complaint.py).
ALTER TABLE complaint_events ADD COLUMN IF NOT EXISTS update_id text;

-- The append, as in 009, with the update id (defaulted, so that a worker of the version before, calling with
-- eleven arguments, still appends during a rolling upgrade).
DROP FUNCTION IF EXISTS append_complaint_events(text, integer[], text[], integer[], timestamptz[], text[], jsonb[],
                                                text[], text[], text, text);
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
    p_run_id       text,
    p_update_id    text DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    written      integer;
    first_seq    integer := p_sequences[1];
    stored_prev  text;
    divergent_at integer;
BEGIN
    -- An update id is Temporal's (at most 1,000 characters there): nothing else is stored beside the events.
    IF p_update_id IS NOT NULL AND (length(p_update_id) = 0 OR length(p_update_id) > 1000) THEN
        RAISE EXCEPTION 'an update id is 1 to 1000 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(8034511211);

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
                                  prev_hash, hash, workflow_id, run_id, update_id)
    SELECT p_complaint_id, n.sequence, n.type, n.version, n.occurred_at, n.actor, n.payload,
           n.prev_hash, n.hash, p_workflow_id, p_run_id, p_update_id
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

REVOKE ALL ON FUNCTION append_complaint_events(text, integer[], text[], integer[], timestamptz[], text[], jsonb[],
                                               text[], text[], text, text, text) FROM PUBLIC;
