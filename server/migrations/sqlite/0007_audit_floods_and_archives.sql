-- Floods of refusals and the audit archive (issue 13, item 6). In step with
-- ../postgres/0007_audit_floods_and_archives.sql.
--
-- A refusal that names no holder (a journey cookie that names nothing, a domain not on the
-- allow list, a client or a staff sign-in locked out) is audited whole the first time in a
-- minute from one client under one name; the repeats in that minute are counted in
-- `audit_repeats` and folded into one audit event with their number (`times`) once the
-- minute is over. So a flood writes at most two audit rows per client, name, kind and
-- minute, however many requests it sends (the names are 'holder', the staff accounts' and
-- 'unknown').
ALTER TABLE audit_events ADD COLUMN times INTEGER NOT NULL DEFAULT 1;

CREATE TABLE audit_repeats (
    client_addr TEXT NOT NULL,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    minute      INTEGER NOT NULL,            -- at / 60000 of the repeats
    actor       TEXT NOT NULL,               -- who: 'holder', or the staff name tried
    times       INTEGER NOT NULL,            -- the first event of the minute included
    last_at     INTEGER NOT NULL,
    PRIMARY KEY (client_addr, actor, action, outcome, minute)
);
CREATE INDEX audit_repeats_by_minute ON audit_repeats (minute);

-- The archive: `unlock-server audit archive` writes the events up to `through_id` to a file
-- and records the file's digest here in the same transaction that deletes them. An event
-- leaves the audit trail only once an archive holds it; nothing is ever updated, and the
-- archive records themselves are append-only.
CREATE TABLE audit_archives (
    id           INTEGER PRIMARY KEY,
    through_id   INTEGER NOT NULL UNIQUE,
    events       INTEGER NOT NULL,
    first_at     INTEGER,
    last_at      INTEGER,
    sha256       TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    archived_at  INTEGER NOT NULL
);

DROP TRIGGER audit_events_append_only_delete;
CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
WHEN OLD.id > (SELECT COALESCE(MAX(through_id), 0) FROM audit_archives)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: only archived events may be deleted');
END;

CREATE TRIGGER audit_archives_append_only_update BEFORE UPDATE ON audit_archives
BEGIN
    SELECT RAISE(ABORT, 'audit_archives is append-only');
END;

CREATE TRIGGER audit_archives_append_only_delete BEFORE DELETE ON audit_archives
BEGIN
    SELECT RAISE(ABORT, 'audit_archives is append-only');
END;
