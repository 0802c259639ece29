-- piv/1 cards; in step with ../sqlite/0004_piv.sql, which says what each column is for.
ALTER TABLE cards ADD COLUMN puk_sealed BYTEA;
ALTER TABLE cards ADD COLUMN puk_pending_sealed BYTEA;
ALTER TABLE cards ADD COLUMN puk_generation BIGINT NOT NULL DEFAULT 0;

ALTER TABLE journeys ADD COLUMN possession_nonce BYTEA;
ALTER TABLE journeys ADD COLUMN possession_key BYTEA;
ALTER TABLE journeys ADD COLUMN receipt_key BYTEA;
