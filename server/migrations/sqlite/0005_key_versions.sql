-- Key versions: the card master key (unlock-cr/1) and the PUK escrow key (piv/1) may each
-- have several versions; a card records the one it was issued under, and the newest version
-- of a purpose is the one new cards get. In step with ../postgres/0005_key_versions.sql.
--
-- Version 1 of a purpose with no row here is the configured key: `card_master_key` or
-- `card_master_key_file` for the card master key, a key derived from the server secret for
-- the PUK escrow key (file custody, as before versions existed). Key bytes are never stored
-- here: `label` names a key file (`<keys dir>/<label>.key`) or a key object on the token.
CREATE TABLE key_versions (
    purpose     TEXT NOT NULL CHECK (purpose IN ('card_master', 'puk_escrow')),
    version     INTEGER NOT NULL CHECK (version >= 1),
    custody     TEXT NOT NULL CHECK (custody IN ('file', 'pkcs11')),
    label       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (purpose, version)
);

-- The version of its profile's key a card was issued under: the card master key's for
-- unlock-cr/1 cards, the escrow key's sealing `puk_sealed` and `puk_pending_sealed` for piv/1.
ALTER TABLE cards ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1 CHECK (key_version >= 1);
CREATE INDEX cards_by_key_version ON cards (model, key_version);
