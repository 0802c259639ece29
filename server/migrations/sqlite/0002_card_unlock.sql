-- The card-unlock half of a journey. A verified journey with a card_serial has an accepted
-- card; a closed journey says why it closed. The journey's state keeps the values of 0001.

-- The card the holder presented and the server accepted (16 lower-case hex digits).
ALTER TABLE journeys ADD COLUMN card_serial TEXT;
ALTER TABLE journeys ADD COLUMN card_accepted_at INTEGER;
-- The challenge of the latest cryptogram released, which the card's receipt must answer;
-- cleared once a receipt has been checked against it and when the journey closes.
ALTER TABLE journeys ADD COLUMN last_challenge BLOB;
ALTER TABLE journeys ADD COLUMN cryptograms_released INTEGER NOT NULL DEFAULT 0;
ALTER TABLE journeys ADD COLUMN closed_reason TEXT
    CHECK (closed_reason IN ('unlocked', 'too_many_attempts'));
ALTER TABLE journeys ADD COLUMN closed_at INTEGER;

-- Every challenge a cryptogram was released for, per card, kept for good: a card never
-- repeats a challenge, so one seen again is a replay. Only a hash is kept.
CREATE TABLE card_challenges (
    serial          TEXT NOT NULL,
    challenge_hash  BLOB NOT NULL,            -- SHA-256 of the 16 challenge bytes
    journey_id      INTEGER REFERENCES journeys (id) ON DELETE SET NULL,
    released_at     INTEGER NOT NULL,
    PRIMARY KEY (serial, challenge_hash)
) WITHOUT ROWID;
