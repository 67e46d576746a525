-- One row per user name, the anchor every transaction locks (SELECT ... FOR UPDATE). Several
-- authenticators per user can come later as a table referencing users(name).
-- Rows are never deleted: a removal clears the record and sets removed_at.
-- The daemon's role needs exactly:
--   GRANT USAGE ON SCHEMA <schema> TO <daemon role>;
--   GRANT SELECT ON schema_version TO <daemon role>;
--   GRANT SELECT, INSERT, UPDATE ON users TO <daemon role>;
-- and no DELETE, TRUNCATE or ownership.
CREATE TABLE users (
    name text PRIMARY KEY,
    -- How `record` is encoded (store::postgres::row): 1 is the record's text format.
    -- A later encoding seals it; the column says which rows still need re-sealing.
    record_encoding smallint,
    record bytea,
    updated_at timestamptz NOT NULL DEFAULT now(),
    removed_at timestamptz,
    CHECK ((record IS NULL) = (record_encoding IS NULL)),
    CHECK (removed_at IS NULL OR record IS NULL)
);
