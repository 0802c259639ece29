-- Leaner outbox indexes (issue 10, the PostgreSQL benchmark). In step with
-- ../sqlite/0010_lean_outbox_indexes.sql.
--
-- Every code email is a row inserted, claimed and updated once sent, so every index on the
-- outbox is written up to three times per journey started. Each index now holds only the rows
-- its readers look for:
-- - `outbox_due`: queued rows, in the order the worker claims them (`next_attempt_at, id`),
--   so a claim reads the first few entries instead of sorting every queued row, and a sent
--   row leaves it;
-- - `outbox_finished`: rows that finished (the overview's and retention's reads all bound
--   `finished_at`), so queuing a row does not write it;
-- - `outbox_by_gateway_message`: texts the SMS gateway accepted.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'queued';
DROP INDEX outbox_finished;
CREATE INDEX outbox_finished ON outbox (state, kind, finished_at) WHERE finished_at IS NOT NULL;
DROP INDEX outbox_by_gateway_message;
CREATE INDEX outbox_by_gateway_message ON outbox (gateway_message_id)
    WHERE gateway_message_id IS NOT NULL;

-- A sealed message is ciphertext: PostgreSQL's attempt to compress it before moving it out of
-- line only costs time. Room left on each page lets the claim (columns no index holds) update
-- a row in place.
ALTER TABLE outbox ALTER COLUMN sealed_message SET STORAGE EXTERNAL;
ALTER TABLE outbox SET (fillfactor = 80);
