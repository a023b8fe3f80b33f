-- The second witness after Temporal's retention: for each closed complaint, what its workflow's history
-- witnessed (every sequence's hash, so the head too), recorded by `complaints archive` (audit/verify.py) before
-- retention removes the history, and signed with the seal key as a signed note. Once the history is gone,
-- `complaints verify` compares the log with this row: a deleted tail or a rewritten event of an old closed
-- complaint is still named at its sequence.
--
-- Written only through record_complaint_witness, granted to the sealer role (eventlog/migrate.py): the
-- auditor-side job that already signs checkpoints. The application role reads it (verify runs as it) and
-- writes nothing. Append-only: an archived witness is never changed; a superuser who changes one anyway breaks
-- its signature.
CREATE TABLE IF NOT EXISTS complaint_witness_archive (
    complaint_id   text        PRIMARY KEY,
    workflow_id    text        NOT NULL,
    -- The runs that witnessed the log (first to last), as the log records them.
    run_ids        text[]      NOT NULL,
    final_sequence integer     NOT NULL CHECK (final_sequence > 0),
    final_hash     char(64)    NOT NULL,
    -- hashes[i] is the hash of event #i: a rewrite is named at its sequence, not only at the head.
    hashes         text[]      NOT NULL CHECK (cardinality(hashes) = final_sequence),
    -- How the workflow ended (completed, failed, terminated, ...).
    closed_as      text        NOT NULL,
    -- SHA-256 over the runs' histories as Temporal returned them (protobuf, deterministic): whoever kept an
    -- export of the history can show it is the one that was witnessed. The history itself is not kept here:
    -- its payloads hold personal data, which retention is there to remove.
    history_sha256 char(64)    NOT NULL,
    archived_at    timestamptz NOT NULL,
    public_key     text        NOT NULL,
    note           text        NOT NULL,
    recorded_by    text        NOT NULL
);

CREATE OR REPLACE TRIGGER complaint_witness_archive_append_only
    BEFORE UPDATE OR DELETE ON complaint_witness_archive
    FOR EACH ROW EXECUTE FUNCTION complaint_events_refuse_change();

CREATE OR REPLACE TRIGGER complaint_witness_archive_no_truncate
    BEFORE TRUNCATE ON complaint_witness_archive
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_events_refuse_change();

-- Store one archived witness. A complaint archived already keeps its row (returns false): the archiver then
-- compares the stored row with the one it signed, and never reports a planted row as its own.
CREATE OR REPLACE FUNCTION record_complaint_witness(
    p_complaint_id text, p_workflow_id text, p_run_ids text[], p_final_sequence integer, p_final_hash text,
    p_hashes text[], p_closed_as text, p_history_sha256 text, p_archived_at timestamptz, p_public_key text,
    p_note text
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    written integer;
BEGIN
    IF p_hashes IS NULL OR cardinality(p_hashes) <> p_final_sequence OR p_hashes[p_final_sequence] <> p_final_hash THEN
        RAISE EXCEPTION 'an archived witness holds every event''s hash, the last being its head'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO complaint_witness_archive (complaint_id, workflow_id, run_ids, final_sequence, final_hash, hashes,
                                           closed_as, history_sha256, archived_at, public_key, note, recorded_by)
    VALUES (p_complaint_id, p_workflow_id, p_run_ids, p_final_sequence, p_final_hash, p_hashes, p_closed_as,
            p_history_sha256, p_archived_at, p_public_key, p_note, session_user)
    ON CONFLICT (complaint_id) DO NOTHING;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written = 1;
END
$$;
REVOKE ALL ON FUNCTION record_complaint_witness(text, text, text[], integer, text, text[], text, text, timestamptz,
                                                text, text) FROM PUBLIC;
