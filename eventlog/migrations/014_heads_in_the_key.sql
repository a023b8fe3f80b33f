-- Each event's hash rides in the primary key's index (INCLUDE: stored in the leaf, not part of the key).
--
-- Why: `verify --since-checkpoint` proves every head the checkpoint sealed is still stored with its hash, one
-- lookup per complaint. With the hash only in the table, each lookup read a heap page of its own (62,500
-- complaints of a 1M-event log: about a second); from the index alone it is an index-only scan, the pages in
-- key order (about a third of that). The append's check of the head it continues reads it the same way.
-- The key, its uniqueness and the appends' ON CONFLICT (complaint_id, sequence) are unchanged; the index is
-- about three times as large (a hash is 64 characters). Rebuilt under the migration's lock: on a large log,
-- run it in a quiet window.
ALTER TABLE complaint_events
    DROP CONSTRAINT complaint_events_pkey,
    ADD CONSTRAINT complaint_events_pkey PRIMARY KEY (complaint_id, sequence) INCLUDE (hash);
