-- Staff accounts, their sessions, and the indexes the status view reads by.

CREATE TABLE staff_accounts (
    username              TEXT PRIMARY KEY,       -- lower-case a-z 0-9 . _ -
    role                  TEXT NOT NULL CHECK (role IN ('support', 'ra', 'ra-manager')),
    holder_id             TEXT,                   -- their own smartcard profile: no actions on it
    password_hash         TEXT NOT NULL,          -- Argon2id PHC string
    must_change_password  INTEGER NOT NULL DEFAULT 1,
    totp_secret           BLOB NOT NULL,          -- sealed with the server secret
    totp_last_step        INTEGER NOT NULL DEFAULT 0, -- the last code's time step: no replay
    created_at            INTEGER NOT NULL,
    created_by            TEXT NOT NULL,
    password_changed_at   INTEGER,
    disabled_at           INTEGER
);

CREATE TABLE staff_sessions (
    token_hash    BLOB PRIMARY KEY,               -- SHA-256 of the cookie token
    username      TEXT NOT NULL REFERENCES staff_accounts (username) ON DELETE CASCADE,
    stage         TEXT NOT NULL CHECK (stage IN ('second_factor', 'new_password', 'active')),
    client_addr   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL                -- the absolute end, whatever the activity
) WITHOUT ROWID;
CREATE INDEX staff_sessions_by_user ON staff_sessions (username);

-- Whose profile a message concerns, so staff can see every email a holder was sent
-- (addresses come and go).
ALTER TABLE outbox ADD COLUMN holder_id TEXT;
CREATE INDEX outbox_by_holder ON outbox (holder_id, id);

-- The overview and the report count audited steps of one kind over a range of days, the
-- journeys that ran out of time and the outbox's finished messages.
CREATE INDEX audit_events_by_outcome ON audit_events (action, outcome, at);
CREATE INDEX journeys_by_expiry ON journeys (expires_at);
CREATE INDEX outbox_finished ON outbox (state, kind, finished_at);
