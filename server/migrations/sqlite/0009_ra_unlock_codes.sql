-- RA-assisted remote unlock (issue 14, item 2). In step with
-- ../postgres/0009_ra_unlock_codes.sql.
--
-- A holder who can reach no address on their profile phones their Registration Authority.
-- The RA records how they verified the holder and issues a one-time unlock code, read out
-- over the phone; the holder types it into the app instead of an emailed code. Only a keyed
-- hash of the code is stored (the code itself is shown to the RA once and never kept). A
-- code is bound to one holder, lives 30 minutes, works once, and a newer code for the same
-- holder supersedes the older one. `journey_id` names the journey it opened, so the overview
-- can count the unlocks done with an RA's help.
CREATE TABLE ra_unlock_codes (
    id            INTEGER PRIMARY KEY,
    holder_id     TEXT NOT NULL REFERENCES holders (id) ON DELETE CASCADE,
    code_mac      BLOB NOT NULL UNIQUE,       -- keyed hash only
    issued_by     TEXT NOT NULL,              -- 'staff:<username>'
    verified_how  TEXT NOT NULL,              -- the RA's choice of how they verified the holder
    note          TEXT NOT NULL,              -- and their note
    issued_at     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('live', 'used', 'voided', 'superseded')),
    used_at       INTEGER,
    journey_id    INTEGER REFERENCES journeys (id) ON DELETE SET NULL
);
CREATE INDEX ra_unlock_codes_by_holder ON ra_unlock_codes (holder_id, state);
CREATE INDEX ra_unlock_codes_by_journey ON ra_unlock_codes (journey_id);
