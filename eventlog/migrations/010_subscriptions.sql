-- Catch-up subscriptions (eventlog/subscriptions.py): consumers of the log in global order, each with its
-- position kept here. They are woken by a notification on the channel complaint_events, which the store sends
-- after each append has committed, as a statement of its own: NOTIFY inside the append's transaction would
-- hold the cluster-wide notification lock across the commit's WAL flush, and so serialise the commits of
-- appends that no longer wait for each other (009).
--
-- A consumer's position is the cursor (tx, position) of the last event it handled. It moves only forward,
-- and only through advance_complaint_consumer: two instances of one consumer racing over the same events
-- cannot both move it past them, so a consumer whose handler writes to this database in the same
-- transaction as its position applies each event exactly once (the loser's transaction is refused whole).
CREATE TABLE IF NOT EXISTS complaint_consumers (
    name        text        PRIMARY KEY,
    tx          bigint      NOT NULL,
    position    bigint      NOT NULL,
    events      bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE OR REPLACE FUNCTION advance_complaint_consumer(p_name text, p_from_tx bigint, p_from_position bigint,
                                                      p_tx bigint, p_position bigint, p_events bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    moved integer;
BEGIN
    IF (p_tx, p_position) <= (p_from_tx, p_from_position) THEN
        RAISE EXCEPTION 'consumer %: a position moves forward only', p_name USING ERRCODE = 'CE020';
    END IF;
    IF (p_from_tx, p_from_position) = (0, 0) THEN
        INSERT INTO complaint_consumers (name, tx, position, events) VALUES (p_name, p_tx, p_position, p_events)
        ON CONFLICT (name) DO NOTHING;
    ELSE
        UPDATE complaint_consumers SET tx = p_tx, position = p_position, events = events + p_events,
                                       updated_at = clock_timestamp()
         WHERE name = p_name AND tx = p_from_tx AND position = p_from_position;
    END IF;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved = 0 THEN
        RAISE EXCEPTION 'consumer % is no longer at (%, %): another instance handled these events',
            p_name, p_from_tx, p_from_position USING ERRCODE = 'CE021';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION advance_complaint_consumer(text, bigint, bigint, bigint, bigint, bigint) FROM PUBLIC;
