-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE holders (
    id            TEXT PRIMARY KEY,          -- the 12-digit user id
    display_name  TEXT NOT NULL DEFAULT '',
    organisation  TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);

CREATE TABLE holder_emails (
    email      TEXT PRIMARY KEY,             -- normalised (lower-case ASCII)
    holder_id  TEXT NOT NULL REFERENCES holders (id) ON DELETE CASCADE,
    added_at   INTEGER NOT NULL,
    added_by   TEXT NOT NULL
);
CREATE INDEX holder_emails_by_holder ON holder_emails (holder_id);

CREATE TABLE cards (
    serial           TEXT PRIMARY KEY,       -- 16 lower-case hex digits
    holder_id        TEXT NOT NULL REFERENCES holders (id) ON DELETE CASCADE,
    status           TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'cancelled')),
    cert_expires_at  INTEGER NOT NULL,
    model            TEXT NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX cards_by_holder ON cards (holder_id);

CREATE TABLE allowed_domains (
    domain    TEXT PRIMARY KEY,
    added_at  INTEGER NOT NULL,
    added_by  TEXT NOT NULL
);

CREATE TABLE journeys (
    id                 INTEGER PRIMARY KEY,
    token_hash         BLOB NOT NULL UNIQUE,  -- SHA-256 of the cookie token
    subject            TEXT NOT NULL,         -- 'holder:<id>' or 'email:<keyed hash>'
    holder_id          TEXT REFERENCES holders (id) ON DELETE SET NULL,
    email              TEXT NOT NULL,
    client_addr        TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('awaiting_code', 'verified', 'ineligible', 'closed')),
    ineligible_reason  TEXT,
    started_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    verified_at        INTEGER,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX journeys_by_holder ON journeys (holder_id, started_at);

CREATE TABLE one_time_codes (
    id           INTEGER PRIMARY KEY,
    journey_id   INTEGER NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
    subject      TEXT NOT NULL,
    code_mac     BLOB NOT NULL,              -- keyed hash only; the code itself is never stored
    issued_at    INTEGER NOT NULL,
    wrong_tries  INTEGER NOT NULL DEFAULT 0,
    state        TEXT NOT NULL CHECK (state IN ('live', 'used', 'voided', 'superseded'))
);
CREATE INDEX one_time_codes_by_journey ON one_time_codes (journey_id, id);
CREATE INDEX one_time_codes_by_subject ON one_time_codes (subject, issued_at);

CREATE TABLE throttles (
    scope                TEXT NOT NULL,      -- 'client_start', 'client_failure', 'subject_voided'
    key                  TEXT NOT NULL,
    hits                 INTEGER NOT NULL,
    window_started_at    INTEGER NOT NULL,
    locked_until         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key)
);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    journey_id       INTEGER REFERENCES journeys (id) ON DELETE SET NULL,
    sealed_message   BLOB,                   -- AES-GCM sealed; cleared once finished
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    expires_at       INTEGER,                -- not worth sending after this
    claimed_by       TEXT,
    claimed_until    INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE outbox_attempts (
    id            INTEGER PRIMARY KEY,
    outbox_id     INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    attempted_at  INTEGER NOT NULL,
    instance      TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    detail        TEXT
);
CREATE INDEX outbox_attempts_by_message ON outbox_attempts (outbox_id);

CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,              -- 'holder', 'system', 'operator', or a staff user
    action       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    journey_id   INTEGER,
    holder_id    TEXT,
    client_addr  TEXT,
    detail       TEXT
);
CREATE INDEX audit_events_by_holder ON audit_events (holder_id, at);
CREATE INDEX audit_events_by_journey ON audit_events (journey_id);

CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
