-- Signed checkpoints: at a global position, how many events, how many complaints, and a Merkle root over
-- every complaint's chain head. Each is also printed for publishing elsewhere, so a superuser who rewrites
-- the log (or this table) is caught by anyone holding a published checkpoint.
CREATE TABLE IF NOT EXISTS complaint_checkpoints (
    position   bigint      PRIMARY KEY,
    events     bigint      NOT NULL,
    complaints integer     NOT NULL,
    root       char(64)    NOT NULL,
    sealed_at  timestamptz NOT NULL,
    public_key text        NOT NULL,
    signature  text        NOT NULL
);

CREATE OR REPLACE TRIGGER complaint_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON complaint_checkpoints
    FOR EACH ROW EXECUTE FUNCTION complaint_events_refuse_change();

CREATE OR REPLACE TRIGGER complaint_checkpoints_no_truncate
    BEFORE TRUNCATE ON complaint_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_events_refuse_change();
