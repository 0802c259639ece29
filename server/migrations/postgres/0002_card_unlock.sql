-- The card-unlock half of a journey; in step with ../sqlite/0002_card_unlock.sql.

ALTER TABLE journeys ADD COLUMN card_serial TEXT;
ALTER TABLE journeys ADD COLUMN card_accepted_at BIGINT;
ALTER TABLE journeys ADD COLUMN last_challenge BYTEA;
ALTER TABLE journeys ADD COLUMN cryptograms_released BIGINT NOT NULL DEFAULT 0;
ALTER TABLE journeys ADD COLUMN closed_reason TEXT
    CHECK (closed_reason IN ('unlocked', 'too_many_attempts'));
ALTER TABLE journeys ADD COLUMN closed_at BIGINT;

-- Every challenge a cryptogram was released for, per card, kept for good (only a hash).
CREATE TABLE card_challenges (
    serial          TEXT NOT NULL,
    challenge_hash  BYTEA NOT NULL,           -- SHA-256 of the 16 challenge bytes
    journey_id      BIGINT REFERENCES journeys (id) ON DELETE SET NULL,
    released_at     BIGINT NOT NULL,
    PRIMARY KEY (serial, challenge_hash)
);
