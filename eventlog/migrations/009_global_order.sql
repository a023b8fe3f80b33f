-- Global order without a global lock.
--
-- Until now every append took one advisory lock (001), so that positions became visible in the order they
-- were taken: appends from every worker queued on it. Now each row records the transaction that wrote it
-- (tx, xid8), and readers in global order read only what lies below the oldest transaction still running
-- (pg_snapshot_xmin(pg_current_snapshot())), ordered by (tx, position): everything below that horizon is
-- finished for good, so a catch-up reader that has passed a row never meets an earlier one later (the
-- approach of Emmett and the PostgreSQL outbox literature). A row's position stays its identity.
--
-- Rows written before this migration all receive this migration's transaction id: they are committed, and
-- (tx, position) orders them as position did. Every new row has a larger tx, and a larger position.
ALTER TABLE complaint_events ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX IF NOT EXISTS complaint_events_tx_position ON complaint_events (tx, position);

-- A checkpoint now seals every row below a horizon (tx < horizon), a set no later commit can change. Those
-- sealed before this migration (horizon NULL) cover the rows at or before their position, as they did.
ALTER TABLE complaint_checkpoints ADD COLUMN IF NOT EXISTS horizon bigint;

DROP FUNCTION IF EXISTS record_complaint_checkpoint(bigint, bigint, integer, text, timestamptz, text, text, text);
CREATE OR REPLACE FUNCTION record_complaint_checkpoint(
    p_position bigint, p_events bigint, p_complaints integer, p_root text, p_sealed_at timestamptz,
    p_public_key text, p_signature text, p_note text, p_horizon bigint
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_horizon IS NULL THEN
        RAISE EXCEPTION 'a checkpoint names the horizon it seals below' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO complaint_checkpoints (position, events, complaints, root, sealed_at, public_key, signature, note,
                                       horizon)
    VALUES (p_position, p_events, p_complaints, p_root, p_sealed_at, p_public_key, p_signature, p_note, p_horizon);
END
$$;
REVOKE ALL ON FUNCTION record_complaint_checkpoint(bigint, bigint, integer, text, timestamptz, text, text, text,
                                                   bigint) FROM PUBLIC;

-- The append, as in 001, but without the global lock: appends to different complaints no longer wait for
-- each other. It takes the appends' lock shared only, so that an erasure (which takes it exclusively, 007)
-- still sees every append in flight committed before it reads the log.
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
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    written      integer;
    first_seq    integer := p_sequences[1];
    stored_prev  text;
    divergent_at integer;
BEGIN
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
