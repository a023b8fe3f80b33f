-- Appends that wait together commit together.
--
-- Why: a worker appends for many complaints at once, and each append was a call and a commit of its own:
-- PostgreSQL's time per event went mostly to the call, its transaction and its commit, not to the rows
-- (bench/appends.py). While one append of a worker is in flight, those that arrive meanwhile now go
-- together in its next call (eventlog/store.py): one round trip, one transaction, one commit for all.
--
-- Each batch is appended by append_complaint_events itself, in order, so every check it makes (the chain it
-- continues, divergence, the update id) is made exactly as for a batch alone, and a batch that follows one of
-- the same complaint in the call sees it. Any refusal refuses the whole call and writes nothing; the store
-- then appends each batch alone, so a refused batch never holds back the others.
--
-- The batches come one after another in the per-event arrays; p_sizes says how many events each has, and the
-- per-batch arrays (complaint, workflow, run, update) have one element per batch. Returns how many events of
-- each batch were new, in the batches' order.
CREATE OR REPLACE FUNCTION append_complaint_batches(
    p_sizes         integer[],
    p_complaint_ids text[],
    p_workflow_ids  text[],
    p_run_ids       text[],
    p_update_ids    text[],
    p_sequences     integer[],
    p_types         text[],
    p_versions      integer[],
    p_occurred_at   timestamptz[],
    p_actors        text[],
    p_payloads      jsonb[],
    p_prev_hashes   text[],
    p_hashes        text[]
) RETURNS integer[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    batches integer := coalesce(cardinality(p_sizes), 0);
    events  integer := coalesce(cardinality(p_sequences), 0);
    written integer[] := '{}';
    first   integer := 1;
    last    integer;
BEGIN
    IF batches = 0 OR batches > 1000 THEN
        RAISE EXCEPTION 'a call appends 1 to 1000 batches, not %', batches USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_ndims(p_sizes) <> 1 OR array_lower(p_sizes, 1) <> 1 OR array_position(p_sizes, NULL) IS NOT NULL
       OR EXISTS (SELECT 1 FROM unnest(p_sizes) AS s WHERE s < 1)
       OR (SELECT sum(s) FROM unnest(p_sizes) AS s) <> events THEN
        RAISE EXCEPTION 'p_sizes must count every event once, each batch at least one'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_complaint_ids) IS DISTINCT FROM batches OR cardinality(p_workflow_ids) IS DISTINCT FROM batches
       OR cardinality(p_run_ids) IS DISTINCT FROM batches OR cardinality(p_update_ids) IS DISTINCT FROM batches THEN
        RAISE EXCEPTION 'the complaint, workflow, run and update arrays have one element per batch (%)', batches
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_types) IS DISTINCT FROM events OR cardinality(p_versions) IS DISTINCT FROM events
       OR cardinality(p_occurred_at) IS DISTINCT FROM events OR cardinality(p_actors) IS DISTINCT FROM events
       OR cardinality(p_payloads) IS DISTINCT FROM events OR cardinality(p_prev_hashes) IS DISTINCT FROM events
       OR cardinality(p_hashes) IS DISTINCT FROM events
       OR array_ndims(p_sequences) <> 1 OR array_lower(p_sequences, 1) <> 1 THEN
        RAISE EXCEPTION 'the event arrays have one element per event (%)', events
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR b IN 1 .. batches LOOP
        last := first + p_sizes[b] - 1;
        written := written || append_complaint_events(
            p_complaint_ids[b], p_sequences[first:last], p_types[first:last], p_versions[first:last],
            p_occurred_at[first:last], p_actors[first:last], p_payloads[first:last], p_prev_hashes[first:last],
            p_hashes[first:last], p_workflow_ids[b], p_run_ids[b], p_update_ids[b]);
        first := last + 1;
    END LOOP;
    RETURN written;
END
$$;

REVOKE ALL ON FUNCTION append_complaint_batches(integer[], text[], text[], text[], text[], integer[], text[],
                                                integer[], timestamptz[], text[], jsonb[], text[], text[]) FROM PUBLIC;
