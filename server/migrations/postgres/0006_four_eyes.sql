-- The four-eyes rule (staff.four_eyes_for_added_addresses): an address staff add to a profile
-- while it is on waits for a second RA's approval, and starts no journey until then.
-- `awaiting_approval_since` is set only while it waits (every other address, imported or
-- added with the rule off, has none); `approved_by` and `approved_at` say who let it through.
-- In step with ../sqlite/0006_four_eyes.sql.
ALTER TABLE holder_emails ADD COLUMN awaiting_approval_since BIGINT;
ALTER TABLE holder_emails ADD COLUMN approved_by TEXT;
ALTER TABLE holder_emails ADD COLUMN approved_at BIGINT;
