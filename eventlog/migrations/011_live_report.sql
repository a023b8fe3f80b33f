-- The live report (audit/live.py): the figures of `complaints report` kept by the consumer `report` of the log
-- (010), written in the transaction that moves its position: the figures taken so far, and the folded state
-- (no personal data) of each complaint still open. Derived data: the application role writes it, and may
-- start it again from the beginning of the log (`complaints report --rebuild`).
CREATE TABLE IF NOT EXISTS complaint_report_figures (
    id       integer PRIMARY KEY CHECK (id = 1),
    figures  jsonb   NOT NULL
);
CREATE TABLE IF NOT EXISTS complaint_report_open (
    complaint_id  text  PRIMARY KEY,
    state         jsonb NOT NULL
);

-- Forget the live figures and the consumer's position, together: the next catch-up folds the whole log.
CREATE OR REPLACE FUNCTION restart_complaint_report() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM complaint_report_figures;
    DELETE FROM complaint_report_open;
    DELETE FROM complaint_consumers WHERE name = 'report';
END
$$;
REVOKE ALL ON FUNCTION restart_complaint_report() FROM PUBLIC;
