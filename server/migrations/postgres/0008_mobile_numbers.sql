-- Codes by text message: the mobile numbers on holders' profiles (E.164, like +447700900123),
-- kept as the addresses are (one profile per number, the same four-eyes columns), and the
-- outbox's channel with what the SMS gateway said of each text: the id it gave the message
-- and the state its delivery receipt reported. In step with ../sqlite/0008_mobile_numbers.sql.

CREATE TABLE holder_mobiles (
    number                   TEXT PRIMARY KEY,   -- E.164
    holder_id                TEXT NOT NULL REFERENCES holders (id) ON DELETE CASCADE,
    added_at                 BIGINT NOT NULL,
    added_by                 TEXT NOT NULL,
    awaiting_approval_since  BIGINT,
    approved_by              TEXT,
    approved_at              BIGINT
);
CREATE INDEX holder_mobiles_by_holder ON holder_mobiles (holder_id);

-- Each CHECK on a line of its own: SQLite keeps the column's text as written.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email'
    CHECK (channel IN ('email', 'sms'));
-- The gateway's message_id from its submit_sm_resp; receipts name the message by it.
ALTER TABLE outbox ADD COLUMN gateway_message_id TEXT;
-- The state the last delivery receipt reported (SMPP message_state), and when it came.
ALTER TABLE outbox ADD COLUMN delivery_state TEXT
    CHECK (delivery_state IN ('delivered', 'expired', 'deleted', 'undeliverable', 'accepted', 'unknown', 'rejected'));
ALTER TABLE outbox ADD COLUMN delivery_reported_at BIGINT;
CREATE INDEX outbox_by_gateway_message ON outbox (gateway_message_id);
