-- A remedy is ordered once per (complaint, offer round, option). Option ids restart at A, B, C on every offer,
-- so after a reopening a second offer's "A" is another remedy than the first offer's "A": keying by option id
-- alone returned the first order's reference and never ordered the second. The round is the complaint's
-- reopen count when the offer was made (one assessment, so one offer, per round).
ALTER TABLE complaint_remedy_fulfilments ADD COLUMN IF NOT EXISTS offer_round integer NOT NULL DEFAULT 0;
ALTER TABLE complaint_remedy_fulfilments DROP CONSTRAINT IF EXISTS complaint_remedy_fulfilments_pkey;
ALTER TABLE complaint_remedy_fulfilments ADD PRIMARY KEY (complaint_id, offer_round, option_id);
