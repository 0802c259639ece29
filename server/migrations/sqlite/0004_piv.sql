-- piv/1 cards (NIST SP 800-73-4). A PIV card's `serial` is its GUID from the CHUID (32
-- lower-case hex digits); an unlock-cr/1 card's stays its 16-digit serial.
--
-- A PIV card's PIN can only be reset with its PUK, so the service escrows it: `puk_sealed`
-- is the current PUK, sealed with the server's key and bound to the card's id. When a PUK is
-- released, the next one is drawn and kept in `puk_pending_sealed` in the same transaction;
-- the card's signed receipt makes it current (`puk_generation` + 1). Until then a release
-- offers both, pending first.
ALTER TABLE cards ADD COLUMN puk_sealed BLOB;
ALTER TABLE cards ADD COLUMN puk_pending_sealed BLOB;
ALTER TABLE cards ADD COLUMN puk_generation INTEGER NOT NULL DEFAULT 0;

-- A piv/1 journey's card steps: the possession nonce handed out when the card was accepted
-- (spent by the release it proves), and the public keys (SubjectPublicKeyInfo, DER) of the
-- two certificates the card presented: Card Authentication (9E) checks the possession proof,
-- PIV Authentication (9A) the receipt. `last_challenge` holds the receipt nonce.
ALTER TABLE journeys ADD COLUMN possession_nonce BLOB;
ALTER TABLE journeys ADD COLUMN possession_key BLOB;
ALTER TABLE journeys ADD COLUMN receipt_key BLOB;
